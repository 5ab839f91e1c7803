"""Checkpoint integrity: a SHA-256 of every entry, and cross-checks between config, vocabulary and weights.

torch's zip reader does not verify tensor data, so a checkpoint with flipped bytes loads and evaluates
without a word. `entry_digests` hashes each top-level entry (tensor bytes with dtype and shape, and every
number, string and container around them); `verify_digests` recomputes them on load. `check_consistency`
catches files whose parts do not belong together (a vocabulary cut short, class names for another head,
a config that does not match the weight shapes). Every failure is one `CheckpointError` naming the file.
"""
from __future__ import annotations

import array
import hashlib
import os
from typing import Any

import torch

ALGORITHM = "sha256"

# What each entry holds, for messages.
_ENTRY_NAMES = {"model": "the model weights", "optimizer": "the optimizer state", "scheduler": "the scheduler state",
                "scaler": "the fp16 gradient scaler state",
                "model_config": "the model config", "train_config": "the training config",
                "vocab_itos": "the vocabulary", "vocab_default_index": "the vocabulary's default index",
                "class_names": "the class names", "rng": "the random-number-generator states",
                "sampler": "the sampler position", "metrics": "the metrics"}
_SHOW = 3  # mismatching names listed in a message


class CheckpointError(ValueError):
    """A checkpoint file is corrupt, incomplete, inconsistent, or of another version; the message names the file."""


def _update(h, obj: Any) -> None:
    """Feed a canonical, type-tagged encoding of `obj` to the hash `h` (so 1, 1.0, "1" and True differ)."""
    if isinstance(obj, torch.Tensor):
        t = obj.detach()
        if t.layout != torch.strided:
            t = t.to_dense()
        t = t.cpu().contiguous()
        h.update(f"T{t.dtype}{tuple(t.shape)};".encode())
        if t.numel():
            h.update(t.reshape(-1).view(torch.uint8).numpy())
    elif isinstance(obj, dict):
        h.update(b"D%d;" % len(obj))
        for k, v in obj.items():  # insertion order: pickle keeps it
            _update(h, k)
            _update(h, v)
    elif isinstance(obj, (list, tuple)):  # one tag: a tuple may come back as a list and vice versa
        if obj and all(type(v) is str for v in obj):  # a vocabulary: in bulk, not 30,000 calls
            h.update(b"Ls%d;" % len(obj))
            h.update(array.array("q", map(len, obj)).tobytes())  # code-point lengths: the join is unambiguous
            h.update("".join(obj).encode("utf-8", "surrogatepass"))
            return
        h.update(b"L%d;" % len(obj))
        for v in obj:
            _update(h, v)
    elif obj is None:
        h.update(b"N;")
    elif isinstance(obj, bool):
        h.update(b"B1;" if obj else b"B0;")
    elif isinstance(obj, int):
        h.update(b"I%d;" % obj)
    elif isinstance(obj, float):
        h.update(b"F" + obj.hex().encode() + b";")
    elif isinstance(obj, str):
        data = obj.encode("utf-8", "surrogatepass")
        h.update(b"S%d;" % len(data) + data)
    elif isinstance(obj, bytes):
        h.update(b"Y%d;" % len(obj) + obj)
    else:  # torch.dtype, torch.device, ...: their repr is their identity
        h.update(f"O{type(obj).__qualname__}:{obj!r};".encode())


def entry_digests(ckpt: dict[str, Any]) -> dict[str, str]:
    """Hex SHA-256 of each entry of `ckpt` except `"checksum"`.

    Example:
        >>> entry_digests({"epoch": 1})["epoch"][:16]
        '3c5defc4cc6437aa'
        >>> a, b = torch.zeros(2), torch.tensor([0.0, 1e-45])  # differ in one bit
        >>> entry_digests({"model": {"w": a}}) == entry_digests({"model": {"w": b}})
        False
    """
    out = {}
    for key, value in ckpt.items():
        if key == "checksum":
            continue
        h = hashlib.sha256()
        _update(h, value)
        out[key] = h.hexdigest()
    return out


def verify_digests(ckpt: dict[str, Any], path: str | os.PathLike) -> None:
    """Raise CheckpointError unless `ckpt["checksum"]` matches its entries."""
    where = f"checkpoint {str(path)!r}"
    stored = ckpt.get("checksum")
    if (not isinstance(stored, dict) or stored.get("algorithm") != ALGORITHM
            or not isinstance(stored.get("entries"), dict)):
        raise CheckpointError(f"{where} has no valid checksum record (expected {{'algorithm': 'sha256', "
                              f"'entries': {{...}}}}, found {_short(stored)}): the file is corrupt or was "
                              "not written by textpipe.checkpoint.save_checkpoint")
    expected, actual = stored["entries"], entry_digests(ckpt)
    bad = [k for k in actual if k in expected and expected[k] != actual[k]]
    if bad:
        what = ", ".join(f"{k!r} ({_ENTRY_NAMES.get(k, 'an entry')})" for k in bad[:_SHOW])
        raise CheckpointError(f"{where} failed its integrity check: the SHA-256 of {what} does not match the one "
                              "recorded when it was saved. The file was damaged after it was written (disk, "
                              "copy or transfer); use another copy, or re-create it by training again")
    extra, missing = sorted(set(actual) - set(expected)), sorted(set(expected) - set(actual))
    if extra:
        raise CheckpointError(f"{where} failed its integrity check: its entries {extra} are not covered by its "
                              "checksum record; the file was altered after it was saved")
    if missing:
        raise CheckpointError(f"{where} failed its integrity check: entries {missing} of its checksum record "
                              "are missing from the file; the file was altered after it was saved")


def _short(obj: Any, width: int = 60) -> str:
    text = repr(obj)
    return text if len(text) <= width else text[: width - 3] + "..."


def _is_int(x: Any) -> bool:
    return isinstance(x, int) and not isinstance(x, bool)


def check_consistency(ckpt: dict[str, Any], path: str | os.PathLike) -> None:
    """Raise CheckpointError if the config, vocabulary, class names and weights do not belong together.

    Checks: `model_name` names a model of `textpipe.models.MODELS` and `model_config` builds its config;
    `len(vocab_itos) == vocab_size`, tokens unique strings; the default index inside the vocabulary; as many
    class names as the classifier has outputs; every weight present with the shape the config implies; `epoch`
    and `step` non-negative ints.
    """
    from textpipe.models import DEFAULT_MODEL, config_class, config_from_dict, state_shapes  # imports torch.nn

    where = f"checkpoint {str(path)!r}"
    name, cfg = ckpt.get("model_name", DEFAULT_MODEL), ckpt["model_config"]
    try:
        fields = config_class(name).__dataclass_fields__
    except (TypeError, ValueError) as e:
        raise CheckpointError(f"{where}: model_name: {e} (written by a newer textpipe?)") from None
    if not isinstance(cfg, dict):
        raise CheckpointError(f"{where}: model_config must be a dict of the {name!r} model's config fields, found "
                              f"{_short(cfg)}")
    for key, value in cfg.items():
        kind = type(fields[key].default) if key in fields else None
        if kind not in (int, bool):  # only the int and bool fields are checked here
            continue
        if not isinstance(value, kind) or (kind is int and isinstance(value, bool)):
            raise CheckpointError(f"{where}: model_config.{key} must be {kind.__name__}, found {_short(value)}")
    try:
        config = config_from_dict(name, cfg)
    except (TypeError, ValueError) as e:
        raise CheckpointError(f"{where}: model_config is invalid: {e}") from e

    itos = ckpt["vocab_itos"]
    if not isinstance(itos, list) or not all(isinstance(t, str) for t in itos):
        raise CheckpointError(f"{where}: vocab_itos must be a list of str tokens, found {_short(itos)}")
    if len(itos) != config.vocab_size:
        raise CheckpointError(f"{where}: vocab_itos holds {len(itos)} tokens but model_config.vocab_size is "
                              f"{config.vocab_size}: the vocabulary does not belong to these weights (the file "
                              "was altered or assembled from two runs)")
    if len(set(itos)) != len(itos):
        raise CheckpointError(f"{where}: vocab_itos holds {len(itos) - len(set(itos))} duplicate token(s)")
    default = ckpt.get("vocab_default_index")
    if default is not None and not (_is_int(default) and 0 <= default < len(itos)):
        raise CheckpointError(f"{where}: vocab_default_index must be None or an int in [0, {len(itos)}), "
                              f"found {default!r}")

    names = ckpt.get("class_names")
    if names is not None:
        if not isinstance(names, (list, tuple)) or not all(isinstance(n, str) for n in names):
            raise CheckpointError(f"{where}: class_names must be None or a list of str, found {_short(names)}")
        if len(names) != config.num_classes:
            raise CheckpointError(f"{where}: {len(names)} class names {_short(list(names))} for a classifier "
                                  f"with {config.num_classes} outputs (model_config.num_classes)")

    for key in ("epoch", "step"):
        if not (_is_int(ckpt[key]) and ckpt[key] >= 0):
            raise CheckpointError(f"{where}: {key} must be an int >= 0, found {ckpt[key]!r}")
    _check_weights(ckpt["model"], config, state_shapes(config), where)


def _check_weights(state: Any, config, expected: dict, where: str) -> None:
    if not isinstance(state, dict) or not all(isinstance(v, torch.Tensor) for v in state.values()):
        raise CheckpointError(f"{where}: 'model' must be a state dict of tensors, found {_short(state)}")
    missing = [k for k in expected if k not in state]
    unexpected = [k for k in state if k not in expected]
    wrong = [f"{k} {tuple(state[k].shape)} (expected {shape})" for k, shape in expected.items()
             if k in state and tuple(state[k].shape) != shape]
    problems = []
    if missing:
        problems.append(f"missing weights {missing[:_SHOW]}")
    if unexpected:
        problems.append(f"unexpected weights {unexpected[:_SHOW]}")
    if wrong:
        problems.append(f"weight shapes {', '.join(wrong[:_SHOW])}")
    if problems:
        raise CheckpointError(f"{where}: the weights do not match model_config {vars(config)}: "
                              f"{'; '.join(problems)}. The config and the weights come from different models")
