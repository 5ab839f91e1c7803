"""The model families (bag, cnn, rnn, transformer): their padding contracts, configs and defaults, and each one
through train -> evaluate -> predict, --resume, --vectors/--freeze-embeddings, DataParallel's CPU path, DDP
(gloo), micro-batches, bf16, and the out-of-memory backoff (injected: this suite runs without a GPU).

Run: python -m pytest -q tests/test_models.py            (about 40 s on 2 CPU cores)
"""
import contextlib
import json
import os
import signal
import subprocess
import sys
import time
from pathlib import Path

import pytest
import torch

from textpipe.checkpoint import load_checkpoint, write_checkpoint
from textpipe.evaluate import evaluate
from textpipe.models import MODELS, build_model, forward, model_config, state_shapes, takes_lengths
from textpipe.predict import predict
from textpipe.train import TrainConfig, fit, main
from textpipe.train.args import parse_train_args
from textpipe.train.config import check_config, settle_defaults
from textpipe.train.steps import StepOptions, find_batch_size, step_with_backoff, train_step

from test_train import ROOT, _env, kill_at_first_checkpoint, write_csv

TINY = {"bag": [], "cnn": ["--num-filters", "4", "--kernel-sizes", "2", "3"],
        "rnn": ["--hidden-dim", "8", "--rnn-cell", "gru"],
        "transformer": ["--num-heads", "2", "--ff-dim", "16", "--num-layers", "1", "--max-len", "16"]}
TINY_CFG = {"bag": {"buckets": 64}, "cnn": {"num_filters": 4, "kernel_sizes": [2, 3]}, "rnn": {"hidden_dim": 8},
            "transformer": {"num_heads": 2, "ff_dim": 16, "num_layers": 1, "max_len": 16}}
SEQ_MODELS = ["cnn", "rnn", "transformer"]


@pytest.fixture(scope="module")
def data_dir(tmp_path_factory):
    d = tmp_path_factory.mktemp("tiny")
    write_csv(d / "train.csv", 96, seed=0)
    write_csv(d / "test.csv", 24, seed=1)
    return d


@pytest.fixture(autouse=True)
def _keep_torch_threads():
    n = torch.get_num_threads()
    yield
    torch.set_num_threads(n)


def _args(data_dir, out, model, *extra):
    return ["--data-dir", str(data_dir), "--output-dir", str(out), "--model", model, "--embed-dim", "8",
            "--batch-size", "16", "--epochs", "2", "--no-progress", *TINY[model], *extra]


LOCAL_MODELS = [m for m in MODELS if m != "hf"]  # hf: pretrained encoders, tested in tests/test_hf.py

def _tiny(name, **kw):
    return build_model(model_config(name, {"embed_dim": 8, **TINY_CFG[name], **kw}, vocab_size=30, num_classes=3))


# -- the models themselves -----------------------------------------------------------------------------------
@pytest.mark.parametrize("name", LOCAL_MODELS)
def test_a_text_gets_the_same_logits_alone_and_in_a_padded_batch(name):
    torch.manual_seed(0)
    model = _tiny(name).eval()
    batch = torch.tensor([[5, 6, 7, 8, 9, 10, 11], [12, 13, 0, 0, 0, 0, 0], [0, 0, 0, 0, 0, 0, 0]])
    lengths = torch.tensor([7, 2, 0])
    together = forward(model, batch, lengths)
    assert together.shape == (3, 3) and torch.isfinite(together).all()
    for i in range(2):
        alone = forward(model, batch[i:i + 1, :lengths[i]], lengths[i:i + 1])
        assert torch.allclose(alone, together[i:i + 1], atol=1e-5), name


@pytest.mark.parametrize("name", LOCAL_MODELS)
def test_state_shapes_match_a_built_model(name):
    config = model_config(name, {"embed_dim": 8, **TINY_CFG[name]}, vocab_size=30, num_classes=3)
    assert state_shapes(config) == {k: tuple(v.shape) for k, v in build_model(config).state_dict().items()}
    assert takes_lengths(build_model(config)) == (name != "bag")


@pytest.mark.parametrize("name", ["cnn", "transformer"])
def test_embed_dropout_drops_in_training_only_and_is_recorded(name, data_dir, tmp_path):
    ids, lengths = torch.tensor([[5, 6, 7, 8], [9, 10, 0, 0]]), torch.tensor([4, 2])
    torch.manual_seed(0)
    model = _tiny(name, dropout=0.0, embed_dropout=0.5)
    assert model.embed_dropout.p == 0.5 and _tiny(name).embed_dropout.p == 0.0  # off unless asked for
    train_a, train_b = forward(model, ids, lengths), forward(model, ids, lengths)
    assert not torch.allclose(train_a, train_b)  # the only randomness left in training mode
    model.eval()
    assert torch.equal(forward(model, ids, lengths), forward(model, ids, lengths))
    assert main(_args(data_dir, tmp_path, name, "--embed-dropout", "0.25", "--checkpoints", "end")) == 0
    assert load_checkpoint(tmp_path / "last.pt")["model_config"]["embed_dropout"] == 0.25


@pytest.mark.parametrize("name", SEQ_MODELS)
def test_unk_dropout_turns_real_tokens_into_unk_in_training_only(name, data_dir, tmp_path, monkeypatch):
    ids, lengths = torch.tensor([[5, 6, 7, 8], [9, 10, 0, 0]]), torch.tensor([4, 2])
    model = _tiny(name, dropout=0.0, unk_dropout=0.5)
    seen = []
    monkeypatch.setattr(model.embedding, "forward", lambda x: seen.append(x.clone()) or
                        torch.nn.functional.embedding(x, model.embedding.weight))
    torch.manual_seed(0)
    for _ in range(20):
        forward(model, ids, lengths)
    drawn = torch.stack(seen)  # (20, B, T): what the embedding was given
    real = torch.tensor([[True] * 4, [True, True, False, False]])
    assert ((drawn == ids) | (drawn == 1)).all()  # a token or <unk>, nothing else
    assert (drawn[:, ~real] == 0).all()  # padding stays padding
    assert 0.3 < (drawn[:, real] == 1).float().mean() < 0.7  # about half the real tokens, over 20 draws
    seen.clear()
    model.eval()
    forward(model, ids, lengths)
    assert torch.equal(seen[0], ids)  # evaluation reads the text as it is
    # the configs' own default is 0 (the transformer's 0.02 is a training default), and then no random numbers
    # are drawn (fresh cnn/rnn runs stay bit-identical to before)
    off = _tiny(name, dropout=0.0).train()
    assert off.config.unk_dropout == 0.0
    state = torch.get_rng_state()
    forward(off, ids, lengths)
    assert torch.equal(torch.get_rng_state(), state)
    assert main(_args(data_dir, tmp_path, name, "--unk-dropout", "0.1", "--checkpoints", "end")) == 0
    assert load_checkpoint(tmp_path / "last.pt")["model_config"]["unk_dropout"] == 0.1


def test_transformer_truncates_to_max_len():
    model = _tiny("transformer", max_len=4).eval()
    ids = torch.arange(2, 12).view(1, 10)
    assert torch.allclose(model(ids, torch.tensor([10])), model(ids[:, :4], torch.tensor([4])), atol=1e-6)


@pytest.mark.parametrize("bad, match", [
    ({"model": "rnn", "pooling": "first"}, r"pooling must be one of \('max', 'mean', 'last'\) for rnn"),
    ({"model": "transformer", "num_heads": 3}, r"num_heads must be >= 1 and divide embed_dim=128"),
    ({"model": "cnn", "dropout": 1.0}, r"--model cnn: dropout must be in \[0, 1\), got 1.0"),
    ({"model": "transformer", "embed_dropout": -0.1}, r"--model transformer: embed_dropout must be in \[0, 1\)"),
    ({"model": "cnn", "embed_dropout": 1.0}, r"--model cnn: embed_dropout must be in \[0, 1\), got 1.0"),
    ({"model": "rnn", "unk_dropout": 1.0}, r"--model rnn: unk_dropout must be in \[0, 1\), got 1.0"),
    ({"model": "bag", "unk_dropout": 0.1}, r"--unk-dropout applies to --model cnn \| rnn \| transformer, not 'bag'"),
    ({"model": "cnn", "num_heads": 2}, r"--num-heads applies to --model transformer, not 'cnn': drop it"),
    ({"model": "cnn", "ngrams": 1}, r"--ngrams applies to --model bag, not 'cnn'"),
    ({"model": "rnn", "buckets": 64}, r"--buckets applies to --model bag, not 'rnn'"),
    ({"model": "cnn", "batch_size": "big"}, r"batch_size \(--batch-size\) must be >= 1 or \"auto\""),
    ({"model": "cnn", "precision": "fp8"}, r"precision \(--precision\) must be one of"),
    ({"model": "bag", "fused": True, "freeze_embeddings": True}, r"--freeze-embeddings trains through autograd"),
])
def test_bad_model_settings_are_named(bad, match):
    with pytest.raises(ValueError, match=match):
        check_config(TrainConfig(**bad))


def test_defaults_follow_the_model_and_the_bag_keeps_its_own():
    bag = settle_defaults(TrainConfig())
    assert (bag.optimizer, bag.lr, bag.epochs, bag.batch_size, bag.embed_dim, bag.warmup, bag.clip_grad,
            bag.weighting) == ("sgd", 8.0, 8, 256, 10, 0.0, 0.0, "nb")  # issue 23: NB weighting, lr 8, 8 epochs
    assert bag.sparse is None and bag.kernel_sizes is None  # the plan settles sparse; cnn fields stay unset
    cnn = settle_defaults(TrainConfig(model="cnn", lr=0.01))
    assert (cnn.optimizer, cnn.lr, cnn.kernel_sizes, cnn.num_filters, cnn.dropout) == ("adamw", 0.01, [3, 4, 5], 100, 0.5)
    assert cnn.weight_decay == 0.3  # issue 18g: chosen by 5-fold cross-validation (the others keep 0.01)
    transformer = settle_defaults(TrainConfig(model="transformer"))
    assert (transformer.pooling, transformer.dropout, transformer.embed_dropout) == ("mean", 0.3, 0.0)
    assert transformer.unk_dropout == 0.02 and settle_defaults(TrainConfig(model="cnn")).unk_dropout == 0.0  # 18f
    # issue 18h: batch 16, 3 epochs (was 64, 6), chosen by cross-validation
    assert (transformer.lr, transformer.batch_size, transformer.epochs, transformer.weight_decay) == (1e-3, 16, 3, 0.01)


# -- the training step ---------------------------------------------------------------------------------------
def _grads(model):
    return [p.grad.clone() for p in model.parameters() if p.grad is not None]


def test_micro_batches_give_the_gradient_of_the_whole_batch():
    torch.manual_seed(0)
    ids, lengths, y = torch.randint(2, 30, (12, 6)), torch.randint(1, 7, (12,)), torch.randint(0, 3, (12,))
    grads = []
    for accumulate in (1, 3):
        model = _tiny("cnn", dropout=0.0)
        torch.manual_seed(1)
        model = _tiny("cnn", dropout=0.0)
        opt = torch.optim.SGD(model.parameters(), lr=0.0)
        train_step(model, opt, ids, lengths, y, StepOptions(accumulate=accumulate))
        grads.append(_grads(model))
    assert all(torch.allclose(a, b, atol=1e-6) for a, b in zip(*grads))


def test_out_of_memory_halves_the_micro_batch_and_goes_on(capsys):
    torch.manual_seed(0)
    model = _tiny("rnn")
    real_forward = model.forward

    def fits_eight(ids, lengths):  # a "GPU" that holds 8 texts
        if ids.shape[0] > 8:
            raise torch.cuda.OutOfMemoryError("CUDA out of memory. Tried to allocate 2.00 GiB")
        return real_forward(ids, lengths)

    model.forward = fits_eight
    opt = torch.optim.AdamW(model.parameters())
    opts = StepOptions()
    ids, lengths, y = torch.randint(2, 30, (32, 5)), torch.full((32,), 5), torch.randint(0, 3, (32,))
    loss_sum, correct = step_with_backoff(model, opt, ids, lengths, y, opts, step=6)
    assert opts.accumulate == 4 and 0 <= correct <= 32 and loss_sum > 0
    lines = capsys.readouterr().out.splitlines()
    assert lines == ["out of memory at step 7 with micro-batches of 32 texts: retrying with 16 (2 micro-batches "
                     "per step, the same batch of 32); cache freed",
                     "out of memory at step 7 with micro-batches of 16 texts: retrying with 8 (4 micro-batches "
                     "per step, the same batch of 32); cache freed"]
    model.forward = lambda ids, lengths: (_ for _ in ()).throw(torch.cuda.OutOfMemoryError("nothing fits"))
    with pytest.raises(torch.cuda.OutOfMemoryError):
        step_with_backoff(model, opt, ids, lengths, y, opts, step=7, say=lambda m: None)


def test_out_of_memory_mid_run_keeps_training(data_dir, tmp_path, monkeypatch, capsys):
    from textpipe.models.cnn import CNNClassifier

    real_forward, calls = CNNClassifier.forward, []

    def oom_once(self, ids, lengths=None):
        calls.append(ids.shape[0])
        if self.training and len(calls) == 3:
            raise torch.cuda.OutOfMemoryError("CUDA out of memory (injected)")
        return real_forward(self, ids, lengths)

    monkeypatch.setattr(CNNClassifier, "forward", oom_once)
    assert main(_args(data_dir, tmp_path, "cnn")) == 0
    out = capsys.readouterr().out
    assert "out of memory at step 3 with micro-batches of 16 texts: retrying with 8" in out
    assert json.loads((tmp_path / "summary.json").read_text())["steps"] == 12


def test_find_batch_size_takes_the_largest_that_fits():
    def fits_300(b):
        if b > 300:
            raise torch.cuda.OutOfMemoryError("too big")

    assert find_batch_size(fits_300, start=32, limit=4096) == 256
    assert find_batch_size(fits_300, start=32, limit=64) == 64
    with pytest.raises(torch.cuda.OutOfMemoryError, match="not even 512"):
        find_batch_size(fits_300, start=512, limit=4096)


# -- end to end ----------------------------------------------------------------------------------------------
@pytest.mark.parametrize("name", SEQ_MODELS)
def test_train_evaluate_predict_from_the_checkpoint(name, data_dir, tmp_path):
    assert main(_args(data_dir, tmp_path, name)) == 0
    summary = json.loads((tmp_path / "summary.json").read_text())
    ckpt = load_checkpoint(tmp_path / "best.pt")
    assert ckpt["model_name"] == name and ckpt["train_config"]["optimizer"] == "adamw"
    report = evaluate(tmp_path / "best.pt", data_dir / "test.csv", device="cpu")
    assert report["accuracy"] == summary["test"]["accuracy"] and report["n"] == 24
    texts = ["Election Minister Troops embassy iraq the", "", "coach"]
    preds = predict(tmp_path / "best.pt", texts, device="cpu")
    alone = [predict(tmp_path / "best.pt", [t], device="cpu")[0] for t in texts]
    assert [p["label"] for p in preds] == [p["label"] for p in alone]  # padding does not change a prediction
    records = [json.loads(line) for line in (tmp_path / "metrics.jsonl").read_text().splitlines()]
    assert records[0]["peak_gpu_mb"] is None  # CPU: no GPU memory to report


def _stop_after_epoch_1(args: list[str]) -> None:
    """Train with `args` and stop (an exception from the epoch report) once epoch 1's checkpoint is written."""
    class Stop(Exception):
        pass

    def stop(record):
        raise Stop

    cfg, _ = parse_train_args(args)
    with pytest.raises(Stop):
        fit(cfg, report=stop)


@pytest.mark.parametrize("name", SEQ_MODELS)
def test_resume_after_an_interrupted_epoch_gives_identical_weights(name, data_dir, tmp_path):
    flags = ["--epochs", "3", "--save-every", "4", "--seed", "2", "--unk-dropout", "0.1"]  # random draws in forward
    assert main(_args(data_dir, tmp_path / "ref", name, *flags)) == 0

    _stop_after_epoch_1(_args(data_dir, tmp_path / "cut", name, *flags))  # last.pt holds epoch 1's end
    assert main(_args(data_dir, tmp_path / "cut", name, *flags, "--resume")) == 0
    ref, resumed = (load_checkpoint(tmp_path / d / "last.pt") for d in ("ref", "cut"))
    assert resumed["step"] == ref["step"] == 18
    for k, v in ref["model"].items():
        assert torch.equal(resumed["model"][k], v), k


def test_a_checkpoint_that_holds_another_familys_fields_still_resumes(data_dir, tmp_path):
    # written before the bag's ngrams/buckets/minn/maxn defaulted to None: a cnn run's train_config held them too
    args = _args(data_dir, tmp_path, "cnn", "--max-steps", "3")
    assert main(args) == 0
    ckpt = load_checkpoint(tmp_path / "last.pt")
    assert ckpt["train_config"]["ngrams"] is None
    ckpt["train_config"].update(ngrams=2, buckets=2**18, minn=0, maxn=0)
    write_checkpoint(tmp_path / "last.pt", ckpt)
    assert main([*args[:-2], "--max-steps", "5", "--resume"]) == 2  # a flag of this run that differs: refused
    assert main([*args, "--resume"]) == 0  # the bag's fields are not this run's: not compared
    assert load_checkpoint(tmp_path / "last.pt")["step"] == 3


@pytest.mark.slow
@pytest.mark.parametrize("name", SEQ_MODELS)
def test_sigkill_mid_epoch_then_resume_gives_identical_weights(name, data_dir, tmp_path):
    flags = ["--epochs", "6", "--save-every", "4", "--seed", "2", "--threads", "1"]  # 36 steps, a last.pt every 4
    assert main(_args(data_dir, tmp_path / "ref", name, *flags)) == 0
    reference = load_checkpoint(tmp_path / "ref" / "last.pt")
    out = tmp_path / "killed"
    kill_at_first_checkpoint(_args(data_dir, out, name, *flags), out)
    assert 0 < load_checkpoint(out / "last.pt")["step"] < reference["step"]
    assert main(_args(data_dir, out, name, *flags, "--resume")) == 0
    resumed = load_checkpoint(out / "last.pt")
    assert resumed["step"] == reference["step"] == 36
    for k, v in reference["model"].items():
        assert torch.equal(resumed["model"][k], v), k


def test_resume_continues_the_gradient_scalers_scale(data_dir, tmp_path, monkeypatch):
    # fp16 needs CUDA; the scaler's bookkeeping is the same on the CPU: it doubles its scale after every step here
    import textpipe.train.setup as setup
    monkeypatch.setattr(setup, "make_scaler", lambda precision, device: torch.amp.GradScaler(
        "cpu", init_scale=2.0 ** 4, growth_interval=1))
    flags = ["--epochs", "3", "--save-every", "4", "--seed", "2"]
    assert main(_args(data_dir, tmp_path / "ref", "cnn", *flags)) == 0

    _stop_after_epoch_1(_args(data_dir, tmp_path / "cut", "cnn", *flags))  # 6 steps
    assert load_checkpoint(tmp_path / "cut" / "last.pt")["scaler"]["scale"] == 2.0 ** (4 + 6)
    assert main(_args(data_dir, tmp_path / "cut", "cnn", *flags, "--resume")) == 0
    ref, resumed = (load_checkpoint(tmp_path / d / "last.pt") for d in ("ref", "cut"))
    assert resumed["scaler"] == ref["scaler"] and ref["scaler"]["scale"] == 2.0 ** (4 + 18)
    for k, v in ref["model"].items():
        assert torch.equal(resumed["model"][k], v), k


def test_vectors_and_frozen_embeddings(data_dir, tmp_path):
    vec = tmp_path / "tiny.vec"
    vec.write_text("2 8\nelection " + " ".join(["0.5"] * 8) + "\ncoach " + " ".join(["-0.25"] * 8) + "\n")
    assert main(_args(data_dir, tmp_path / "run", "rnn", "--vectors", str(vec), "--freeze-embeddings")) == 0
    ckpt = load_checkpoint(tmp_path / "run" / "last.pt")
    itos = list(ckpt["vocab_itos"]) if not hasattr(ckpt["vocab_itos"], "get_itos") else ckpt["vocab_itos"].get_itos()
    emb = ckpt["model"]["embedding.weight"]
    assert torch.equal(emb[itos.index("election")], torch.full((8,), 0.5))
    assert torch.equal(emb[itos.index("coach")], torch.full((8,), -0.25))


@pytest.mark.parametrize("name", ["cnn", "transformer"])
def test_dataparallel_path_and_bf16_on_cpu(name, data_dir, tmp_path):
    assert main(_args(data_dir, tmp_path, name, "--parallel", "dp", "--device", "cpu", "--precision", "bf16",
                      "--accumulate", "2", "--epochs", "1")) == 0
    assert not any(k.startswith("module.") for k in load_checkpoint(tmp_path / "best.pt")["model"])


def test_fp16_needs_cuda(data_dir, tmp_path, capsys):
    assert main(_args(data_dir, tmp_path, "cnn", "--precision", "fp16", "--device", "cpu")) != 0
    assert "--precision fp16 needs a CUDA GPU" in capsys.readouterr().err


def test_batch_size_auto_on_cpu_takes_the_model_default(data_dir, tmp_path, capsys):
    assert main(_args(data_dir, tmp_path, "cnn", "--batch-size", "auto", "--epochs", "1")) == 0
    assert "--batch-size auto: no GPU here, using cnn's default 64" in capsys.readouterr().out
    assert load_checkpoint(tmp_path / "last.pt")["train_config"]["batch_size"] == 64


@pytest.mark.slow
@pytest.mark.parametrize("name", ["rnn", "transformer"])  # the cnn: the DDP resume test below; bag: test_train.py
def test_ddp_two_processes_train_it_with_gloo(name, data_dir, tmp_path):
    cmd = [sys.executable, "-m", "torch.distributed.run", "--standalone", "--nproc_per_node=2", "-m",
           "textpipe.train", *_args(data_dir, tmp_path, name, "--parallel", "ddp", "--device", "cpu")]
    proc = subprocess.run(cmd, cwd=tmp_path, env=_env(), capture_output=True, text=True, timeout=240)
    assert proc.returncode == 0, proc.stderr[-3000:]
    summary = json.loads((tmp_path / "summary.json").read_text())
    assert summary["replicas_in_sync"] and [r["rank"] for r in summary["ranks"]] == [0, 1]


@pytest.mark.gpu
@pytest.mark.skipif(not torch.cuda.is_available(), reason="needs a CUDA GPU (none on the machine this was written on)")
@pytest.mark.parametrize("precision", ["bf16", "fp16"])
def test_mixed_precision_and_auto_batch_on_a_gpu(precision, data_dir, tmp_path):
    assert main(_args(data_dir, tmp_path, "transformer", "--device", "cuda", "--precision", precision,
                      "--batch-size", "auto", "--compile")) == 0
    records = [json.loads(line) for line in (tmp_path / "metrics.jsonl").read_text().splitlines()]
    assert records[-1]["peak_gpu_mb"] > 0


def test_a_search_across_families_gives_each_trial_its_own_parameters():
    from textpipe.tune._data import trial_train_config
    from textpipe.tune.command import build_space, SearchConfig

    trial = trial_train_config({"base": {}}, {"model": "rnn", "num_filters": 7, "hidden_dim": 16}, output_dir="x")
    assert trial.num_filters is None and trial.hidden_dim == 16
    assert settle_defaults(trial).lr == 2e-3  # the rnn's default, not the bag's 16
    space, _ = build_space(SearchConfig(params=["model=cnn,rnn"]))
    assert space["model"] == {"choice": ["cnn", "rnn"]} and "lr" not in space and "ngrams" in space


@pytest.mark.slow
@pytest.mark.skipif(not Path("/proc/self/cmdline").exists(), reason="finds torchrun's workers in /proc (Linux)")
def test_ddp_sigkill_then_resume_gives_identical_weights_and_metrics(data_dir, tmp_path):
    # dropout draws differ by rank: the checkpoint holds every rank's RNG states, and the epoch's running sums
    # of both ranks, so a resumed 2-process run is the uninterrupted one (weights and metrics.jsonl)
    def torchrun(out, *extra):
        return [sys.executable, "-m", "torch.distributed.run", "--standalone", "--nproc_per_node=2", "-m",
                "textpipe.train", *_args(data_dir, out, "cnn", "--parallel", "ddp", "--device", "cpu", "--epochs",
                                         "8", "--save-every", "2", "--seed", "5", *extra)]

    def records(out):
        return [{k: v for k, v in json.loads(line).items() if k != "time_s"}
                for line in (out / "metrics.jsonl").read_text().splitlines()]

    ref = subprocess.run(torchrun(tmp_path / "ref"), env=_env(), capture_output=True, text=True, timeout=240)
    assert ref.returncode == 0, ref.stderr[-3000:]
    reference = load_checkpoint(tmp_path / "ref" / "last.pt")
    assert len(reference["rng"]["ranks"]) == 2 and not torch.equal(*(r["torch"] for r in reference["rng"]["ranks"]))

    out = tmp_path / "killed"  # the launcher and both ranks (its workers: their own sessions) killed at once
    proc = subprocess.Popen(torchrun(out), env=_env(), stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
    deadline = time.monotonic() + 180
    while not (out / "last.pt").exists() and proc.poll() is None and time.monotonic() < deadline:
        time.sleep(0.002)
    for pid in [int(p.name) for p in Path("/proc").iterdir() if p.name.isdigit()]:
        with contextlib.suppress(OSError):  # (a process that ended meanwhile)
            if str(out).encode() in Path(f"/proc/{pid}/cmdline").read_bytes():
                os.kill(pid, signal.SIGKILL)
    assert proc.wait(timeout=30) == -signal.SIGKILL
    killed_at = load_checkpoint(out / "last.pt")["step"]
    assert 0 < killed_at < reference["step"]  # 24 steps, 3 an epoch a rank: most saves are mid-epoch

    resumed = subprocess.run(torchrun(out, "--resume"), env=_env(), capture_output=True, text=True, timeout=240)
    assert resumed.returncode == 0, resumed.stderr[-3000:]
    final = load_checkpoint(out / "last.pt")
    assert final["step"] == reference["step"]
    for k, v in reference["model"].items():
        assert torch.equal(final["model"][k], v), k
    assert records(out) == records(tmp_path / "ref")


_OOM_ON_RANK_1 = """
import os, sys, torch
from textpipe.models.cnn import CNNClassifier
from textpipe.train import main
real_forward, calls = CNNClassifier.forward, []

def oom_on_rank_1(self, ids, lengths=None):
    calls.append(self.training)
    if os.environ["RANK"] == "1" and calls.count(True) == 3:
        raise torch.cuda.OutOfMemoryError("CUDA out of memory (injected)")
    return real_forward(self, ids, lengths)

CNNClassifier.forward = oom_on_rank_1
sys.exit(main(sys.argv[1:]))
"""


@pytest.mark.slow
def test_ddp_out_of_memory_on_one_rank_stops_the_run_and_names_the_resume(data_dir, tmp_path):
    # one rank cannot retry alone (its retried backward would pair with its peer's next all-reduce, or a model's
    # buffer broadcast with the wrong collective): the run stops, not hangs, and resuming with the --accumulate
    # it names finishes it. (Before: rank 1 retried alone; here, a forward OOM in a model without buffers, that
    # happened to line up and the run went on, rc 0: this test's first assertion.)
    script = tmp_path / "oom_on_rank_1.py"
    script.write_text(_OOM_ON_RANK_1)
    out, args = tmp_path / "run", ["--parallel", "ddp", "--device", "cpu", "--save-every", "2", "--seed", "5"]
    launch = [sys.executable, "-m", "torch.distributed.run", "--standalone", "--nproc_per_node=2"]
    oom = subprocess.run([*launch, str(script), *_args(data_dir, out, "cnn", *args)], env=_env(),
                         capture_output=True, text=True, timeout=180)
    assert oom.returncode != 0
    assert ("out of memory at step 3 with micro-batches of 16 texts on this DDP rank, which cannot back off alone"
            in oom.stdout + oom.stderr)
    assert "resume with --resume --accumulate 2" in oom.stdout + oom.stderr
    assert load_checkpoint(out / "last.pt")["step"] == 2  # the save before the failed step, intact

    resumed = subprocess.run([*launch, "-m", "textpipe.train", *_args(data_dir, out, "cnn", *args, "--resume",
                                                                     "--accumulate", "2")],
                             env=_env(), capture_output=True, text=True, timeout=180)
    assert resumed.returncode == 0, resumed.stderr[-3000:]
    assert json.loads((out / "summary.json").read_text())["steps"] == 6  # 2 epochs of 3 steps a rank
