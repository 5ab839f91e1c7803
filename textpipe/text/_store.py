"""A vocabulary's tokens as one byte buffer plus offsets: no Python object per token until one is asked for.

Token ``i`` is ``data[offsets[i]:offsets[i + 1]]``, UTF-8 with ``surrogatepass`` (so any ``str``, lone
surrogates included, round-trips). 822k tokens take about 15 bytes each here, against ~150 bytes for a
``list`` of ``str`` plus a ``dict``; ``textpipe/_bytetable.py`` adds the lookup table. ``Vocab`` builds its
``get_itos()`` list and ``get_stoi()`` dict from this store only when they are asked for.
"""
from __future__ import annotations

from collections.abc import Sequence

import numpy as np

from textpipe.text._bytetable import keyable

__all__ = ["encode_tokens", "decode_all", "token_at", "extra_tokens", "char_offsets", "concat"]

_CODEC = ("utf-8", "surrogatepass")


def encode_tokens(tokens: Sequence[str]) -> tuple[bytes, np.ndarray]:
    """``(data, offsets)`` of ``str`` tokens (checked by the caller)."""
    encoded = [t.encode(*_CODEC) for t in tokens]
    offsets = np.zeros(len(encoded) + 1, np.int64)
    np.cumsum(np.fromiter(map(len, encoded), np.int64, count=len(encoded)), out=offsets[1:])
    return b"".join(encoded), offsets


def char_offsets(data: bytes, offsets: np.ndarray) -> np.ndarray:
    """The offsets in characters of the decoded buffer (a UTF-8 continuation byte starts no character)."""
    if data.isascii():
        return offsets
    continuation = np.flatnonzero((np.frombuffer(data, np.uint8) & 0xC0) == 0x80)  # 8 bytes per such byte only
    return offsets - np.searchsorted(continuation, offsets)


def decode_all(data: bytes, offsets: np.ndarray, lo: int = 0, hi: int | None = None) -> list[str]:
    """Tokens ``lo..hi`` as a list of ``str`` (one decode of their bytes, then slices)."""
    hi = len(offsets) - 1 if hi is None else hi
    if hi <= lo:
        return []
    a, b = int(offsets[lo]), int(offsets[hi])
    part = data[a:b]
    text = part.decode(*_CODEC)
    bounds = char_offsets(part, offsets[lo:hi + 1] - a).tolist()
    return list(map(text.__getitem__, map(slice, bounds[:-1], bounds[1:])))


def token_at(data: bytes, offsets: np.ndarray, i: int) -> str:
    return data[int(offsets[i]):int(offsets[i + 1])].decode(*_CODEC)


def extra_tokens(data: bytes, offsets: np.ndarray) -> dict[str, int]:
    """``{token: id}`` of the tokens a ``ByteTable`` cannot key (longer than 16 bytes, empty, with NUL)."""
    ids = np.flatnonzero(~keyable(data, offsets)).tolist()
    return {token_at(data, offsets, i): i for i in ids}


def concat(parts: list[tuple[bytes, np.ndarray]]) -> tuple[bytes, np.ndarray]:
    """One store of several stores' tokens, in order."""
    data = b"".join(d for d, _ in parts)
    sizes = [np.diff(o) for _, o in parts]
    offsets = np.zeros(sum(s.size for s in sizes) + 1, np.int64)
    if len(offsets) > 1:
        np.cumsum(np.concatenate(sizes), out=offsets[1:])
    return data, offsets


def select(data: bytes, offsets: np.ndarray, keep: np.ndarray) -> tuple[bytes, np.ndarray]:
    """The store of the tokens where ``keep`` (bool per token) is True, in order."""
    if keep.all():
        return data, offsets
    sizes = np.diff(offsets)
    byte_keep = np.repeat(keep, sizes)
    kept = np.frombuffer(data, np.uint8)[byte_keep].tobytes()
    new = np.zeros(int(keep.sum()) + 1, np.int64)
    np.cumsum(sizes[keep], out=new[1:])
    return kept, new


def find(data: bytes, offsets: np.ndarray, token: str) -> np.ndarray:
    """Ids of the tokens equal to ``token`` (vectorized: for a few specials against a whole store)."""
    b = np.frombuffer(token.encode(*_CODEC), np.uint8)
    sizes = np.diff(offsets)
    cand = np.flatnonzero(sizes == b.size)
    if not b.size or not cand.size:
        return cand
    arr = np.frombuffer(data, np.uint8)
    eq = np.ones(cand.size, bool)
    for k in range(b.size):  # one vectorized compare per byte of the token
        eq &= arr[offsets[cand] + k] == b[k]
    return cand[eq]
