"""`--model hf:DIR` without the network: a tiny random BERT (2 layers, saved with save_pretrained under tmp_path)
with a WordPiece tokenizer trained here; train -> evaluate -> predict (original directory gone) -> export ->
reload in transformers, --freeze (frozen weights bit-identical), --layer-lr-decay, exact resume, offline errors,
2-process gloo DDP. GPU bf16 / --parallel dp runs need a GPU machine (not here).

Run: python -m pytest -q tests/test_hf.py          (about 40 s on 2 CPU cores)
"""
import json
import os
import subprocess
import sys
from pathlib import Path

import pytest
import torch

transformers = pytest.importorskip("transformers", reason="the hf extra (transformers) is not installed")
pytest.importorskip("tokenizers", reason="the hf extra (tokenizers) is not installed")

from textpipe.checkpoint import load_checkpoint  # noqa: E402
from textpipe.evaluate import evaluate  # noqa: E402
from textpipe.export import export_hf  # noqa: E402
from textpipe.models import build_model, model_config  # noqa: E402
from textpipe.models.hf import count_parameters  # noqa: E402
from textpipe.predict import predict  # noqa: E402
from textpipe.text.subword import train_tokenizer  # noqa: E402
from textpipe.train import fit, main  # noqa: E402
from textpipe.train.args import parse_train_args  # noqa: E402
from test_train import write_csv  # noqa: E402

ROOT = Path(__file__).resolve().parents[1]
STAND_IN = Path("/work/shared/data/ag_news/train.csv.gz")


@pytest.fixture(scope="module")
def data_dir(tmp_path_factory):
    d = tmp_path_factory.mktemp("data")
    write_csv(d / "train.csv", 160, seed=0)
    write_csv(d / "test.csv", 40, seed=1)
    return d


def _save_tiny(out: Path, kind: str, data_dir: Path) -> Path:
    """A random 2-layer encoder (no classification head) and a WordPiece tokenizer, as a model directory."""
    from textpipe.data.table import read_table

    texts = read_table(STAND_IN)[1][:1000] if STAND_IN.exists() else read_table(data_dir / "train.csv")[1]
    tok = train_tokenizer(texts, kind="wordpiece", vocab_size=400)
    fast = transformers.PreTrainedTokenizerFast(tokenizer_object=tok, unk_token="[UNK]", pad_token="[PAD]",
                                                cls_token="[CLS]", sep_token="[SEP]", mask_token="[MASK]",
                                                model_max_length=48)
    fast.save_pretrained(out)
    n = tok.get_vocab_size()
    if kind == "bert":
        cfg = transformers.BertConfig(vocab_size=n, hidden_size=16, num_hidden_layers=2, num_attention_heads=2,
                                      intermediate_size=32, max_position_embeddings=48)
        transformers.BertModel(cfg).save_pretrained(out)
    else:
        cfg = transformers.DistilBertConfig(vocab_size=n, dim=16, n_layers=2, n_heads=2, hidden_dim=32,
                                            max_position_embeddings=48)
        transformers.DistilBertModel(cfg).save_pretrained(out)
    return out


@pytest.fixture(scope="module")
def bert(tmp_path_factory, data_dir):
    return _save_tiny(tmp_path_factory.mktemp("tiny-bert"), "bert", data_dir)


def _args(data_dir, model_dir, out, *extra):
    return ["--data-dir", str(data_dir), "--model", f"hf:{model_dir}", "--output-dir", str(out), "--optimizer",
            "adamw", "--lr", "3e-3", "--batch-size", "16", "--val-fraction", "0.1", "--no-progress", "--epochs",
            "2", *extra]


def test_train_evaluate_predict_export_reload_without_the_model_dir(bert, data_dir, tmp_path, capsys):
    moved = tmp_path / "bert"
    os.rename(bert, moved)  # trained from a directory that then goes away
    try:
        assert main(_args(data_dir, moved, tmp_path / "run")) == 0
    finally:
        os.rename(moved, bert)
    out = capsys.readouterr().out
    assert "trainable parameters: " in out and "(--freeze none)" in out
    best = tmp_path / "run" / "best.pt"
    texts = ["stocks profit shares oil", "coach league season goal"]
    preds = predict(best, texts)  # the directory is back, but the checkpoint does not read it:
    ckpt = load_checkpoint(best)
    assert ckpt["model_name"] == "hf" and ckpt["model_config"]["hf_config"]["model_type"] == "bert"
    assert ckpt["data"]["tokenizer_state"]["special_tokens"] is True
    assert evaluate(best, data_dir / "test.csv")["n"] == 40
    exported = export_hf(best, tmp_path / "exported")
    net = transformers.AutoModelForSequenceClassification.from_pretrained(exported).eval()
    tok = transformers.AutoTokenizer.from_pretrained(exported)
    assert net.config.id2label[0] == ckpt["class_names"][0]
    batch = tok(texts, padding=True, return_tensors="pt")
    probs = net(**batch).logits.softmax(-1)
    mine = torch.tensor([[p[n] for n in ckpt["class_names"]] for p in (r["probs"] for r in preds)])
    torch.testing.assert_close(probs, mine, atol=1e-5, rtol=1e-4)


@pytest.mark.parametrize("kind", ["bert", "distilbert"])
def test_freeze_choices_count_trainable_parameters(kind, data_dir, tmp_path):
    src = _save_tiny(tmp_path / kind, kind, data_dir)
    counts = {}
    for freeze in ("none", "embeddings", "all-but-1", "encoder"):
        torch.manual_seed(0)
        model = build_model(model_config(f"hf:{src}", {"freeze": freeze}, vocab_size=400, num_classes=4))
        counts[freeze] = count_parameters(model)
    total = counts["none"][1]
    assert counts["none"][0] == total
    assert total > counts["embeddings"][0] > counts["all-but-1"][0] > counts["encoder"][0] > 0
    assert all(t == total for _, t in counts.values())


def test_frozen_weights_stay_bit_identical_and_layer_lr_decay(bert, data_dir, tmp_path):
    assert main(_args(data_dir, bert, tmp_path / "run", "--freeze", "all-but-1", "--layer-lr-decay", "0.5",
                      "--epochs", "1")) == 0
    trained = load_checkpoint(tmp_path / "run" / "last.pt")
    pretrained = transformers.BertModel.from_pretrained(bert).state_dict()
    for k in ("embeddings.word_embeddings.weight", "encoder.layer.0.attention.self.query.weight"):
        assert torch.equal(trained["model"][f"net.bert.{k}"], pretrained[k]), k  # frozen: untouched
    k = "encoder.layer.1.attention.self.query.weight"
    assert not torch.equal(trained["model"][f"net.bert.{k}"], pretrained[k])  # the top layer trained
    groups = trained["optimizer"]["param_groups"]
    assert sorted(g["initial_lr"] for g in groups) == pytest.approx([3e-3 * 0.5, 3e-3])  # layer 2 (top), head


class Stop(Exception):
    pass


def _stop(record):
    raise Stop  # a search stopping a trial: last.pt holds epoch 1


def test_resume_gives_the_uninterrupted_weights(bert, data_dir, tmp_path):
    assert main(_args(data_dir, bert, tmp_path / "ref")) == 0
    with pytest.raises(Stop):
        fit(parse_train_args(_args(data_dir, bert, tmp_path / "cut"))[0], report=_stop)
    assert main(_args(data_dir, bert, tmp_path / "cut", "--resume")) == 0
    ref, cut = load_checkpoint(tmp_path / "ref" / "last.pt"), load_checkpoint(tmp_path / "cut" / "last.pt")
    assert ref["step"] == cut["step"]
    for k, v in ref["model"].items():
        assert torch.equal(v, cut["model"][k]), k
    assert main(_args(data_dir, bert, tmp_path / "cut", "--layer-lr-decay", "0.9", "--resume")) == 2


def test_offline_name_not_cached_is_one_error_line(data_dir, tmp_path, capsys, monkeypatch):
    monkeypatch.setenv("HF_HUB_OFFLINE", "1")
    assert main(_args(data_dir, "some-org/not-cached-model", tmp_path / "run")) == 2
    err = capsys.readouterr().err.strip()
    assert err.count("\n") == 0 and err.startswith("error: 'some-org/not-cached-model' is not a directory")
    assert "HF_HUB_OFFLINE is set" in err and "huggingface-cli download some-org/not-cached-model" in err


def test_flag_conflicts_are_errors(bert, data_dir, tmp_path, capsys):
    assert main(_args(data_dir, bert, tmp_path / "r", "--tokenizer", "split")) == 2
    assert "reads the ids of its own tokenizer" in capsys.readouterr().err
    assert main(["--data-dir", str(data_dir), "--freeze", "encoder", "--output-dir", str(tmp_path / "r")]) == 2
    assert "apply to hf: models" in capsys.readouterr().err


@pytest.mark.slow
def test_ddp_two_processes_on_cpu_with_gloo(bert, data_dir, tmp_path):
    cmd = [sys.executable, "-m", "torch.distributed.run", "--standalone", "--nproc_per_node=2", "-m",
           "textpipe.train", *_args(data_dir, bert, tmp_path, "--epochs", "1", "--parallel", "ddp", "--device",
                                    "cpu", "--freeze", "embeddings")]
    env = {**os.environ, "PYTHONPATH": str(ROOT), "OMP_NUM_THREADS": "1", "HF_HUB_OFFLINE": "1"}
    proc = subprocess.run(cmd, cwd=tmp_path, env=env, capture_output=True, text=True, timeout=240)
    assert proc.returncode == 0, proc.stderr[-3000:]
    summary = json.loads((tmp_path / "summary.json").read_text())
    assert summary["replicas_in_sync"] and [r["rank"] for r in summary["ranks"]] == [0, 1]
    assert summary["test"]["n"] == 40
