"""``TextCollate``: the tutorial's from-text collate (tokenize + encode + pad inside the collate), batched.

For raw ``(label, text)`` pairs, e.g. a corpus that is not pre-encoded. The batch is tokenized and looked
up as a whole: its texts are joined, split by ``basic_english``'s byte rule in numpy and their tokens
found in an exact byte-key table, with a plain string path as the fallback. Pre-encoding with
``EncodedCorpus`` is faster still (see ``benchmarks/collate_throughput.py``).

Run the tests: python3 -m pytest -q tests/test_collate.py
"""
from __future__ import annotations

from collections.abc import Callable, Sequence
from itertools import chain, repeat
from operator import itemgetter

import numpy as np
import torch

from textpipe._encode import byte_tokens
from textpipe.collate import CorpusBatch, offsets_collate, pad_collate
from textpipe.tokenizer import _SEP, basic_english

__all__ = ["TextCollate"]

_I64 = np.dtype(np.int64)


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
        split = byte_tokens(joined)
        if split is None:
            return None
        data, starts, ends, lengths = split
        sizes = ends + 1 - starts
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
        return ids, lengths


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
        >>> from textpipe.vocab import Vocab
        >>> vocab = Vocab(["<pad>", "<unk>", "hello", "world"], default_index=1)
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
            # stoi maps NUL to the separator mark; a NUL token from a custom tokenizer gets its real id
            ids[ids == -2] = self.vocab[_SEP] if _SEP in self.vocab else missing
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
