"""Collate functions: turn a batch of encoded samples into padded or EmbeddingBag tensors, on the CPU.

Two input forms reach these functions: a list of ``(ids, label)`` pairs (what a plain ``Dataset`` gives)
and a :class:`CorpusBatch` (what ``EncodedCorpus.__getitems__`` gives). The second is padded in a few
vectorized numpy steps with no per-sample Python: each row is one contiguous window of the flat id array.
Every function here is a module-level function or a small picklable class, and none of them touches CUDA,
so they are safe in ``DataLoader`` worker processes; the training loop moves batches to the device.

The from-text collate (the tutorial's path) is ``TextCollate`` in ``textpipe/text_collate.py``.

Run the tests: python3 -m pytest -q tests/test_collate.py
"""
from __future__ import annotations

from collections.abc import Sequence

import numpy as np
import torch

from textpipe.core.checks import is_int
from textpipe.corpus.batch import CorpusBatch, windows

__all__ = ["CorpusBatch", "pad_collate", "offsets_collate", "check_label"]

_I64 = np.dtype(np.int64)
_INT64_MIN, _INT64_MAX = -(2**63), 2**63 - 1
_MAX_TEMPLATE = 1024  # longest row served from the cached pad-mask template (S*S bytes)
_pad_template = np.zeros((1, 0), dtype=bool)  # _pad_template[l, j] == (j >= l); grows on demand


def _pad_mask(lengths: np.ndarray, T: int) -> np.ndarray:
    """``(B, T)`` bool, True where column ``j >= lengths[b]`` (a padding position).

    A row gather from a cached ``(S + 1, S)`` template: cheaper than comparing against an arange.
    """
    global _pad_template
    if T > _MAX_TEMPLATE:
        return np.arange(T) >= lengths[:, None]
    if _pad_template.shape[1] < T:
        size = max(64, 1 << (T - 1).bit_length())
        _pad_template = np.arange(size)[None, :] >= np.arange(size + 1)[:, None]
    return _pad_template[lengths, :T]


def _pad_arrays(source, starts, lengths, *, pad_idx, max_len, pad_to_multiple_of, padding_side):
    """The shared vectorized core: ``(B, T)`` int64 ids and ``(B,)`` lengths after truncation."""
    if max_len is not None:
        lengths = np.minimum(lengths, max_len)
    T = int(lengths.max()) if lengths.size else 0
    if pad_to_multiple_of is not None:
        T = -(-T // pad_to_multiple_of) * pad_to_multiple_of
    ids = windows(source, starts, T)
    np.copyto(ids, pad_idx, where=_pad_mask(lengths, T))  # subtle: also blanks neighbours' ids
    if padding_side == "left":
        # Rotate each row right by its padding: out[b, j] = ids[b, (j - (T - l_b)) mod T].
        cols = (np.arange(T)[None, :] + lengths[:, None]) % max(T, 1)
        ids = np.take_along_axis(ids, cols, axis=1)
    return ids, lengths


def _tensors(*arrays: np.ndarray) -> tuple[torch.Tensor, ...]:
    """int64 tensors sharing the arrays' memory (no copy)."""
    return tuple([torch.from_numpy(np.ascontiguousarray(a, _I64)) for a in arrays])


def _got(x) -> str:
    """How a refused value is shown: `7`, `float 1.7`, `bool True`, `str '1'` (long reprs: the type only)."""
    if is_int(x):
        return repr(int(x))
    return f"{type(x).__name__} {x!r}" if len(repr(x)) <= 40 else type(x).__name__


def _check_options(pad_idx, max_len, pad_to_multiple_of, padding_side, dtype=torch.long) -> None:
    if pad_idx.__class__ is int and _INT64_MIN <= pad_idx <= _INT64_MAX and max_len is None \
            and pad_to_multiple_of is None and padding_side == "right" and dtype is torch.long:
        return  # the defaults (any int64 pad_idx): nothing to check
    if not is_int(pad_idx):
        raise TypeError(f"pad_idx must be an int, got {_got(pad_idx)}; pass e.g. pad_idx=0")
    if max_len is not None and not (is_int(max_len) and max_len >= 1):
        raise ValueError(f"max_len must be None or an int >= 1, got {_got(max_len)}; use None to keep all ids")
    if pad_to_multiple_of is not None and not (is_int(pad_to_multiple_of) and pad_to_multiple_of >= 1):
        raise ValueError(f"pad_to_multiple_of must be None or an int >= 1, got {_got(pad_to_multiple_of)}")
    if not isinstance(padding_side, str) or padding_side not in ("right", "left"):
        raise ValueError(f"padding_side must be 'right' or 'left', got {_got(padding_side)}")
    if not isinstance(dtype, torch.dtype) or dtype.is_floating_point or dtype.is_complex or dtype is torch.bool:
        raise TypeError(f"dtype must be an integer torch dtype (torch.long, torch.int32, ...), got {_got(dtype)}")
    info = torch.iinfo(dtype)
    if not info.min <= pad_idx <= info.max:
        raise ValueError(f"pad_idx {pad_idx} does not fit dtype {dtype} (range {info.min}..{info.max})")


def _check_fits(ids: np.ndarray, dtype: torch.dtype) -> None:
    """Refuse to narrow ids that do not fit `dtype` (a cast would wrap 2**40 to 0)."""
    info = torch.iinfo(dtype)
    if ids.size and (ids.min() < info.min or ids.max() > info.max):
        bad = ids[(ids < info.min) | (ids > info.max)][0]
        raise ValueError(f"id {int(bad)} does not fit dtype {dtype} (range {info.min}..{info.max}); use "
                         f"dtype=torch.long")


def check_label(label, i: int) -> int:
    """batch[i]'s label as an int; floats, bools, strings and out-of-range values are refused, not cast."""
    if isinstance(label, torch.Tensor) and label.ndim == 0 and not (
            label.dtype.is_floating_point or label.dtype.is_complex or label.dtype is torch.bool):
        label = label.item()
    elif isinstance(label, np.ndarray) and label.ndim == 0 and label.dtype.kind in "iu":
        label = label.item()
    if not is_int(label):
        raise TypeError(f"batch[{i}] label must be an int class index, got {_got(label)}; labels are not "
                        f"rounded or parsed: map them to 0..C-1 first")
    if not _INT64_MIN <= label <= _INT64_MAX:
        raise ValueError(f"batch[{i}] label {label} does not fit int64")
    return int(label)


def _ids(ids, i: int) -> np.ndarray:
    """batch[i]'s ids as a 1-D integer array; non-integers and values beyond int64 are refused."""
    seq = ids.numpy() if isinstance(ids, torch.Tensor) else np.asarray(ids)
    if seq.ndim != 1 or not (seq.size == 0 or seq.dtype.kind in "iu"):
        raise TypeError(f"batch[{i}] ids must be a 1-D integer tensor/list, got dtype {seq.dtype} "
                        f"and shape {tuple(seq.shape)}")
    if seq.dtype == np.uint64:
        if seq.size and seq.max() > _INT64_MAX:
            raise ValueError(f"batch[{i}] ids hold {int(seq.max())}, beyond int64 (max {_INT64_MAX}); ids are "
                             f"int64 token indices")
        seq = seq.astype(_I64)  # subtle: concatenated with int64, uint64 would go through float64
    return seq


def _check_corpus_batch(b: CorpusBatch) -> None:
    """Every field a 1-D integer array of the right length, every row inside ``source``."""
    for name in ("source", "starts", "lengths", "labels"):
        arr = getattr(b, name)
        if not isinstance(arr, np.ndarray) or arr.ndim != 1 or not (arr.dtype.kind in "iu" or arr.size == 0):
            got = f"{arr.dtype} array of shape {arr.shape}" if isinstance(arr, np.ndarray) else type(arr).__name__
            raise TypeError(f"CorpusBatch.{name} must be a 1-D integer numpy array, got {got}")
    for name in ("source", "labels"):
        arr = getattr(b, name)
        if arr.dtype == np.uint64 and arr.size and arr.max() > _INT64_MAX:
            raise ValueError(f"CorpusBatch.{name} holds {int(arr.max())}, beyond int64 (max {_INT64_MAX}); a cast "
                             f"would wrap it negative")
    n = b.starts.shape[0]
    if b.lengths.shape[0] != n or b.labels.shape[0] != n:
        raise ValueError(f"CorpusBatch fields disagree: {n} starts, {b.lengths.shape[0]} lengths, "
                         f"{b.labels.shape[0]} labels")
    if n and (b.starts.min() < 0 or b.lengths.min() < 0 or (b.starts + b.lengths).max() > b.source.shape[0]):
        j = int(np.flatnonzero((b.starts < 0) | (b.lengths < 0) | (b.starts + b.lengths > b.source.shape[0]))[0])
        raise ValueError(f"CorpusBatch sample {j} (start {int(b.starts[j])}, length {int(b.lengths[j])}) lies "
                         f"outside source ({b.source.shape[0]} ids)")


def _as_flat(batch) -> CorpusBatch:
    """Normalize either input form to a checked :class:`CorpusBatch` (a list of pairs is concatenated once)."""
    if isinstance(batch, CorpusBatch):
        _check_corpus_batch(batch)
        return batch
    if isinstance(batch, (str, bytes)) or not isinstance(batch, Sequence) or len(batch) == 0:
        raise TypeError(f"batch must be a CorpusBatch or a non-empty list of (ids, label) pairs, got "
                        f"{type(batch).__name__} of length {len(batch) if hasattr(batch, '__len__') else '?'}")
    seqs, labels = [], []
    for i, pair in enumerate(batch):
        if not isinstance(pair, (tuple, list)) or len(pair) != 2:
            raise TypeError(f"batch[{i}] must be an (ids, label) pair, got {type(pair).__name__}; "
                            f"raw (label, text) pairs need TextCollate")
        seqs.append(_ids(pair[0], i))
        labels.append(check_label(pair[1], i))
    lengths = np.fromiter((s.size for s in seqs), dtype=_I64, count=len(seqs))
    source = np.concatenate([*seqs, np.zeros(int(lengths.max()) if lengths.size else 0, _I64)]).astype(_I64)
    starts = np.zeros(len(seqs), _I64)
    np.cumsum(lengths[:-1], out=starts[1:])
    return CorpusBatch(source, starts, lengths, np.asarray(labels, dtype=_I64))


def pad_collate(batch, *, pad_idx: int = 0, max_len: int | None = None,
                pad_to_multiple_of: int | None = None, padding_side: str = "right",
                dtype: torch.dtype = torch.long) -> tuple[torch.Tensor, torch.Tensor, torch.Tensor]:
    """Pad a batch to ``(ids (B, T), lengths (B,), labels (B,))``, like ``pad_sequence(batch_first=True)``.

    Args:
        batch: A :class:`CorpusBatch` (fast path) or a list of ``(ids, label)`` pairs, ids a 1-D integer
            tensor or list.
        pad_idx: Id written into padding positions.
        max_len: Keep at most this many ids per sample (the first ones); ``lengths`` are truncated too.
        pad_to_multiple_of: Round ``T`` up to a multiple of this (e.g. 8 for tensor cores).
        padding_side: ``"right"`` (ids first) or ``"left"`` (padding first).
        dtype: dtype of ``ids``; ``lengths`` and ``labels`` are always int64.

    Returns:
        ``ids (B, T)`` with ``T`` the longest (truncated) sample, ``lengths (B,)`` and ``labels (B,)``.

    Raises:
        TypeError: If the batch is not one of the two forms, or an option has the wrong type.
        ValueError: If an option is out of range.

    Example:
        >>> pad_collate([(torch.tensor([5, 6, 7]), 2), ([8], 0)])[0]
        tensor([[5, 6, 7],
                [8, 0, 0]])
    """
    if (batch.__class__ is CorpusBatch and pad_idx.__class__ is int and _INT64_MIN <= pad_idx <= _INT64_MAX
            and max_len is None
            and pad_to_multiple_of is None and padding_side == "right" and dtype is torch.long
            and batch.labels.dtype.kind == "i" and batch.source.dtype.kind == "i"):  # uint64 is checked below
        # The common case, with no option to apply: _pad_arrays inlined, a few numpy calls fewer.
        # subtle: the batch's bounds are trusted here (EncodedCorpus builds them); _windows checks them
        # when it has to fall back, and every other path checks them up front.
        lengths = batch.lengths
        T = int(np.maximum.reduce(lengths)) if lengths.size else 0
        ids = windows(batch.source, batch.starts, T)
        np.copyto(ids, pad_idx, where=_pad_template[lengths, :T] if T <= _pad_template.shape[1]
                  else _pad_mask(lengths, T))
        return (torch.from_numpy(ids), torch.from_numpy(np.ascontiguousarray(lengths, _I64)),
                torch.from_numpy(np.ascontiguousarray(batch.labels, _I64)))
    _check_options(pad_idx, max_len, pad_to_multiple_of, padding_side, dtype)
    flat = _as_flat(batch)
    ids, lengths = _pad_arrays(flat.source, flat.starts, flat.lengths, pad_idx=pad_idx, max_len=max_len,
                               pad_to_multiple_of=pad_to_multiple_of, padding_side=padding_side)
    if dtype is not torch.long:
        _check_fits(ids, dtype)
        return (torch.from_numpy(ids).to(dtype), torch.from_numpy(np.ascontiguousarray(lengths, _I64)),
                torch.from_numpy(np.ascontiguousarray(flat.labels, _I64)))
    return _tensors(ids, lengths, flat.labels)


def offsets_collate(batch, *, max_len: int | None = None) -> tuple[torch.Tensor, torch.Tensor, torch.Tensor]:
    """Concatenate a batch for ``nn.EmbeddingBag``: ``(flat ids (sum L,), offsets (B,), labels (B,))``.

    The result equals the torchtext tutorial's ``collate_batch``: ``torch.cat`` of the samples and
    ``offsets`` = cumulative lengths starting at 0.

    subtle: not for ``nn.DataParallel``, which splits ``flat_ids`` and ``offsets`` independently across
    GPUs (torchtext's "offsets[0] has to be 0" failure). The ``(B, T)`` form of :func:`pad_collate` splits
    cleanly along the batch dimension; use it with DataParallel.

    Args:
        batch: A :class:`CorpusBatch` or a list of ``(ids, label)`` pairs.
        max_len: Keep at most this many ids per sample.

    Returns:
        ``flat_ids`` int64, ``offsets`` int64 with ``offsets[0] == 0``, ``labels`` int64.

    Example:
        >>> offsets_collate([([5, 6, 7], 2), ([8], 0)])[1]
        tensor([0, 3])
    """
    _check_options(0, max_len, None, "right")
    flat = _as_flat(batch)
    lengths = flat.lengths if max_len is None else np.minimum(flat.lengths, max_len)
    offsets = np.zeros(lengths.shape[0], _I64)
    np.cumsum(lengths[:-1], out=offsets[1:])
    # Output position p of sample b reads source[starts[b] + p - offsets[b]]: one repeat, one gather.
    pos = np.repeat(flat.starts - offsets, lengths)
    pos += np.arange(pos.size)
    ids = flat.source.take(pos)
    return _tensors(ids, offsets, flat.labels)
