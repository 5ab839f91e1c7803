"""Checkpoints: round trip, wrapped -> bare on CPU, `module.` prefix, atomic writes, clear errors.

Run: python -m pytest -q tests/test_checkpoint.py
"""
import errno
import os
import random
import zipfile
from pathlib import Path

import numpy as np
import pytest
from hypothesis import given, settings, strategies as st

from _diskfull import fill_disk
import torch

from textpipe.checkpoint import (FORMAT_VERSION, CheckpointError, capture_rng_state, load_checkpoint,
                                 restore_rng_state, save_checkpoint, strip_module_prefix)
from textpipe.core.fileio import WriteError
from textpipe.models.bag import ModelConfig, TextClassifier

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
    ckpt["model"] = wrapped.state_dict()  # as a script that forgot to unwrap would save it (version 1: no checksum)
    ckpt["format_version"], ckpt["vocab_itos"] = 1, ITOS  # version 1: a list
    del ckpt["checksum"]
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
    with pytest.raises(CheckpointError, match="has format_version 99, but this textpipe reads format_version 1 or 2 or 3"):
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


# ---------------------------------------------------------------- integrity (issue 9)

def _flip_tensor_bytes(path, n=64):
    """Invert `n` bytes inside the largest tensor's data in the zip (torch does not verify them)."""
    data = bytearray(path.read_bytes())
    with zipfile.ZipFile(path) as z:
        info = max((i for i in z.infolist() if "/data/" in i.filename), key=lambda i: i.file_size)
    header = info.header_offset
    start = header + 30 + int.from_bytes(data[header + 26:header + 28], "little") \
        + int.from_bytes(data[header + 28:header + 30], "little")
    for i in range(start + 8, start + 8 + n):
        data[i] ^= 0xFF
    path.write_bytes(bytes(data))


def _edit(src, dst, *, reseal, **changes):
    """Rewrite a checkpoint with `changes`; with `reseal`, recompute its checksum as a rewriting tool would."""
    from textpipe.checkpoint._integrity import entry_digests

    ckpt = torch.load(src, weights_only=True)
    for key, value in changes.items():
        if key == "model_config":
            ckpt[key] = {**ckpt[key], **value}
        else:
            ckpt[key] = value
    if reseal:
        ckpt["checksum"]["entries"] = entry_digests(ckpt)
    torch.save(ckpt, dst)
    return dst


def test_flipped_tensor_bytes_are_detected(tmp_path):
    path = _save(tmp_path / "c.pt", _model())
    _flip_tensor_bytes(path)
    damaged = torch.load(path, weights_only=True)  # torch itself reads the damaged file without a word
    assert not torch.equal(damaged["model"]["embedding.weight"], _model().embedding.weight.detach())
    with pytest.raises(CheckpointError, match=r"c\.pt' failed its integrity check: the SHA-256 of 'model' "
                                              r"\(the model weights\) does not match"):
        load_checkpoint(path)


@pytest.mark.parametrize("key,value,what", [
    ("vocab_itos", ITOS[:19] + ["renamed"], "vocab_itos"), ("epoch", 2, "epoch"), ("class_names", ["a", "b", "c", "d"], "class_names"),
    ("train_config", {"lr": 9.0}, "train_config"), ("rng", {"torch": torch.zeros(3)}, "rng"),
])
def test_any_edited_entry_fails_the_checksum(tmp_path, key, value, what):  # edits the cross-checks cannot see
    path = _edit(_save(tmp_path / "c.pt", _model()), tmp_path / "e.pt", reseal=False, **{key: value})
    with pytest.raises(CheckpointError, match=f"e\\.pt' failed its integrity check: the SHA-256 of '{what}'"):
        load_checkpoint(path)


def test_an_added_or_removed_entry_fails_the_checksum(tmp_path):
    good = _save(tmp_path / "c.pt", _model())
    ckpt = torch.load(good, weights_only=True)
    torch.save({**ckpt, "extra": 1}, tmp_path / "added.pt")
    with pytest.raises(CheckpointError, match=r"entries \['extra'\] are not covered by its checksum"):
        load_checkpoint(tmp_path / "added.pt")
    del ckpt["metrics"]
    torch.save(ckpt, tmp_path / "removed.pt")
    with pytest.raises(CheckpointError, match=r"entries \['metrics'\] of its checksum record are missing"):
        load_checkpoint(tmp_path / "removed.pt")
    del ckpt["checksum"]
    torch.save(ckpt, tmp_path / "none.pt")
    with pytest.raises(CheckpointError, match="has no valid checksum record"):
        load_checkpoint(tmp_path / "none.pt")


@pytest.mark.parametrize("changes,match", [
    ({"vocab_itos": ITOS[:10]}, "vocab_itos holds 10 tokens but model_config.vocab_size is 20"),
    ({"vocab_itos": ITOS[:19] + ["w0"]}, "vocab_itos holds 1 duplicate token"),
    ({"vocab_itos": ITOS[:19] + [7]}, "vocab_itos must be a list of str tokens"),
    ({"vocab_default_index": 20}, r"vocab_default_index must be None or an int in \[0, 20\), found 20"),
    ({"class_names": ["a", "b"]}, r"2 class names \['a', 'b'\] for a classifier with 4 outputs"),
    ({"model_config": {"embed_dim": 8}}, r"weight shapes embedding\.weight \(36, 4\) \(expected \(36, 8\)\)"),
    ({"model_config": {"buckets": 8}}, r"embedding\.weight \(36, 4\) \(expected \(28, 4\)\)"),
    ({"model_config": {"num_classes": 3}}, r"fc\.weight \(4, 4\) \(expected \(3, 4\)\)"),
    ({"model_config": {"vocab_size": 30}}, "vocab_itos holds 20 tokens but model_config.vocab_size is 30"),
    ({"model_config": {"dropout": 0.1}}, r"model_config has fields \['dropout'\] that the 'bag' model does not know"),
    ({"model_config": {"ngrams": 3}}, "model_config is invalid: ngrams must be 1 or 2"),
    ({"model": {}}, r"missing weights \['embedding.weight', 'fc.weight', 'fc.bias'\]"),
    ({"step": -1}, "step must be an int >= 0, found -1"),
    ({"model_config": {"embed_dim": "4"}}, "model_config.embed_dim must be int, found '4'"),
    ({"model_config": {"ngrams": True}}, "model_config.ngrams must be int, found True"),
])
@pytest.mark.parametrize("reseal", [True, False])
def test_parts_that_do_not_belong_together_are_refused(tmp_path, changes, match, reseal):
    # resealed, the checksum matches: only the cross-checks can catch these (as in version 1 files);
    # not resealed, they still speak first: their message names the part that does not fit
    path = _edit(_save(tmp_path / "c.pt", _model()), tmp_path / "x.pt", reseal=reseal, **changes)
    with pytest.raises(CheckpointError, match=r"checkpoint '.*x\.pt': .*" + match):
        load_checkpoint(path)


def test_an_edited_file_is_reported_by_the_cross_check_that_names_the_part_when_one_fails(tmp_path):
    # not resealed: the checksum would fail too, but the cross-check's message says more
    path = _edit(_save(tmp_path / "c.pt", _model()), tmp_path / "x.pt", reseal=False,
                 model={**_model().state_dict(), "fc.weight": torch.zeros(3, 5)})
    with pytest.raises(CheckpointError, match=r"weight shapes fc\.weight \(3, 5\) \(expected \(4, 4\)\)"):
        load_checkpoint(path)


def test_load_model_of_a_shape_mismatch_is_a_checkpoint_error_not_a_state_dict_trace(tmp_path):
    from textpipe.checkpoint import load_model

    path = _edit(_save(tmp_path / "c.pt", _model()), tmp_path / "x.pt", reseal=True, model_config={"embed_dim": 8})
    with pytest.raises(CheckpointError, match="the weights do not match model_config"):
        load_model(path)


V1 = Path(__file__).parent / "data" / "checkpoint_v1.pt"  # written by textpipe 0.1.0 (main at 09244ef), no class names


def test_an_old_version_1_checkpoint_loads_and_its_class_names_fall_back_to_numbers():
    from textpipe.checkpoint import class_names, load_model

    model, vocab, ckpt = load_model(V1)
    assert ckpt["format_version"] == 1 and "checksum" not in ckpt and ckpt["class_names"] is None
    assert (ckpt["epoch"], ckpt["step"], len(vocab)) == (2, 11, 20)
    assert class_names(ckpt) == ["0", "1", "2", "3"]
    del ckpt["class_names"]  # older still: no key at all
    assert class_names(ckpt) == ["0", "1", "2", "3"]
    logits = model(torch.tensor([[2, 3, 4], [5, 0, 0]]))  # the outputs textpipe 0.1.0 computed for it
    torch.testing.assert_close(logits, torch.tensor([[-0.8483, -1.5323, 0.1949, 0.2454],
                                                     [-0.5041, -1.2751, -0.0930, -0.0404]]), atol=1e-4, rtol=0)


def test_class_names_are_the_saved_ones_when_present(tmp_path):
    from textpipe.checkpoint import class_names

    ckpt = load_checkpoint(_save(tmp_path / "c.pt", _model(), class_names=["W", "S", "B", "T"]))
    assert class_names(ckpt) == ["W", "S", "B", "T"]


def test_an_old_checkpoint_is_still_cross_checked(tmp_path):
    _edit(V1, tmp_path / "cut.pt", reseal=False, vocab_itos=ITOS[:10])
    with pytest.raises(CheckpointError, match="vocab_itos holds 10 tokens but model_config.vocab_size is 20"):
        load_checkpoint(tmp_path / "cut.pt")


def test_a_directory_and_a_permission_error_get_their_own_messages(tmp_path, monkeypatch):
    (tmp_path / "d.pt").mkdir()
    with pytest.raises(IsADirectoryError, match=r"d\.pt' is a directory; give the path of a checkpoint file"):
        load_checkpoint(tmp_path / "d.pt")
    path = _save(tmp_path / "c.pt", _model())
    if os.geteuid() != 0:
        path.chmod(0)
    else:  # root reads anything: let the open fail as it would for another user
        def denied(f, *args, **kwargs):
            raise PermissionError(errno.EACCES, "Permission denied", str(f))
        monkeypatch.setattr(torch, "load", denied)
    with pytest.raises(PermissionError, match=r"permission denied: cannot read checkpoint '.*c\.pt'"):
        load_checkpoint(path)


def test_disk_full_during_save_is_a_write_error_and_keeps_the_old_file(tmp_path, monkeypatch):
    path = _save(tmp_path / "last.pt", _model())
    before = path.read_bytes()
    fill_disk(monkeypatch, room=100)  # 100 bytes of the new file fit, then the disk is full
    with pytest.raises(WriteError, match=r"no space left on the device while trying to write .*last\.pt"):
        _save(path, _model())
    assert path.read_bytes() == before and [p.name for p in tmp_path.iterdir()] == ["last.pt"]


def test_save_into_a_directory_is_a_write_error(tmp_path):
    (tmp_path / "x.pt").mkdir()
    with pytest.raises(WriteError, match=r"x\.pt: it is a directory"):
        _save(tmp_path / "x.pt", _model())


def test_copy_checkpoint_without_hard_links_copies_and_leaves_no_temp(tmp_path, monkeypatch):
    from textpipe.checkpoint import copy_checkpoint

    _save(tmp_path / "last.pt", _model())

    def no_links(src, dst):
        raise OSError(errno.EXDEV, "Invalid cross-device link")
    monkeypatch.setattr(os, "link", no_links)
    copy_checkpoint(tmp_path / "last.pt", tmp_path / "best.pt")
    assert (tmp_path / "best.pt").read_bytes() == (tmp_path / "last.pt").read_bytes()
    assert sorted(p.name for p in tmp_path.iterdir()) == ["best.pt", "last.pt"]
    with pytest.raises(FileNotFoundError, match="cannot copy checkpoint .* it does not exist"):
        copy_checkpoint(tmp_path / "nope.pt", tmp_path / "best.pt")


@pytest.mark.parametrize("cfg", [dict(vocab_size=20, embed_dim=4, buckets=16), dict(vocab_size=7, ngrams=1),
                                 dict(vocab_size=50, num_classes=9, embed_dim=3, buckets=5, pad_idx=4)])
def test_the_shapes_checked_on_load_are_those_of_a_real_model(cfg):
    from textpipe.models import state_shapes as expected_shapes

    config = ModelConfig(**cfg)
    assert expected_shapes(config) == {k: tuple(v.shape) for k, v in TextClassifier(config).state_dict().items()}


def test_integrity_module_docstring_examples_run():
    import doctest

    import textpipe.checkpoint._integrity as integrity

    result = doctest.testmod(integrity, optionflags=doctest.ELLIPSIS, verbose=False)
    assert result.attempted > 0 and result.failed == 0


def test_temps_of_killed_saves_are_swept_also_those_of_textpipe_0_1_0(tmp_path):
    import subprocess
    import sys

    import textpipe.core.fileio as fileio

    dead = subprocess.run([sys.executable, "-c", "import os; print(os.getpid())"], capture_output=True, text=True,
                          check=True).stdout.strip()  # a PID that no longer runs
    for name in (f".last.pt.tmp{dead}", f".last.pt.tmp-{fileio.HOST}-{dead}-0123abcd"):
        (tmp_path / name).write_bytes(b"half a checkpoint")
    (tmp_path / f".last.pt.tmp{os.getpid()}").write_bytes(b"a live writer's")  # kept: its writer runs
    _save(tmp_path / "last.pt", _model())
    assert sorted(p.name for p in tmp_path.iterdir()) == [f".last.pt.tmp{os.getpid()}", "last.pt"]


def test_digests_tell_apart_what_a_naive_encoding_would_not():
    from textpipe.checkpoint._integrity import entry_digests

    pairs = [(["ab", "c"], ["a", "bc"]), ([1], [1.0]), ([1], [True]), (["1"], [1]), ([None], [[]]),
             ({"a": 1}, [["a", 1]]), ([torch.zeros(2)], [torch.zeros(2, 1)]), ([torch.zeros(2)], [torch.zeros(2).half()])]
    for a, b in pairs:
        assert entry_digests({"x": a}) != entry_digests({"x": b}), (a, b)
    assert entry_digests({"x": ("a", "b")}) == entry_digests({"x": ["a", "b"]})  # pickle may turn one into the other


def test_a_checkpoint_holding_numpy_values_is_not_called_corrupt(tmp_path):
    path = tmp_path / "np.pt"
    torch.save({"format_version": 2, "lr": np.float64(0.5)}, path)
    with pytest.raises(CheckpointError, match=r"holds objects that safe loading \(weights_only=True\) refuses"):
        load_checkpoint(path)


def test_load_model_gives_the_vocabulary_the_tokenizer_it_was_built_with(tmp_path):
    from textpipe.checkpoint import load_model
    _, vocab, _ = load_model(_save(tmp_path / "split.pt", _model(), data={"tokenizer": "split"}))
    assert vocab.tokenizer_name == "split" and vocab.tokenize("Hello, World!") == ["Hello,", "World!"]
    _, old, _ = load_model(_save(tmp_path / "plain.pt", _model()))  # no data record: basic_english
    assert old.tokenizer_name == "basic_english"


def test_a_snapshot_keeps_its_moment_while_training_changes_the_model(tmp_path):
    # the end-of-epoch checkpoint is written on another thread while the next epoch trains: what it writes
    # must be the weights and optimizer state of the moment it was taken, not the live tensors
    from textpipe.checkpoint import checkpoint_dict, write_checkpoint

    model = _model()
    opt = torch.optim.SGD(model.parameters(), lr=0.1, momentum=0.9)
    model(torch.tensor([[2, 3]])).sum().backward()
    opt.step()
    before = {k: v.clone() for k, v in model.state_dict().items()}
    momentum = opt.state_dict()["state"][0]["momentum_buffer"].clone()
    ckpt = checkpoint_dict(model=model, model_config=model.config, vocab_itos=ITOS, epoch=0, step=1, optimizer=opt,
                           snapshot=True)
    live = checkpoint_dict(model=model, model_config=model.config, vocab_itos=ITOS, epoch=0, step=1)
    with torch.no_grad():
        for p in model.parameters():
            p.add_(1.0)
    model(torch.tensor([[2, 3]])).sum().backward()
    opt.step()  # changes the momentum buffer in place
    write_checkpoint(tmp_path / "a.pt", ckpt)
    saved = load_checkpoint(tmp_path / "a.pt")
    assert all(torch.equal(saved["model"][k], v) for k, v in before.items())
    assert torch.equal(saved["optimizer"]["state"][0]["momentum_buffer"], momentum)
    assert not torch.equal(live["model"]["fc.bias"], before["fc.bias"])  # without snapshot: the live tensors


def test_format_3_stores_the_vocabulary_packed_and_loads_it_as_a_list(tmp_path):
    itos = ITOS[:-3] + ["", "new\nline", "naïve"]
    model = _model()
    save_checkpoint(tmp_path / "c.pt", model=model, model_config=model.config, vocab_itos=itos, epoch=0, step=1)
    raw = torch.load(tmp_path / "c.pt", weights_only=True)
    assert raw["format_version"] == 3 and set(raw["vocab_itos"]) == {"text", "lengths"}
    assert load_checkpoint(tmp_path / "c.pt")["vocab_itos"] == itos


@pytest.mark.parametrize("packed", [{"text": "ab", "lengths": torch.tensor([1, 2])},
                                    {"text": "ab", "lengths": torch.tensor([3, -1])},
                                    {"text": "ab", "lengths": torch.tensor([1.0, 1.0])}, {"text": "ab"}])
def test_a_damaged_packed_vocabulary_is_named(tmp_path, packed):
    path = _edit(_save(tmp_path / "c.pt", _model()), tmp_path / "x.pt", reseal=True, vocab_itos=packed)
    with pytest.raises(CheckpointError, match=r"x\.pt'.*the packed vocabulary \(vocab_itos\) is damaged"):
        load_checkpoint(path)


@settings(max_examples=200)
@given(st.lists(st.text()))
def test_pack_tokens_round_trips_any_tokens(itos):
    from textpipe.checkpoint._io import pack_tokens, unpack_tokens

    assert unpack_tokens(pack_tokens(itos), "x") == itos


def test_a_vocab_is_packed_from_its_buffer_as_its_token_list_is(tmp_path):
    from textpipe.checkpoint._io import pack_tokens
    from textpipe.vocab import Vocab

    itos = ITOS[:-3] + ["naïve", "日本", "x"]
    a, b = pack_tokens(Vocab(itos)), pack_tokens(itos)
    assert a["text"] == b["text"] and torch.equal(a["lengths"], b["lengths"])
    model = _model()
    save_checkpoint(tmp_path / "v.pt", model=model, model_config=model.config, vocab_itos=Vocab(itos), epoch=0,
                    step=1)
    assert load_checkpoint(tmp_path / "v.pt")["vocab_itos"] == itos
