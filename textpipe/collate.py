"""Collate functions: turn a batch of encoded samples into padded or EmbeddingBag tensors, on the CPU.

Two input forms reach these functions: a list of ``(ids, label)`` pairs (what a plain ``Dataset`` gives)
and a :class:`CorpusBatch` (what ``EncodedCorpus.__getitems__`` gives). The second is padded in a few
vectorized numpy steps with no per-sample Python: each row is one contiguous window of the flat id array.
Every function here is a module-level function or a small picklable class, and none of them touches CUDA,
so they are safe in ``DataLoader`` worker processes; the training loop moves batches to the device.

Run the tests: python3 -m pytest -q tests/test_collate.py
"""
from __future__ import annotations

from collections.abc import Callable, Sequence
from dataclasses import dataclass
from itertools import chain, repeat
from operator import itemgetter

import numpy as np
import torch
from torch.utils.data import get_worker_info

from textpipe._encode import _CLASS, _OTHER_SPACE
from textpipe.tokenizer import basic_english

__all__ = ["CorpusBatch", "pad_collate", "offsets_collate", "TextCollate"]

_I64 = np.dtype(np.int64)
_SEP = "\x00"  # joins a batch's texts for one tokenizer call (texts that contain it go one by one)
_MAX_TEMPLATE = 1024  # longest row served from the cached pad-mask template (S*S bytes)
_pad_template = np.zeros((1, 0), dtype=bool)  # _pad_template[l, j] == (j >= l); grows on demand
_ROW_DTYPES: dict[int, np.dtype] = {}  # row size in bytes -> void dtype, for _windows


@dataclass(slots=True)
class CorpusBatch:
    """A batch as ``EncodedCorpus.__getitems__`` returns it: where the rows are, not the rows themselves.

    Attributes:
        source: 1-D int64 array holding the corpus ids, followed by a guard of at least ``max(lengths)``
            elements so that ``source[s:s + T]`` exists for every start ``s`` (rows are read as windows).
        starts: ``(B,)`` int64, where each sample's ids begin in ``source``.
        lengths: ``(B,)`` int64, number of ids of each sample.
        labels: ``(B,)`` int64 class labels.
    """

    source: np.ndarray
    starts: np.ndarray
    lengths: np.ndarray
    labels: np.ndarray


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


def _windows(source: np.ndarray, starts: np.ndarray, T: int) -> np.ndarray:
    """``(B, T)`` copy of ``source[s:s + T]`` for each start ``s``: one fancy index, B memcpys.

    The gather goes through a read-only view whose element r is the ``T * itemsize`` bytes starting at
    ``source[r]`` (a void dtype), so each row is copied as one block; numpy checks it fits the buffer.
    Measured about 2x faster than indexing the equivalent ``(n, T)`` strided view.
    """
    n_rows = source.shape[0] - T + 1
    if n_rows > 0 and T > 0 and source.flags.c_contiguous:
        nbytes = T * source.itemsize
        row = _ROW_DTYPES.get(nbytes)
        if row is None:
            row = _ROW_DTYPES.setdefault(nbytes, np.dtype((np.void, nbytes)))
        view = np.ndarray((n_rows,), dtype=row, buffer=source, strides=(source.itemsize,))
        try:
            return view[starts].view(source.dtype).reshape(starts.shape[0], T)
        except IndexError:
            pass  # no guard after the last sample: fall through to the clipped gather
    pos = starts[:, None] + np.arange(T)  # (B, T)
    return source.take(pos, mode="clip") if source.size else np.zeros(pos.shape, source.dtype)


def _pad_arrays(source, starts, lengths, *, pad_idx, max_len, pad_to_multiple_of, padding_side):
    """The shared vectorized core: ``(B, T)`` int64 ids and ``(B,)`` lengths after truncation."""
    if max_len is not None:
        lengths = np.minimum(lengths, max_len)
    T = int(lengths.max()) if lengths.size else 0
    if pad_to_multiple_of is not None:
        T = -(-T // pad_to_multiple_of) * pad_to_multiple_of
    ids = _windows(source, starts, T)
    np.copyto(ids, pad_idx, where=_pad_mask(lengths, T))  # subtle: also blanks neighbours' ids
    if padding_side == "left":
        # Rotate each row right by its padding: out[b, j] = ids[b, (j - (T - l_b)) mod T].
        cols = (np.arange(T)[None, :] + lengths[:, None]) % max(T, 1)
        ids = np.take_along_axis(ids, cols, axis=1)
    return ids, lengths


def _tensors(*arrays: np.ndarray) -> tuple[torch.Tensor, ...]:
    """int64 tensors sharing the arrays' memory; in a DataLoader worker, views of one shared buffer.

    subtle: a worker sends each tensor storage to the main process through shared memory, which costs
    far more than building the batch (about 1 ms per storage on a 2-core machine), so there the three
    outputs are views of one storage: one transfer per batch instead of three.
    """
    if get_worker_info() is None:
        return tuple([torch.from_numpy(np.ascontiguousarray(a, _I64)) for a in arrays])
    buffer = torch.empty(sum(a.size for a in arrays), dtype=torch.long)
    out, pos = [], 0
    for a in arrays:
        view = buffer[pos:pos + a.size].view(a.shape)
        view.numpy()[...] = a
        out.append(view)
        pos += a.size
    return tuple(out)


def _check_options(pad_idx, max_len, pad_to_multiple_of, padding_side) -> None:
    if pad_idx.__class__ is int and max_len is None and pad_to_multiple_of is None and padding_side == "right":
        return  # the defaults (any int pad_idx): nothing to check
    if not isinstance(pad_idx, (int, np.integer)) or isinstance(pad_idx, bool):
        raise TypeError(f"pad_idx must be an int, got {type(pad_idx).__name__}; pass e.g. pad_idx=0")
    if max_len is not None and (not isinstance(max_len, (int, np.integer)) or max_len < 1):
        raise ValueError(f"max_len must be None or an int >= 1, got {max_len!r}; use None to keep all ids")
    if pad_to_multiple_of is not None and (not isinstance(pad_to_multiple_of, (int, np.integer))
                                           or pad_to_multiple_of < 1):
        raise ValueError(f"pad_to_multiple_of must be None or an int >= 1, got {pad_to_multiple_of!r}")
    if padding_side not in ("right", "left"):
        raise ValueError(f"padding_side must be 'right' or 'left', got {padding_side!r}")


def _as_flat(batch) -> CorpusBatch:
    """Normalize either input form to a :class:`CorpusBatch` (a list of pairs is concatenated once)."""
    if isinstance(batch, CorpusBatch):
        return batch
    if isinstance(batch, (str, bytes)) or not isinstance(batch, Sequence) or len(batch) == 0:
        raise TypeError(f"batch must be a CorpusBatch or a non-empty list of (ids, label) pairs, got "
                        f"{type(batch).__name__} of length {len(batch) if hasattr(batch, '__len__') else '?'}")
    seqs, labels = [], []
    for i, pair in enumerate(batch):
        if not isinstance(pair, (tuple, list)) or len(pair) != 2:
            raise TypeError(f"batch[{i}] must be an (ids, label) pair, got {type(pair).__name__}; "
                            f"raw (label, text) pairs need TextCollate")
        ids, label = pair
        seq = ids.numpy() if isinstance(ids, torch.Tensor) else np.asarray(ids)
        if seq.ndim != 1 or not (seq.size == 0 or np.issubdtype(seq.dtype, np.integer)):
            raise TypeError(f"batch[{i}] ids must be a 1-D integer tensor/list, got dtype {seq.dtype} "
                            f"and shape {tuple(seq.shape)}")
        seqs.append(seq)
        labels.append(int(label))
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
    if (batch.__class__ is CorpusBatch and pad_idx.__class__ is int and max_len is None
            and pad_to_multiple_of is None and padding_side == "right" and dtype == torch.long):
        # The common case, with no option to apply: _pad_arrays inlined, a few numpy calls fewer.
        lengths = batch.lengths
        T = int(np.maximum.reduce(lengths)) if lengths.size else 0
        ids = _windows(batch.source, batch.starts, T)
        np.copyto(ids, pad_idx, where=_pad_template[lengths, :T] if T <= _pad_template.shape[1]
                  else _pad_mask(lengths, T))
        if get_worker_info() is None:
            return (torch.from_numpy(ids), torch.from_numpy(np.ascontiguousarray(lengths, _I64)),
                    torch.from_numpy(np.ascontiguousarray(batch.labels, _I64)))
        return _tensors(ids, lengths, batch.labels)
    _check_options(pad_idx, max_len, pad_to_multiple_of, padding_side)
    flat = _as_flat(batch)
    ids, lengths = _pad_arrays(flat.source, flat.starts, flat.lengths, pad_idx=pad_idx, max_len=max_len,
                               pad_to_multiple_of=pad_to_multiple_of, padding_side=padding_side)
    if dtype != torch.long:
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


def _lookup(stoi: dict[str, int], tokens: list[str], missing: int) -> np.ndarray:
    """Ids of ``tokens``; ``itemgetter`` does the lookups in one C call (about 2x faster than ``map``)."""
    if len(tokens) >= 2:
        try:
            return np.fromiter(itemgetter(*tokens)(stoi), dtype=_I64, count=len(tokens))
        except KeyError:
            pass  # an out-of-vocabulary token: redo the batch with the default id
    return np.fromiter(map(stoi.get, tokens, repeat(missing)), dtype=_I64, count=len(tokens))


_U64 = np.dtype("<u8")
_KEY_MASKS = np.array([(1 << (8 * n)) - 1 for n in range(9)], dtype=_U64)  # low n bytes of a word
_MUL1, _MUL2 = np.uint64(0x9E3779B97F4A7C15), np.uint64(0xC2B2AE3D27D4EB4F)


class _ByteTable:
    """Exact ``{token bytes: id}`` lookup for tokens of at most 16 UTF-8 bytes, done in numpy.

    A token's key is its bytes as two little-endian words, zero-filled (tokens never contain NUL, so
    the key is the token itself: no hash collisions to verify). Keys sit in an open-addressing table
    (linear probing, 24 bytes a slot, load <= 1/8 up to 2**20 slots); a batch's tokens probe it together, one vectorized step per probe
    distance. Longer tokens are looked up in the ``stoi`` dict.
    """

    def __init__(self, stoi: dict[str, int]) -> None:
        keys = []
        for token, i in stoi.items():
            if i < 0 or "\x00" in token:
                continue
            try:
                b = token.encode("utf-8")
            except UnicodeEncodeError:  # lone surrogate: such tokens never reach the byte path
                continue
            if 0 < len(b) <= 16:
                keys.append((int.from_bytes(b[:8], "little"), int.from_bytes(b[8:], "little"), i))
        # load <= 1/8, but at most 2**20 slots (24 MiB) unless the vocabulary needs more (load <= 1/2)
        bits = max(8, min((8 * len(keys)).bit_length(), 20), (2 * len(keys)).bit_length())
        self.shift, size = np.uint64(64 - bits), 1 << bits
        k1 = np.array([k[0] for k in keys], _U64)
        k2 = np.array([k[1] for k in keys], _U64)
        home = self._slots(k1, k2).tolist()
        t1, t2, tid = np.zeros(size, _U64), np.zeros(size, _U64), np.full(size, -1, _I64)
        taken = bytearray(size)
        probe = 0
        for j, h in enumerate(home):
            d = 0
            while taken[(h + d) & (size - 1)]:
                d += 1
            slot = (h + d) & (size - 1)
            taken[slot] = 1
            t1[slot], t2[slot], tid[slot] = k1[j], k2[j], keys[j][2]
            probe = max(probe, d)
        self.t1, self.t2, self.tid, self.mask, self.probe = t1, t2, tid, size - 1, probe

    def _slots(self, k1: np.ndarray, k2: np.ndarray) -> np.ndarray:
        return ((k1 * _MUL1 + k2 * _MUL2) >> self.shift).astype(np.intp)

    def encode(self, joined: str, stoi: dict[str, int], missing: int):
        """``(ids, lengths)`` of the NUL-joined texts, as ``basic_english`` + ``stoi`` give them; ``None``
        where the byte path does not apply (lone surrogates)."""
        # The byte rule of _encode._chunk_bytes: after lower-casing, '"' and '<br />', each byte of the
        # UTF-8 text separates tokens, belongs to a word, or is a one-byte token.
        text = joined.lower().replace('"', "").replace("<br />", " ")
        if not text.isascii():
            text = _OTHER_SPACE.sub(" ", text)
        try:
            data = text.encode("utf-8")
        except UnicodeEncodeError:
            return None
        cls = np.frombuffer(data.translate(_CLASS), np.uint8)
        word, single = cls == 1, cls == 2
        first, last = single.copy(), single
        first[1:] |= word[1:] & ~word[:-1]
        first[:1] |= word[:1]
        last[:-1] |= word[:-1] & ~word[1:]
        last[-1:] |= word[-1:]
        starts = np.flatnonzero(first)
        sizes = np.flatnonzero(last) + 1 - starts
        buf = data + bytes(16)
        words = np.ndarray((len(data) + 9,), dtype=_U64, buffer=buf, strides=(1,))
        q1 = words[starts] & _KEY_MASKS[np.minimum(sizes, 8)]
        q2 = words[starts + 8] & _KEY_MASKS[np.clip(sizes - 8, 0, 8)]
        ids = np.full(starts.size, missing, _I64)
        pending = np.arange(starts.size)
        slot = self._slots(q1, q2)
        for d in range(self.probe + 1):
            s = (slot + d) & self.mask
            t1 = self.t1[s]
            hit = (t1 == q1) & (self.t2[s] == q2)
            ids[pending[hit]] = self.tid[s[hit]]
            go = ~hit & (t1 != 0)
            if not go.any():
                break
            pending, slot, q1, q2 = pending[go], slot[go], q1[go], q2[go]
        for j in np.flatnonzero(sizes > 16).tolist():  # long tokens: the dict
            ids[j] = stoi.get(data[starts[j]:starts[j] + sizes[j]].decode("utf-8"), missing)
        nul = np.flatnonzero(cls == 0)
        nul = nul[np.frombuffer(data, np.uint8)[nul] == 0]  # where one text ends and the next begins
        counts = np.empty(nul.size + 2, _I64)
        counts[0], counts[-1] = 0, starts.size
        counts[1:-1] = np.searchsorted(starts, nul)
        return ids, np.diff(counts)


class TextCollate:
    """Picklable collate for raw ``(label, text)`` pairs: tokenize and encode the whole batch at once.

    This is the torchtext tutorial's path (text in, tensors out) without its per-sample loop: the batch
    is joined, split into tokens by ``basic_english``'s byte rule in numpy (no Python string per token),
    its tokens are looked up together in a cached exact byte-key table (``_ByteTable``; tokens over 16
    bytes use the ``{token: id}`` dict), and the ids are padded by the vectorized core. Batches the
    byte path cannot take (lone surrogates, a text containing NUL, a custom tokenizer, an unknown token
    with no default index) take the string path: one ``basic_english`` call and one dict pass.
    (``vocab.encode_flat`` is built for whole corpora; for 64 texts its per-call setup dominates.)

    Args:
        vocab: A ``textpipe.Vocab``. Out-of-vocabulary tokens get its default index; with none set,
            the vocabulary's own error is raised.
        tokenizer: ``None`` for ``basic_english``, or a callable ``str -> list[str]`` (must be
            picklable, i.e. a module-level function, for worker processes).
        form: ``"pad"`` gives :func:`pad_collate`'s output, ``"offsets"`` :func:`offsets_collate`'s.
        **options: Keyword options of the chosen collate (``pad_idx``, ``max_len``, ...).

    Example:
        >>> collate = TextCollate(vocab, form="pad")
        >>> collate([(0, "Hello world"), (3, "Hi")])[0].shape
        torch.Size([2, 2])
    """

    def __init__(self, vocab, *, tokenizer: Callable[[str], list[str]] | None = None, form: str = "pad",
                 **options) -> None:
        if form not in ("pad", "offsets"):
            raise ValueError(f"form must be 'pad' or 'offsets', got {form!r}")
        allowed = {"pad": {"pad_idx", "max_len", "pad_to_multiple_of", "padding_side", "dtype"},
                   "offsets": {"max_len"}}[form]
        unknown = set(options) - allowed
        if unknown:
            raise TypeError(f"unknown option(s) {sorted(unknown)} for form={form!r}; "
                            f"expected some of {sorted(allowed)}")
        if tokenizer is not None and not callable(tokenizer):
            raise TypeError(f"tokenizer must be None or a callable str -> list[str], got {type(tokenizer).__name__}")
        self.vocab, self.tokenizer, self.form, self.options = vocab, tokenizer, form, options
        self._table = None  # (vocab size, default index, stoi): rebuilt if the vocab changes

    def __getstate__(self) -> dict:
        return {**self.__dict__, "_table": None}  # the stoi copy is rebuilt in the worker

    def _table_for_vocab(self) -> tuple[dict[str, int], int]:
        """``(stoi, id for unknown tokens)``; stoi maps the batch separator to -2, unknown ids are -1."""
        size, default = len(self.vocab), self.vocab.get_default_index()
        if self._table is None or self._table[:2] != (size, default):
            stoi = self.vocab.get_stoi()
            stoi[_SEP] = -2  # subtle: texts holding NUL never take the joined path, so no clash
            self._table = (size, default, stoi, _ByteTable(stoi))
        return self._table[2], -1 if default is None else default

    def _encode(self, texts: list[str]) -> tuple[np.ndarray, np.ndarray]:
        """Flat ids and lengths of ``texts``: one tokenizer call and one lookup pass for the batch."""
        stoi, missing = self._table_for_vocab()
        try:
            joined = f" {_SEP} ".join(texts)
        except TypeError:
            bad = next(i for i, text in enumerate(texts) if not isinstance(text, str))
            raise TypeError(f"batch[{bad}] text must be a str, got {type(texts[bad]).__name__}; "
                            f"TextCollate takes raw (label, text) pairs") from None
        if self.tokenizer in (None, basic_english) and joined.count(_SEP) == len(texts) - 1:
            # basic_english is local to each character (final sigma included: " NUL " is a word
            # boundary on both sides), so tokenizing the joined batch equals tokenizing each text.
            out = self._table[3].encode(joined, stoi, missing)
            if out is not None and not (missing == -1 and (out[0] == -1).any()):
                return out  # else: lone surrogates, or an unknown token to report by the path below
            tokens = basic_english(joined)
            ids = _lookup(stoi, tokens, missing)
            is_sep = ids == -2
            bounds = np.empty(len(texts) + 1, _I64)  # -1, separator positions, len(ids)
            bounds[0], bounds[-1] = -1, ids.size
            bounds[1:-1] = np.flatnonzero(is_sep)
            lengths = bounds[1:] - bounds[:-1] - 1
        else:
            token_lists = [(self.tokenizer or basic_english)(text) for text in texts]
            lengths = np.fromiter(map(len, token_lists), dtype=_I64, count=len(texts))
            tokens = list(chain.from_iterable(token_lists))
            ids = _lookup(stoi, tokens, missing)
            is_sep = None
            ids[ids == -2] = missing  # a NUL token from a custom tokenizer is just unknown
        if missing == -1 and (ids == -1).any():
            self.vocab.lookup_indices([tokens[int(np.argmax(ids == -1))]])  # raises the vocab's OOV error
        return (ids if is_sep is None else ids[~is_sep]), lengths

    def __call__(self, batch) -> tuple[torch.Tensor, torch.Tensor, torch.Tensor]:
        if isinstance(batch, (str, bytes)) or not isinstance(batch, Sequence) or len(batch) == 0:
            raise TypeError(f"batch must be a non-empty list of (label, text) pairs, got {type(batch).__name__}")
        labels = np.array([pair[0] for pair in batch], dtype=_I64)
        ids, lengths = self._encode([pair[1] for pair in batch])
        starts = np.zeros(len(batch), _I64)
        np.cumsum(lengths[:-1], out=starts[1:])
        flat = CorpusBatch(np.concatenate([ids, np.zeros(int(lengths.max()), _I64)]), starts, lengths, labels)
        if self.form == "pad":
            return pad_collate(flat, **self.options)
        return offsets_collate(flat, **self.options)
