"""Checkpoints: round trip, wrapped -> bare on CPU, `module.` prefix, atomic writes, clear errors.

Run: python -m pytest -q tests/test_checkpoint.py
"""
import random

import numpy as np
import pytest
import torch

from textpipe.checkpoint import (FORMAT_VERSION, capture_rng_state, load_checkpoint, restore_rng_state,
                                 save_checkpoint, strip_module_prefix)
from textpipe.model import ModelConfig, TextClassifier

ITOS = ["<pad>", "<unk>"] + [f"w{i}" for i in range(18)]


def _model():
    torch.manual_seed(1)
    model = TextClassifier(ModelConfig(vocab_size=len(ITOS), embed_dim=4, buckets=16))
    torch.nn.init.normal_(model.fc.weight)
    return model


def _save(path, model, **kw):
    return save_checkpoint(path, model=model, model_config=_model().config, vocab_itos=ITOS, epoch=1, step=7, **kw)


@pytest.mark.skipif(torch.cuda.is_available(), reason="nn.DataParallel runs a CPU module as a pass-through only on machines without CUDA")
def test_wrapped_model_checkpoint_loads_into_a_bare_model_with_the_same_outputs(tmp_path):
    wrapped = torch.nn.DataParallel(_model())
    opt = torch.optim.SGD(wrapped.parameters(), lr=0.1)
    sched = torch.optim.lr_scheduler.LambdaLR(opt, lambda s: 1.0)
    _save(tmp_path / "c.pt", wrapped, optimizer=opt, scheduler=sched, train_config={"lr": 0.1})
    ckpt = load_checkpoint(tmp_path / "c.pt", map_location="cpu")
    assert ckpt["format_version"] == FORMAT_VERSION and ckpt["step"] == 7 and ckpt["vocab_itos"] == ITOS
    assert not any(k.startswith("module.") for k in ckpt["model"])
    bare = TextClassifier(ModelConfig(**ckpt["model_config"]))
    bare.load_state_dict(ckpt["model"])
    ids = torch.tensor([[2, 3, 4], [5, 6, 0]])
    torch.testing.assert_close(bare(ids), wrapped(ids), rtol=0, atol=0)
    opt.load_state_dict(ckpt["optimizer"])


def test_a_raw_dataparallel_state_dict_is_loaded_without_the_prefix(tmp_path):
    wrapped = torch.nn.DataParallel(_model())
    assert all(k.startswith("module.") for k in wrapped.state_dict())
    _save(tmp_path / "c.pt", _model())
    ckpt = torch.load(tmp_path / "c.pt", weights_only=True)
    ckpt["model"] = wrapped.state_dict()  # as a script that forgot to unwrap would save it
    torch.save(ckpt, tmp_path / "prefixed.pt")
    bare = TextClassifier(ModelConfig(**ckpt["model_config"]))
    bare.load_state_dict(load_checkpoint(tmp_path / "prefixed.pt")["model"])
    assert strip_module_prefix({"fc.bias": 1}) == {"fc.bias": 1}


def test_writes_are_atomic_and_leave_no_temp_files(tmp_path):
    _save(tmp_path / "c.pt", _model())
    _save(tmp_path / "c.pt", _model())
    assert [p.name for p in tmp_path.iterdir()] == ["c.pt"]


@pytest.mark.parametrize("damage", ["truncated", "empty", "garbage"])
def test_corrupt_files_give_a_clear_error(tmp_path, damage):
    data = _save(tmp_path / "c.pt", _model()).read_bytes()
    data = {"truncated": data[: len(data) // 2], "empty": b"", "garbage": b"not a checkpoint" * 64}[damage]
    (tmp_path / "bad.pt").write_bytes(data)
    with pytest.raises(ValueError, match=r"bad\.pt' could not be read: the file is corrupt, truncated"):
        load_checkpoint(tmp_path / "bad.pt")


def test_unknown_version_and_foreign_files(tmp_path):
    torch.save({"format_version": 99}, tmp_path / "v.pt")
    with pytest.raises(ValueError, match="has format_version 99, but this textpipe reads format_version 1"):
        load_checkpoint(tmp_path / "v.pt")
    torch.save({"weights": torch.zeros(1)}, tmp_path / "f.pt")
    with pytest.raises(ValueError, match="not a textpipe checkpoint"):
        load_checkpoint(tmp_path / "f.pt")
    with pytest.raises(FileNotFoundError, match="does not exist"):
        load_checkpoint(tmp_path / "missing.pt")


def test_rng_state_round_trips_through_a_checkpoint(tmp_path):
    _save(tmp_path / "c.pt", _model(), rng=capture_rng_state())
    expected = (random.random(), np.random.rand(), torch.rand(1).item())
    restore_rng_state(load_checkpoint(tmp_path / "c.pt")["rng"])
    assert (random.random(), np.random.rand(), torch.rand(1).item()) == expected


def test_copy_checkpoint_keeps_the_old_file_when_the_source_is_saved_again(tmp_path):
    from textpipe.checkpoint import copy_checkpoint

    model = _model()
    _save(tmp_path / "last.pt", model)
    copy_checkpoint(tmp_path / "last.pt", tmp_path / "best.pt")
    with torch.no_grad():
        model.fc.bias.fill_(5.0)
    _save(tmp_path / "last.pt", model)  # replaces the name; best.pt keeps the earlier weights
    assert load_checkpoint(tmp_path / "best.pt")["model"]["fc.bias"].abs().sum() == 0
    assert load_checkpoint(tmp_path / "last.pt")["model"]["fc.bias"][0] == 5.0
