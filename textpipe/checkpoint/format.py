"""The checkpoint format: one `torch.save` dict, written atomically, read safely (`weights_only=True`).

This module is the only place that knows the keys. Everything in the file is a tensor, a number, a string,
a list or a dict, so loading never runs pickled code. Version 2 and 3 files carry a SHA-256 of every entry
(`checksum`), verified on load; version 1 files (no checksum) still load. Version 3 stores the vocabulary as
one string and a tensor of lengths (`_checkpoint_io.pack_tokens`); `load_checkpoint` gives it back as a list.
Example:

    >>> model, vocab, ckpt = load_model("runs/ag_news/best.pt")  # doctest: +SKIP
"""
from __future__ import annotations

import os
import random
import shutil
from collections.abc import Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import numpy as np
import torch
from torch import nn

from textpipe.checkpoint._integrity import (ALGORITHM, CheckpointError, check_consistency, entry_digests,
                                            verify_digests)
from textpipe.checkpoint._io import open_error, pack_tokens, sweep_legacy_temps, torch_save, unpack_tokens
from textpipe.core.distributed import unwrap
from textpipe.core.fileio import WriteError, atomic_write, describe_os_error, sweep_stale_temps, temp_path_for
from textpipe.models import DEFAULT_MODEL, build_model, config_from_dict, model_name

FORMAT_VERSION = 3  # 2: + "checksum" (SHA-256 of every entry); 3: vocab_itos packed (see `pack_tokens`)
READABLE_VERSIONS = (1, 2, 3)
_REQUIRED = ("format_version", "model", "model_config", "vocab_itos", "epoch", "step")


def strip_module_prefix(state_dict: dict[str, torch.Tensor]) -> dict[str, torch.Tensor]:
    """Drop the `module.` prefix that a state dict of a DataParallel/DDP wrapper carries.

    Example:
        >>> list(strip_module_prefix({"module.fc.bias": torch.zeros(1)}))
        ['fc.bias']
    """
    if state_dict and all(k.startswith("module.") for k in state_dict):
        return {k[len("module."):]: v for k, v in state_dict.items()}
    return state_dict


def capture_rng_state() -> dict[str, Any]:
    """The Python, NumPy, torch (and CUDA) random states, as weights_only-safe values."""
    np_state = np.random.get_state()
    return {
        "python": random.getstate(),
        "numpy": [np_state[0], torch.from_numpy(np_state[1].astype(np.int64)), *np_state[2:]],
        "torch": torch.get_rng_state(),
        "cuda": torch.cuda.get_rng_state_all() if torch.cuda.is_available() else [],
    }


def rank_rng_state(state: dict[str, Any], rank: int, world_size: int) -> dict[str, Any]:
    """The RNG states of process `rank` in a checkpoint's `rng`: a DDP run's checkpoint holds every rank's in
    `ranks` (see `textpipe.train.setup.rank_states`); with another number of processes, or a checkpoint of one
    process, everyone takes rank 0's.

    Example:
        >>> rank_rng_state({"torch": 0, "ranks": [{"torch": 0}, {"torch": 1}]}, 1, 2)
        {'torch': 1}
    """
    ranks = state.get("ranks")
    return ranks[rank] if ranks is not None and len(ranks) == world_size else state


def restore_rng_state(state: dict[str, Any]) -> None:
    """Inverse of `capture_rng_state` (CUDA states are restored only when as many GPUs are visible)."""
    version, internal, gauss = state["python"]
    random.setstate((version, tuple(internal), gauss))
    name, keys, pos, has_gauss, cached = state["numpy"]
    np.random.set_state((name, keys.numpy().astype(np.uint32), pos, has_gauss, cached))
    torch.set_rng_state(state["torch"].cpu())
    if state["cuda"] and torch.cuda.is_available() and torch.cuda.device_count() == len(state["cuda"]):
        torch.cuda.set_rng_state_all([s.cpu() for s in state["cuda"]])


def checkpoint_dict(*, model: nn.Module, model_config, vocab_itos, epoch: int,
                    step: int, optimizer=None, scheduler=None, scaler=None, train_config: dict | None = None,
                    vocab_default_index: int | None = 1, class_names: list[str] | None = None,
                    sampler: dict | None = None, rng: dict | None = None, metrics: dict | None = None,
                    data: dict | None = None, snapshot: bool = False) -> dict[str, Any]:
    """The entries of a checkpoint (what `save_checkpoint` writes, before its checksum).

    Args:
        model: the model, wrapped or not; the unwrapped module's weights are saved (no `module.` prefix).
        model_config: its config (a `textpipe.models` config; a dict means the default model's fields).
        vocab_itos: the vocabulary's tokens in id order, or the `textpipe.Vocab` itself (cheaper: no list).
        epoch, step: the epoch in progress and the optimizer steps done so far.
        scaler: the fp16 gradient scaler (`torch.amp.GradScaler`), whose scale a resumed run continues from.
        class_names: label names in label order, for reports and `textpipe.predict`.
        sampler: where training stands inside the epoch, e.g. `{"epoch": 2, "batches_done": 40}`.
        metrics: anything JSON-like worth keeping (val accuracy, best so far, ...).
        data: how the training data was read: `text_columns`, `label_column`, `label_values` (the raw label
            of each class), `tokenizer`, `rows` (see `data_info`).
        snapshot: copy the model, optimizer and scheduler tensors to the CPU, so that the dict keeps this
            moment's state while training goes on (for `write_checkpoint` on another thread); else the
            weights are the live parameters.
    """
    bare = unwrap(model)  # never save the wrapper: its keys would start with "module."
    name = DEFAULT_MODEL if isinstance(model_config, dict) else model_name(model_config)
    cfg = model_config if isinstance(model_config, dict) else vars(model_config).copy()
    states = {"model": bare.state_dict(), "optimizer": optimizer.state_dict() if optimizer is not None else None,
              "scheduler": scheduler.state_dict() if scheduler is not None else None,
              **({"scaler": scaler.state_dict()} if scaler is not None else {})}
    return {
        "format_version": FORMAT_VERSION,
        **({k: _cpu_copy(v) for k, v in states.items()} if snapshot else states),
        "model_name": name,
        "model_config": cfg,
        "train_config": train_config or {},
        "vocab_itos": pack_tokens(vocab_itos),
        "vocab_default_index": vocab_default_index,
        "class_names": list(class_names) if class_names is not None else None,
        "epoch": int(epoch),
        "step": int(step),
        "sampler": sampler or {},
        "rng": rng or {},
        "metrics": metrics or {},
        "data": data or {},
    }


def _cpu_copy(obj: Any) -> Any:
    """`obj` with every tensor in it (in dicts, lists, tuples) copied to the CPU."""
    if isinstance(obj, torch.Tensor):
        return obj.detach().to("cpu", copy=True)
    if isinstance(obj, dict):
        return {k: _cpu_copy(v) for k, v in obj.items()}
    if isinstance(obj, (list, tuple)):
        return type(obj)(_cpu_copy(v) for v in obj)
    return obj


def write_checkpoint(path: str | os.PathLike, ckpt: dict[str, Any], *, fsync: bool = True) -> Path:
    """Write the entries `ckpt` (from `checkpoint_dict`) atomically (through `textpipe.core.fileio.atomic_write`),
    with a SHA-256 of every entry.

    Args:
        fsync: flush the file to the disk before the rename (survives a power cut; ~20 ms for 36 MB).

    Raises:
        WriteError: disk full, permission denied, ...: the message names the path; the previous file at
            `path` is unchanged and no temp file is left.
    """
    ckpt = {**ckpt, "checksum": {"algorithm": ALGORITHM, "entries": entry_digests(ckpt)}}
    path = Path(path)
    # atomic: readers (and a run resumed after a kill) see the old file or the new one, never half of one;
    # a killed save's temp file is swept by the next save to the same path.
    sweep_legacy_temps(path)
    with atomic_write(path, mode="wb", fsync=fsync) as f:
        torch_save(ckpt, f)
    return path


def save_checkpoint(path: str | os.PathLike, *, fsync: bool = True, **entries: Any) -> Path:
    """`write_checkpoint(path, checkpoint_dict(**entries))`: write a checkpoint of the live state now.

    Example:
        >>> save_checkpoint("last.pt", model=model, model_config=cfg, vocab_itos=itos, epoch=0, step=10)  # doctest: +SKIP
    """
    return write_checkpoint(path, checkpoint_dict(**entries), fsync=fsync)


def copy_checkpoint(src: str | os.PathLike, dst: str | os.PathLike) -> None:
    """Make `dst` a copy of `src` atomically: a hard link (no bytes copied) where the filesystem allows.

    Safe because checkpoints are never modified in place: the next save of `src` replaces its name with a
    new file, and `dst` keeps the old one.

    Raises:
        WriteError: `dst` cannot be written (disk full, permission, a directory in the way); `dst` is unchanged.
        FileNotFoundError: `src` does not exist.
    """
    src, dst = Path(src), Path(dst)
    if not src.is_file():
        raise FileNotFoundError(f"cannot copy checkpoint {str(src)!r}: it does not exist")
    tmp = temp_path_for(dst)  # a name sweep_stale_temps knows, should this process be killed here
    try:
        os.link(src, tmp)
    except OSError:  # no hard links here (or across devices): copy the bytes
        with atomic_write(dst, mode="wb") as f, open(src, "rb") as g:
            shutil.copyfileobj(g, f, 1 << 20)
        return
    try:
        sweep_stale_temps(dst)
        os.replace(tmp, dst)
    except OSError as e:
        raise WriteError(e.errno, describe_os_error(e, dst)) from e
    finally:
        tmp.unlink(missing_ok=True)  # gone after a successful replace


def check_resume(ckpt: dict[str, Any], config: dict[str, Any], keys: Sequence[str], path) -> None:
    """Raise ValueError naming every flag in `keys` whose value differs from the checkpoint's `train_config`.

    Example:
        >>> check_resume({"train_config": {"lr": 0.1}}, {"lr": 0.2}, ["lr"], "last.pt")  # doctest: +ELLIPSIS
        Traceback (most recent call last):
        ValueError: --resume from last.pt: these flags differ from the run that wrote it: --lr 0.1 -> 0.2. ...
    """
    saved = ckpt["train_config"]
    diff = [f"--{k.replace('_', '-')} {saved[k]!r} -> {config[k]!r}" for k in keys
            if k in saved and saved[k] != config[k]]
    if diff:
        raise ValueError(f"--resume from {path}: these flags differ from the run that wrote it: {'; '.join(diff)}. "
                         "Resume with the same flags, or start a new --output-dir")


def class_names(ckpt: dict[str, Any]) -> list[str]:
    """The checkpoint's label names, or "0", "1", ... for a checkpoint saved without them."""
    return ckpt.get("class_names") or [str(i) for i in range(ckpt["model_config"]["num_classes"])]


def data_info(ckpt: dict[str, Any]) -> dict[str, Any]:
    """How the checkpoint's training data was read, with the defaults of checkpoints saved without it.

    Returns:
        `{"text_columns", "label_column"}` (None: the reader's defaults), `"label_values"` (the raw label of
        each class; old checkpoints: AG_NEWS's file labels 1..C), `"class_names"`, `"tokenizer"`, `"rows"`,
        `"format"`/`"quoting"` (the `--format`/`--quoting` it was trained with; None: by extension).
    """
    d = ckpt.get("data") or {}
    n = ckpt["model_config"]["num_classes"]
    return {"text_columns": d.get("text_columns"), "label_column": d.get("label_column"),
            "label_values": list(d.get("label_values") or range(1, n + 1)), "class_names": class_names(ckpt),
            "tokenizer": d.get("tokenizer") or "basic_english", "rows": d.get("rows") or {},
            "format": d.get("format"), "quoting": d.get("quoting")}


def load_checkpoint(path: str | os.PathLike, *, map_location: Any = "cpu") -> dict[str, Any]:
    """Read, verify and cross-check a checkpoint; tensors go to `map_location` (default CPU, whatever saved it).

    Version 2 and 3 files are checked against their SHA-256 record; every version is checked for consistency
    (vocabulary size, class names, weight shapes against `model_config`).

    Raises:
        FileNotFoundError, IsADirectoryError, PermissionError: the file cannot be opened (the message says why).
        CheckpointError (a ValueError): the file is corrupt, truncated or altered, is not a textpipe
            checkpoint, has an unknown version, or its parts do not belong together.
    """
    path = Path(path)
    where = f"checkpoint {str(path)!r}"
    try:
        ckpt = torch.load(path, map_location=map_location, weights_only=True)
    except OSError as e:  # before the generic handler: permission denied is not corruption
        raise open_error(e, path) from None
    except Exception as e:  # noqa: BLE001 - torch.load raises many types (zip, pickle, EOF, KeyError, ...)
        detail = (str(e).strip().splitlines() or [""])[0][:200]
        globals_ = [ln.strip() for ln in str(e).splitlines() if "Unsupported global" in ln]
        if globals_:  # a complete file holding objects that safe loading refuses (e.g. numpy scalars)
            raise CheckpointError(f"{where} holds objects that safe loading (weights_only=True) refuses "
                                  f"({globals_[0][:200]}): it was not written by textpipe's save_checkpoint; "
                                  "re-save it with plain Python numbers and tensors") from e
        raise CheckpointError(f"{where} could not be read: the file is corrupt, truncated, or not a textpipe "
                              f"checkpoint ({type(e).__name__}: {detail})") from e
    if not isinstance(ckpt, dict) or "format_version" not in ckpt:
        raise CheckpointError(f"{where} is not a textpipe checkpoint: no 'format_version' key")
    version = ckpt["format_version"]
    if version not in READABLE_VERSIONS or isinstance(version, bool):
        raise CheckpointError(f"{where} has format_version {version!r}, but this textpipe reads format_version "
                              f"{' or '.join(map(str, READABLE_VERSIONS))}; load it with the textpipe version "
                              "that wrote it")
    missing = [k for k in _REQUIRED if k not in ckpt]
    if missing:
        raise CheckpointError(f"{where} is missing keys {missing}; it is not a complete textpipe checkpoint")
    stripped = strip_module_prefix(ckpt["model"]) if isinstance(ckpt["model"], dict) else ckpt["model"]
    itos = ckpt["vocab_itos"]
    if version >= 3 and isinstance(itos, dict):
        try:
            itos = unpack_tokens(itos, where)
        except ValueError as e:
            raise CheckpointError(str(e)) from None
    # The cross-checks first: for a file assembled from two runs they name the part that does not fit
    # (a bit flip passes them and fails the checksum, which covers the file as saved, prefix and all).
    check_consistency({**ckpt, "model": stripped, "vocab_itos": itos}, path)
    if version >= 2:
        verify_digests(ckpt, path)
    ckpt["model"], ckpt["vocab_itos"] = stripped, itos
    register_saved_tokenizer(ckpt)
    return ckpt


def register_saved_tokenizer(ckpt: dict[str, Any]) -> None:
    """Register the Hugging Face tokenizer a checkpoint carries (`data.tokenizer_state`) under its name, so that
    its vocabulary tokenizes on a machine without the original tokenizer file or model directory."""
    info = ckpt.get("data") or {}
    if info.get("tokenizer_state"):
        from textpipe.text.subword import from_state  # lazily: only checkpoints with a subword tokenizer
        from textpipe.text.tokenizer import register_tokenizer

        register_tokenizer(info["tokenizer"], from_state(info["tokenizer_state"]), overwrite=True)


def model_config_of(ckpt: dict[str, Any]):
    """The model config a (loaded, checked) checkpoint was saved with."""
    return config_from_dict(ckpt.get("model_name", DEFAULT_MODEL), ckpt["model_config"])


def load_model(path: str | os.PathLike, *, map_location: Any = "cpu"):
    """Rebuild the model (in eval mode) and the vocabulary (with its tokenizer) from a checkpoint.

    Returns:
        `(model, vocab, ckpt)`.

    Example:
        >>> model, vocab, ckpt = load_model("runs/ag_news/best.pt")  # doctest: +SKIP
        >>> model(torch.tensor([vocab.encode("stocks fell")])).softmax(-1)  # doctest: +SKIP
        tensor([[0.0021, 0.0003, 0.9684, 0.0292]], grad_fn=<SoftmaxBackward0>)
    """
    from textpipe.text.vocabulary import Vocab  # lazily: a checkpoint reader need not import the data side

    ckpt = load_checkpoint(path, map_location=map_location)
    model = build_model(model_config_of(ckpt), ckpt["vocab_itos"])
    model.load_state_dict(ckpt["model"])
    model.to(map_location if isinstance(map_location, (str, torch.device)) else "cpu").eval()
    vocab = Vocab(ckpt["vocab_itos"], default_index=ckpt.get("vocab_default_index"),
                  tokenizer=data_info(ckpt)["tokenizer"])  # the tokenizer the vocabulary was built with
    return model, vocab, ckpt


def _zero_running() -> dict[str, float]:
    return {"loss_sum": 0.0, "correct": 0, "seen": 0}


@dataclass
class ResumeState:
    """Where a training run stands: everything besides weights and optimizer that `--resume` needs.

    `checkpoint_fields()` gives the `save_checkpoint` keywords that store it (the caller adds the RNG states), and
    `from_checkpoint(ckpt)` reads it back, so that a resumed run continues bit for bit. Example:

        >>> s = ResumeState(epoch=2, batches_done=5, step=95)
        >>> ResumeState.from_checkpoint({**s.checkpoint_fields(), "rng": {}}) == s
        True
    """

    epoch: int = 0  # the epoch in progress (0-based); at an epoch's end, the next one
    batches_done: int = 0  # batches of `epoch` already trained (resume skips them)
    step: int = 0  # optimizer steps so far
    num_replicas: int = 1  # processes that trained those batches (their shards must line up on resume)
    best: float = -1.0  # best validation accuracy so far (-1 = none yet)
    bad_epochs: int = 0  # epochs since `best` last improved (early stopping)
    running: dict = field(default_factory=_zero_running)  # this epoch's train loss_sum/correct/seen so far
    history: list = field(default_factory=list)  # the metrics.jsonl records of the finished epochs

    def checkpoint_fields(self) -> dict[str, Any]:
        """Keywords for `save_checkpoint`: epoch, step, sampler and metrics (not the RNG states: under DDP they
        are every rank's, gathered by `textpipe.train.setup.rank_states`)."""
        return {"epoch": self.epoch, "step": self.step,
                "sampler": {"epoch": self.epoch, "batches_done": self.batches_done, "num_replicas": self.num_replicas},
                "metrics": {"best": self.best, "bad_epochs": self.bad_epochs, "running": dict(self.running),
                            "history": [dict(r) for r in self.history]}}

    @classmethod
    def from_checkpoint(cls, ckpt: dict[str, Any]) -> ResumeState:
        """The state saved by `checkpoint_fields` (a checkpoint without one starts at its step, epoch 0)."""
        sampler, metrics = ckpt.get("sampler") or {}, ckpt.get("metrics") or {}
        return cls(epoch=int(sampler.get("epoch", ckpt["epoch"])), batches_done=int(sampler.get("batches_done", 0)),
                   step=int(ckpt["step"]), num_replicas=int(sampler.get("num_replicas", 1)),
                   best=float(metrics.get("best", -1.0)), bad_epochs=int(metrics.get("bad_epochs", 0)),
                   running=dict(metrics.get("running") or _zero_running()),
                   history=[dict(r) for r in metrics.get("history", [])])
