"""Tests that bite on resuming and on reusing prepared data: a run SIGKILLed after its first epoch ended resumes
with its metrics history whole, every `RESUME_KEYS` flag that differs is refused on `--resume`, and every
`DATA_KEYS` field that differs is refused by `fit(config, data=...)`."""
import json
import os
import signal
import subprocess
import sys
from pathlib import Path

import pytest

from textpipe.models import MODELS
from textpipe.train import DATA_KEYS, RESUME_KEYS, TrainConfig, fit, main, prepare_data
from textpipe.train.config import foreign_keys
from test_train import write_csv

ROOT = Path(__file__).resolve().parents[1]


@pytest.fixture(scope="module")
def data_dir(tmp_path_factory):
    d = tmp_path_factory.mktemp("data")
    write_csv(d / "train.csv", 200, seed=0)
    write_csv(d / "test.csv", 40, seed=1)
    return d


def _args(data_dir, out, *extra):
    return ["--data-dir", str(data_dir), "--output-dir", str(out), "--embed-dim", "8", "--buckets", "512",
            "--batch-size", "8", "--lr", "4", "--val-fraction", "0.1", "--no-progress", "--epochs", "3", *extra]


def _records(run_dir):
    return [{k: v for k, v in json.loads(line).items() if k != "time_s"}
            for line in (run_dir / "metrics.jsonl").read_text().splitlines()]


# the child trains, and after epoch 1 waits for that epoch's last.pt, then SIGKILLs itself (before epoch 2 ends)
_KILL_AFTER_EPOCH_1 = """
import os, signal, sys, time
from pathlib import Path
from textpipe.checkpoint import load_checkpoint
from textpipe.train import main
import textpipe.train.loop as loop
out = Path(sys.argv[sys.argv.index("--output-dir") + 1])
real_end_epoch = loop.end_epoch
def end_epoch(run, *a, **k):
    record = real_end_epoch(run, *a, **k)
    if record["epoch"] == 1:
        run.writer_thread.wait()  # epoch 1's last.pt and metrics are on disk
        assert load_checkpoint(out / "last.pt")["epoch"] == 1
        os.kill(os.getpid(), signal.SIGKILL)
    return record
loop.end_epoch = end_epoch
main(sys.argv[1:])
"""


def test_a_run_killed_after_its_first_epoch_resumes_with_its_whole_history(data_dir, tmp_path):
    assert main(_args(data_dir, tmp_path / "ref")) == 0
    out = tmp_path / "killed"
    env = {**os.environ, "PYTHONPATH": os.pathsep.join([str(ROOT), *sys.path]), "OMP_NUM_THREADS": "1"}
    proc = subprocess.run([sys.executable, "-c", _KILL_AFTER_EPOCH_1, *_args(data_dir, out)], env=env,
                          capture_output=True, text=True, timeout=300)
    assert proc.returncode == -signal.SIGKILL, proc.stderr[-2000:]
    assert len(_records(out)) == 1  # killed after epoch 1 ended, before epoch 2 did
    assert main(_args(data_dir, out, "--resume")) == 0
    assert _records(out) == _records(tmp_path / "ref") and len(_records(out)) == 3


# a valid value other than the _args/TrainConfig default, for every key a resumed run must keep
_CHANGED = {"epochs": 4, "batch_size": 16, "lr": 5.0, "optimizer": "adamw", "schedule": "cosine",
            "weight_decay": 0.01, "min_freq": 2, "max_tokens": 50, "val_fraction": 0.2, "seed": 9, "bucket": True,
            "max_steps": 3, "embed_dim": 12, "ngrams": 1, "buckets": 256, "tokenizer": "split", "fused": False,
            "model": next((m for m in MODELS if m not in ("bag", "hf")), None), "format": "csv", "quoting": "csv",
            "class_weight": "balanced", "label_smoothing": 0.1, "weighting": "mean",
            "minn": {"minn": 3, "maxn": 5}, "maxn": {"minn": 3, "maxn": 5},  # a dict: flags set together
            "warmup": 0.1, "clip_grad": 0.5, "kernel_sizes": 2, "num_filters": 7, "rnn_cell": "gru", "hidden_dim": 16,
            "num_layers": 2, "pooling": "mean", "num_heads": 2, "ff_dim": 32, "max_len": 64, "dropout": 0.2,
            "embed_dropout": 0.2, "unk_dropout": 0.2,
            "freeze_embeddings": True, "precision": "bf16",
            "layer_lr_decay": None}  # hf: models only: refused on resume in tests/test_hf.py


def _flag(key, value):
    if isinstance(value, bool):
        return [f"--{'' if value else 'no-'}{key.replace('_', '-')}"]
    return [f"--{key.replace('_', '-')}", str(value)]


@pytest.fixture(scope="module")
def stopped_run(data_dir, tmp_path_factory):
    out = tmp_path_factory.mktemp("stopped")
    assert main(_args(data_dir, out, "--max-steps", "2")) == 0
    return out


@pytest.mark.parametrize("key", RESUME_KEYS)
def test_every_resume_key_that_differs_is_refused(key, data_dir, stopped_run, capsys):
    assert set(_CHANGED) == set(RESUME_KEYS), "give the new RESUME_KEYS entry a changed value here"
    if _CHANGED[key] is None:
        pytest.skip(f"only one value of {key} exists yet for the bag model (hf: models: tests/test_hf.py)")
    args = _args(data_dir, stopped_run, "--max-steps", "2")
    if key == "model":  # another model: the bag's own flag would be refused first (it applies to the bag only)
        args = [a for a in args if a not in ("--buckets", "512")]
    changes = _CHANGED[key] if isinstance(_CHANGED[key], dict) else {key: _CHANGED[key]}
    flags = [f for k, v in changes.items() for f in _flag(k, v)]
    assert main([*args, *flags, "--resume"]) == 2
    err = capsys.readouterr().err
    # the stopped run is a bag run: another family's flag is refused before the checkpoint is compared
    refusal = "applies to --model" if key in foreign_keys("bag") else "differ from the run that wrote it"
    assert f"--{key.replace('_', '-')} " in err and refusal in err, err


@pytest.fixture(scope="module")
def prepared(data_dir):
    cfg = TrainConfig(data_dir=str(data_dir), val_fraction=0.1, progress=False)
    return cfg, prepare_data(cfg)


# a value other than the prepared config's, for every key the prepared data depends on ("OTHER": a file)
_DATA_CHANGES = {"data_dir": "OTHER_DIR", "train": "OTHER", "val": "OTHER", "test": "OTHER", "text_columns": [1, 2],
                 "label_column": 0, "classes": ["1", "2", "3", "4"], "tokenizer": "split", "min_freq": 2,
                 "max_tokens": 50, "val_fraction": 0.2, "seed": 9, "on_bad_rows": "skip", "format": "csv",
                 "quoting": "none"}


def _changed_data(key, tmp_path):
    other = tmp_path / "other"
    other.mkdir()
    write_csv(other / "train.csv", 50, seed=5)
    value = _DATA_CHANGES[key]
    return str(other) if value == "OTHER_DIR" else str(other / "train.csv") if value == "OTHER" else value


@pytest.mark.parametrize("key", DATA_KEYS)
def test_every_data_key_that_differs_is_refused_by_fit_with_prepared_data(key, prepared, data_dir, tmp_path):
    assert set(_DATA_CHANGES) == set(DATA_KEYS), "give the new DATA_KEYS entry a changed value here"
    cfg, data = prepared
    changed = {**vars(cfg), key: _changed_data(key, tmp_path), "output_dir": str(tmp_path / "run")}
    if key in ("train", "val"):  # a valid config: train replaces data_dir's, val replaces the carve-out
        changed["val_fraction"] = 0.0 if key == "val" else changed["val_fraction"]
    with pytest.raises(ValueError, match=rf"prepared with other settings \(.*\b{key}\b"):
        fit(TrainConfig(**changed), data=data)
