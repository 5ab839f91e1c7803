"""End-to-end `python -m textpipe.train` on a tiny hermetic CSV: CPU, DataParallel path, DDP (2 processes,
gloo), SIGKILL + --resume, and the GPU variants (skipped without CUDA).

Run: python -m pytest -q tests/test_train.py            (about a minute on 2 CPU cores)
"""
import json
import os
import random
import re
import signal
import subprocess
import sys
import time
from pathlib import Path

import pytest
import torch

from textpipe.checkpoint import load_checkpoint
from textpipe.models.bag import ModelConfig, TextClassifier
from textpipe.train import TrainConfig, main

ROOT = Path(__file__).resolve().parents[1]
_WORDS = [["election", "minister", "troops", "embassy", "iraq"], ["match", "coach", "league", "season", "goal"],
          ["stocks", "profit", "shares", "oil", "bank"], ["software", "internet", "space", "computer", "nasa"]]
_COMMON = ["the", "a", "of", "said", "new", "on", "reuters", "monday", "to", "in", "and", "for"]


def write_csv(path: Path, n: int, seed: int, extra: str = "") -> Path:
    """An AG_NEWS-format CSV with n rows whose class shows in (noisy) keywords."""
    rng = random.Random(seed)
    lines = []
    for i in range(n):
        label = i % 4
        words = [rng.choice(_WORDS[label] if rng.random() < 0.4 else _COMMON) for _ in range(rng.randint(4, 20))]
        lines.append(f'"{label + 1}","{" ".join(words[:3]).title()}","{" ".join(words[3:])} {extra}."')
    path.write_text("\n".join(lines) + "\n")
    return path


@pytest.fixture(scope="module")
def data_dir(tmp_path_factory):
    d = tmp_path_factory.mktemp("ag_news")
    write_csv(d / "train.csv", 400, seed=0)
    write_csv(d / "test.csv", 80, seed=1, extra="zzzonlyintest")
    return d


@pytest.fixture(autouse=True)
def _keep_torch_threads():
    n = torch.get_num_threads()  # main() sets --threads; do not leak it into other tests
    yield
    torch.set_num_threads(n)


def _args(data_dir, out, *extra):
    return ["--data-dir", str(data_dir), "--output-dir", str(out), "--embed-dim", "8", "--buckets", "512",
            "--batch-size", "8", "--lr", "4", "--val-fraction", "0.1", "--no-progress", *extra]


def test_main_end_to_end(data_dir, tmp_path, capsys):
    assert main(_args(data_dir, tmp_path, "--epochs", "3")) == 0
    out = capsys.readouterr().out
    assert "test accuracy" in out and "confusion matrix" in out and "training loop" in out
    records = [json.loads(line) for line in (tmp_path / "metrics.jsonl").read_text().splitlines()]
    assert [r["epoch"] for r in records] == [1, 2, 3]
    assert records[-1]["step"] == 3 * 45  # 360 training rows / 8
    assert all(isinstance(r["train_loss"], float) and 0 <= r["val_accuracy"] <= 1 for r in records)
    summary = json.loads((tmp_path / "summary.json").read_text())
    assert summary["test"]["n"] == 80 and summary["test"]["accuracy"] > 0.6
    assert len(summary["test"]["confusion"]) == 4 and summary["replicas_in_sync"]
    best = load_checkpoint(tmp_path / "best.pt")
    assert best["epoch"] >= 1 and best["vocab_itos"][:2] == ["<pad>", "<unk>"]
    assert best["class_names"] == ["World", "Sports", "Business", "Sci/Tech"]
    assert best["train_config"]["batch_size"] == 8 and best["model_config"]["embed_dim"] == 8
    # vocabulary from the training portion only: a word that appears only in test is unknown
    assert "nasa" in best["vocab_itos"] and "zzzonlyintest" not in best["vocab_itos"]


def test_max_steps_and_no_validation(data_dir, tmp_path):
    assert main(_args(data_dir, tmp_path, "--max-steps", "7", "--val-fraction", "0")) == 0
    summary = json.loads((tmp_path / "summary.json").read_text())
    assert summary["steps"] == 7 and summary["best_val_accuracy"] is None
    last = load_checkpoint(tmp_path / "last.pt")
    assert last["step"] == 7 and last["sampler"] == {"epoch": 0, "batches_done": 7, "num_replicas": 1}


@pytest.mark.skipif(torch.cuda.is_available(), reason="nn.DataParallel runs a CPU module as a pass-through only on machines without CUDA")
def test_dataparallel_path_on_cpu_saves_an_unwrapped_model(data_dir, tmp_path, capsys):
    assert main(_args(data_dir, tmp_path, "--epochs", "1", "--parallel", "dp", "--device", "cpu")) == 0
    assert "DataParallel needs 2+" in capsys.readouterr().out
    ckpt = load_checkpoint(tmp_path / "last.pt")
    raw = torch.load(tmp_path / "last.pt", weights_only=True)["model"]
    assert not any(k.startswith("module.") for k in raw)  # saved from the unwrapped module
    bare = TextClassifier(ModelConfig(**ckpt["model_config"]))
    bare.load_state_dict(ckpt["model"])
    wrapped = torch.nn.DataParallel(TextClassifier(ModelConfig(**ckpt["model_config"])))
    wrapped.module.load_state_dict(ckpt["model"])
    ids = torch.tensor([[2, 3, 4, 5], [6, 7, 0, 0]])
    assert torch.equal(bare(ids), wrapped(ids))


def test_ddp_outside_torchrun_is_a_clear_error(data_dir, tmp_path, monkeypatch, capsys):
    for var in ("RANK", "LOCAL_RANK", "WORLD_SIZE"):
        monkeypatch.delenv(var, raising=False)
    assert main(_args(data_dir, tmp_path, "--parallel", "ddp")) == 2
    err = capsys.readouterr().err
    assert "RANK/LOCAL_RANK/WORLD_SIZE" in err and "torchrun --nproc_per_node=N -m textpipe.train" in err


def test_bad_flags_are_one_error_line_before_any_work(data_dir, tmp_path, capsys):
    assert main(_args(data_dir, tmp_path / "a", "--val-fraction", "1.5")) == 2
    assert capsys.readouterr().err == "error: val_fraction (--val-fraction) must be in [0, 1), got 1.5\n"
    assert main(_args(data_dir, tmp_path / "b", "--optimizer", "adamw", "--sparse")) == 2
    assert capsys.readouterr().err.startswith("error: --sparse needs --optimizer sgd")
    assert not (tmp_path / "a").exists() and not (tmp_path / "b").exists()  # refused before any work
    with pytest.raises(SystemExit) as e:  # argparse's own errors: one line too, exit 2
        main(_args(data_dir, tmp_path, "--epochs", "two"))
    assert e.value.code == 2
    err = capsys.readouterr().err
    assert err.count("\n") == 1 and err.startswith("error: ") and "--epochs" in err


def test_fit_reports_every_epoch_and_returns_the_summary(data_dir, tmp_path):
    from textpipe.train import TrainConfig, fit

    seen = []
    cfg = TrainConfig(data_dir=str(data_dir), output_dir=str(tmp_path), epochs=3, embed_dim=8, buckets=512,
                      batch_size=8, lr=4, val_fraction=0.1, progress=False)
    result = fit(cfg, report=seen.append)
    assert [r["epoch"] for r in seen] == [1, 2, 3]
    assert all(0 <= r["val_accuracy"] <= 1 and r["train_loss"] > 0 for r in seen)
    assert result == json.loads((tmp_path / "summary.json").read_text())
    assert result["best_val_accuracy"] == max(r["val_accuracy"] for r in seen)
    assert result["steps"] == seen[-1]["step"] == 3 * 45 and result["train_loop_s"] > 0
    assert result["checkpoint"] == str(tmp_path / "best.pt") and result["test"]["n"] == 80
    records = [json.loads(line) for line in (tmp_path / "metrics.jsonl").read_text().splitlines()]
    assert records == seen


def test_an_exception_in_report_stops_the_run(data_dir, tmp_path):
    from textpipe.train import TrainConfig, fit

    def stop(record):
        raise RuntimeError(f"pruned at epoch {record['epoch']}")

    cfg = TrainConfig(data_dir=str(data_dir), output_dir=str(tmp_path), epochs=3, embed_dim=8, buckets=512,
                      progress=False)
    with pytest.raises(RuntimeError, match="pruned at epoch 1"):
        fit(cfg, report=stop)
    assert load_checkpoint(tmp_path / "last.pt")["sampler"]["epoch"] == 1
    assert len((tmp_path / "metrics.jsonl").read_text().splitlines()) == 1


def _env():
    return {**os.environ, "PYTHONPATH": str(ROOT), "OMP_NUM_THREADS": "1"}


@pytest.mark.slow
def test_ddp_two_processes_on_cpu_with_gloo(data_dir, tmp_path):
    cmd = [sys.executable, "-m", "torch.distributed.run", "--standalone", "--nproc_per_node=2", "-m",
           "textpipe.train", *_args(data_dir, tmp_path, "--epochs", "2", "--parallel", "ddp", "--device", "cpu",
                                     "--eval-batch-size", "16")]
    proc = subprocess.run(cmd, cwd=tmp_path, env=_env(), capture_output=True, text=True, timeout=240)
    assert proc.returncode == 0, proc.stderr[-3000:]
    summary = json.loads((tmp_path / "summary.json").read_text())
    ranks = summary["ranks"]
    assert [r["rank"] for r in ranks] == [0, 1]
    assert ranks[0]["step"] == ranks[1]["step"] == 2 * 23  # 45 batches over 2 ranks -> 23 each
    assert ranks[0]["weights"] == ranks[1]["weights"] and summary["replicas_in_sync"]
    assert proc.stdout.count("epoch 1 step") == 1  # only rank 0 logs
    assert summary["test"]["n"] == 80  # the test report covers every row, not rank 0's shard


def kill_at_first_checkpoint(args: list[str], out: Path) -> None:
    """Run `textpipe.train args` in a subprocess and SIGKILL it as soon as `out/last.pt` appears."""
    proc = subprocess.Popen([sys.executable, "-m", "textpipe.train", *args], env=_env(), stdout=subprocess.DEVNULL,
                            stderr=subprocess.DEVNULL)
    deadline = time.monotonic() + 120
    while not (out / "last.pt").exists() and proc.poll() is None and time.monotonic() < deadline:
        time.sleep(0.002)
    proc.send_signal(signal.SIGKILL)
    assert proc.wait(timeout=30) == -signal.SIGKILL, "training finished before it could be killed"


@pytest.mark.slow
def test_sigkill_then_resume_gives_identical_weights(data_dir, tmp_path):
    flags = ["--epochs", "3", "--save-every", "5", "--val-fraction", "0.1", "--seed", "3"]
    assert main(_args(data_dir, tmp_path / "ref", *flags)) == 0
    reference = load_checkpoint(tmp_path / "ref" / "last.pt")

    out = tmp_path / "killed"
    kill_at_first_checkpoint(_args(data_dir, out, *flags), out)
    killed_at = load_checkpoint(out / "last.pt")["step"]
    assert 0 < killed_at < reference["step"]

    assert main(_args(data_dir, out, *flags, "--resume")) == 0
    resumed = load_checkpoint(out / "last.pt")
    assert resumed["step"] == reference["step"]
    for name, tensor in reference["model"].items():
        assert torch.equal(resumed["model"][name], tensor), name
    # the metrics too: every record equal to the uninterrupted run's, apart from the timing field
    def records(run_dir):
        return [{k: v for k, v in json.loads(line).items() if k != "time_s"}
                for line in (run_dir / "metrics.jsonl").read_text().splitlines()]

    assert records(out) == records(tmp_path / "ref") and len(records(out)) == 3


@pytest.mark.gpu
@pytest.mark.skipif(not torch.cuda.is_available(), reason="needs a CUDA GPU")
def test_one_gpu(data_dir, tmp_path):
    assert main(_args(data_dir, tmp_path, "--epochs", "1", "--device", "cuda")) == 0
    load_checkpoint(tmp_path / "best.pt", map_location="cpu")  # a GPU checkpoint loads on CPU


@pytest.mark.gpu
@pytest.mark.skipif(torch.cuda.device_count() < 2, reason="needs 2 CUDA GPUs")
def test_dataparallel_on_two_gpus(data_dir, tmp_path):
    assert main(_args(data_dir, tmp_path, "--epochs", "1", "--parallel", "dp")) == 0
    assert not any(k.startswith("module.") for k in torch.load(tmp_path / "best.pt", weights_only=True)["model"])


@pytest.mark.gpu
@pytest.mark.skipif(torch.cuda.device_count() < 2, reason="needs 2 CUDA GPUs")
def test_ddp_on_two_gpus_with_nccl(data_dir, tmp_path):
    cmd = [sys.executable, "-m", "torch.distributed.run", "--standalone", "--nproc_per_node=2", "-m",
           "textpipe.train", *_args(data_dir, tmp_path, "--epochs", "1", "--parallel", "ddp")]
    assert subprocess.run(cmd, env=_env(), timeout=300).returncode == 0
    assert json.loads((tmp_path / "summary.json").read_text())["replicas_in_sync"]


def test_resume_with_different_flags_is_refused(data_dir, tmp_path, capsys):
    assert main(_args(data_dir, tmp_path, "--max-steps", "3")) == 0
    capsys.readouterr()
    assert main(_args(data_dir, tmp_path, "--max-steps", "3", "--batch-size", "4", "--resume")) == 2
    assert "--batch-size 8 -> 4" in capsys.readouterr().err
    assert main(_args(data_dir, tmp_path, "--max-steps", "3", "--embed-dim", "12", "--resume")) == 2
    assert "--embed-dim 8 -> 12" in capsys.readouterr().err
    assert main(_args(data_dir, tmp_path, "--resume", str(tmp_path / "nope.pt"))) == 2
    err = capsys.readouterr().err
    assert err.startswith("error: checkpoint") and "does not exist" in err and err.count("\n") == 1


def test_resume_of_a_corrupt_or_mismatched_checkpoint_is_one_error_line(data_dir, tmp_path, capsys):
    assert main(_args(data_dir, tmp_path, "--max-steps", "3")) == 0
    capsys.readouterr()
    (tmp_path / "junk.pt").write_bytes(b"not a checkpoint")
    assert main(_args(data_dir, tmp_path, "--max-steps", "3", "--resume", str(tmp_path / "junk.pt"))) == 2
    err = capsys.readouterr().err
    assert err.startswith("error: checkpoint") and "corrupt" in err and err.count("\n") == 1
    ckpt = torch.load(tmp_path / "last.pt", weights_only=True)
    ckpt["model"]["fc.weight"] = torch.zeros(3, 5)  # weights of another shape than its model_config
    torch.save(ckpt, tmp_path / "shape.pt")
    assert main(_args(data_dir, tmp_path, "--max-steps", "3", "--resume", str(tmp_path / "shape.pt"))) == 2
    err = capsys.readouterr().err
    assert err.startswith("error: ") and "fc.weight" in err and err.count("\n") == 1 and "Traceback" not in err


def test_early_stopping_with_patience(data_dir, tmp_path, capsys):
    # lr 0: the weights never change, so validation accuracy never improves after epoch 1
    assert main(_args(data_dir, tmp_path, "--epochs", "5", "--lr", "0", "--patience", "2")) == 0
    assert "early stop: no better validation accuracy for 2 epochs" in capsys.readouterr().out
    assert len((tmp_path / "metrics.jsonl").read_text().splitlines()) == 3


def test_tensorboard_flag(data_dir, tmp_path, capsys):
    args = _args(data_dir, tmp_path, "--tensorboard", str(tmp_path / "tb"), "--max-steps", "2")
    try:
        import torch.utils.tensorboard  # noqa: F401
    except ImportError:  # not installed: refused before any work
        assert main(args) == 2
        assert capsys.readouterr().err == "error: --tensorboard needs the tensorboard package: pip install tensorboard\n"
        assert not any(tmp_path.iterdir())
    else:
        assert main(args) == 0
        assert any((tmp_path / "tb").iterdir())


def test_a_directory_holding_a_run_is_refused_unless_resume_or_overwrite(data_dir, tmp_path, capsys):
    assert main(_args(data_dir, tmp_path, "--max-steps", "3")) == 0
    first = (tmp_path / "metrics.jsonl").read_bytes()
    capsys.readouterr()
    assert main(_args(data_dir, tmp_path, "--max-steps", "3")) == 2
    err = capsys.readouterr().err
    assert err.count("\n") == 1 and "already holds a run (last.pt, best.pt, metrics.jsonl, summary.json" in err
    assert "--resume" in err and "--overwrite" in err
    assert (tmp_path / "metrics.jsonl").read_bytes() == first  # untouched
    assert main(_args(data_dir, tmp_path, "--max-steps", "5", "--overwrite")) == 0
    assert "--overwrite: removed last.pt, best.pt, summary.json" in capsys.readouterr().out
    assert json.loads((tmp_path / "summary.json").read_text())["steps"] == 5
    assert main(_args(data_dir, tmp_path, "--max-steps", "5", "--overwrite", "--resume")) == 2
    assert "give one" in capsys.readouterr().err


def test_a_locked_directory_is_refused_naming_the_holder(data_dir, tmp_path, capsys):
    from textpipe.train.rundir import RunLock

    holder = subprocess.Popen([sys.executable, "-c", "import sys, time; from pathlib import Path; "
                               "from textpipe.train.rundir import RunLock; lock = RunLock(Path(sys.argv[1])).acquire(); "
                               "print('locked', flush=True); time.sleep(60)", str(tmp_path)],
                              env=_env(), stdout=subprocess.PIPE, text=True)
    try:
        assert holder.stdout.readline().strip() == "locked"
        assert main(_args(data_dir, tmp_path, "--max-steps", "2")) == 2
        err = capsys.readouterr().err
        assert f"is in use by another run (pid {holder.pid} on" in err and err.count("\n") == 1
    finally:
        holder.kill()
        holder.wait()
    # the holder died (SIGKILL): the kernel dropped its lock, and the next run takes the directory over
    with RunLock(tmp_path) as lock:
        assert lock.previous["pid"] == holder.pid
    assert main(_args(data_dir, tmp_path, "--max-steps", "2", "--resume")) == 0


def test_summary_records_how_the_run_was_made(data_dir, tmp_path):
    import hashlib

    import textpipe

    assert main(_args(data_dir, tmp_path, "--max-steps", "2", "--seed", "5")) == 0
    run = json.loads((tmp_path / "summary.json").read_text())["run"]
    assert run["config"]["seed"] == 5 == run["seed"] and run["config"]["batch_size"] == 8
    assert run["versions"]["torch"] == torch.__version__ and run["versions"]["textpipe"] == textpipe.__version__
    assert run["versions"]["python"] == ".".join(map(str, sys.version_info[:3]))
    assert run["device"]["type"] == "cpu" and run["started"].endswith("+00:00")
    train = next(d for d in run["data"] if d["split"] == "train")
    raw = (data_dir / "train.csv").read_bytes()
    assert train["bytes"] == len(raw) and train["sha256"] == hashlib.sha256(raw).hexdigest()
    assert {d["split"] for d in run["data"]} == {"train", "test"}
    git = run["git"]  # a checkout: its commit; an installed wheel: None
    assert git is None or (len(git["commit"]) == 40 and isinstance(git["dirty"], bool))


def test_tensorboard_gets_test_metrics_and_hparams(data_dir, tmp_path):
    pytest.importorskip("tensorboard")
    from tensorboard.backend.event_processing.event_accumulator import EventAccumulator

    assert main(_args(data_dir, tmp_path / "run", "--tensorboard", str(tmp_path / "tb"), "--max-steps", "4")) == 0
    acc = EventAccumulator(str(tmp_path / "tb")).Reload()
    assert {"train_loss", "val_accuracy", "test_accuracy", "test_macro_f1"} <= set(acc.Tags()["scalars"])
    summary = json.loads((tmp_path / "run" / "summary.json").read_text())
    assert acc.Scalars("test_accuracy")[-1].value == pytest.approx(summary["test"]["accuracy"])
    hp = EventAccumulator(str(tmp_path / "tb" / "hparams")).Reload()
    assert "hparam/test_accuracy" in hp.Tags()["scalars"]


def test_training_data_above_the_fused_limit_streams_through_the_autograd_loop(data_dir, tmp_path, capsys,
                                                                               monkeypatch):
    # the fused step lists the whole epoch and holds every text in memory: above FUSED_MAX_ROWS the default
    # run trains with the streaming loop (and says so), and an explicit --fused is refused
    import textpipe.train.plan as plan_module
    import textpipe.train.setup as setup_module
    monkeypatch.setattr(plan_module, "FUSED_MAX_ROWS", 100)
    monkeypatch.setattr(setup_module, "FUSED_MAX_ROWS", 100)
    assert plan_module.uses_fused_step(TrainConfig(), train_rows=100)
    assert not plan_module.uses_fused_step(TrainConfig(), train_rows=101)
    assert plan_module.uses_bucketing(TrainConfig(), train_rows=101)
    assert main(_args(data_dir, tmp_path / "auto", "--epochs", "1")) == 0
    assert "note: 360 training rows (> 100): the streaming autograd loop trains" in capsys.readouterr().out
    assert main(_args(data_dir, tmp_path / "forced", "--epochs", "1", "--fused")) == 2
    err = capsys.readouterr().err
    assert "--fused holds every training text in memory" in err and "360 rows" in err and "--no-fused" in err


def test_hogwild_threads_train_to_the_accuracy_of_one_thread(data_dir, tmp_path):
    from textpipe.train import TrainConfig, fit

    common = dict(data_dir=str(data_dir), embed_dim=8, buckets=512, epochs=3, batch_size=16, lr=4.0,
                  val_fraction=0.1, progress=False)
    one = fit(TrainConfig(output_dir=str(tmp_path / "one"), **common))
    two = fit(TrainConfig(output_dir=str(tmp_path / "two"), hogwild=2, **common))
    assert two["steps"] == one["steps"] and two["rows"] == one["rows"]
    assert two["best_val_accuracy"] > 0.5 and abs(two["test"]["accuracy"] - one["test"]["accuracy"]) <= 0.1
    assert load_checkpoint(tmp_path / "two" / "last.pt")["step"] == two["steps"]


@pytest.mark.parametrize("extra, message", [
    (["--hogwild", "0"], r"hogwild \(--hogwild\) must be >= 1"),
    (["--hogwild", "2", "--save-every", "5"], "checkpoints at epoch ends only"),
    (["--hogwild", "2", "--no-fused"], "--hogwild 2 needs the fused SGD step on the CPU; this run has the autograd loop"),
])
def test_hogwild_is_refused_where_it_cannot_work(data_dir, tmp_path, capsys, extra, message):
    assert main(_args(data_dir, tmp_path, "--epochs", "1", *extra)) == 2
    assert re.search(message, capsys.readouterr().err)


@pytest.mark.parametrize("stop", [False, True])
def test_a_failed_background_checkpoint_write_is_raised_and_never_hides_another_error(data_dir, tmp_path, capsys,
                                                                                      monkeypatch, stop):
    import textpipe.train.loop as train_module
    from textpipe.core.fileio import WriteError
    from textpipe.train import TrainConfig, fit

    def full_disk(out, ckpt, history, *, improved):
        raise WriteError(28, f"no space left on the device while trying to write {out / 'last.pt'}")

    def report(record):
        if stop:
            raise RuntimeError("trial stopped")  # as tune's ASHA stops a trial

    monkeypatch.setattr(train_module, "write_epoch_files", full_disk)
    cfg = TrainConfig(data_dir=str(data_dir), output_dir=str(tmp_path), embed_dim=8, buckets=512, epochs=2,
                      batch_size=16, progress=False)
    with pytest.raises(RuntimeError if stop else WriteError, match="trial stopped" if stop else "no space left"):
        fit(cfg, report=report)
    assert ("the checkpoint being written failed too: no space left" in capsys.readouterr().err) == stop
