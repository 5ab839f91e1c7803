"""``ByteTable``: an exact ``{token bytes: id}`` lookup done in numpy, owned by ``Vocab``.

A token of 1..16 UTF-8 bytes without NUL is its own key: its bytes as two little-endian 64-bit words,
zero-filled (no NUL inside, so two tokens never share a key and there are no hash collisions to
verify). Keys sit in an open-addressing table (linear probing, 24 bytes a slot in three arrays). Both
building and lookups are vectorized: one numpy step per probe distance, never a Python step per token.
Longer tokens (rare) are looked up in the ``{token: id}`` dict. ``tests/test_vocab_tokenizer.py`` checks
it against ``dict`` lookups, including a vocabulary built so that many tokens share one home slot.
"""
from __future__ import annotations

import numpy as np

__all__ = ["ByteTable", "token_keys"]

_U64 = np.dtype("<u8")
_KEY_MASKS = np.array([(1 << (8 * n)) - 1 for n in range(9)], dtype=_U64)  # the low n bytes of a word
_MUL1, _MUL2 = np.uint64(0x9E3779B97F4A7C15), np.uint64(0xC2B2AE3D27D4EB4F)
MAX_KEY_BYTES = 16
OOV = -1  # the id of a token that is not in the table (real ids are >= 0)


def token_keys(data: bytes, starts: np.ndarray, sizes: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """The two key words of each token ``data[starts[i]:starts[i] + sizes[i]]`` (bytes past 16 ignored)."""
    buf = data + bytes(MAX_KEY_BYTES)  # so a word read at any start stays inside the buffer
    words = np.ndarray((len(data) + 9,), dtype=_U64, buffer=buf, strides=(1,))  # unaligned 8-byte reads
    q1 = words[starts] & _KEY_MASKS[np.minimum(sizes, 8)]
    q2 = words[starts + 8] & _KEY_MASKS[np.clip(sizes - 8, 0, 8)]
    return q1, q2


def _utf8_spans(itos: list[str]) -> tuple[bytes, np.ndarray, np.ndarray, np.ndarray]:
    """``(data, starts, sizes, ids)`` of the tokens that can be keys: 1..16 bytes, no NUL, valid UTF-8."""
    joined = "\x00".join(itos)
    try:
        data = joined.encode("utf-8")
        clean = joined.count("\x00") == len(itos) - 1 if itos else True
    except UnicodeEncodeError:  # a lone-surrogate token: such tokens never come out of a byte rule
        clean = False
    if not clean:  # rare: drop the tokens that cannot be keys, one Python step per token
        ids = [i for i, t in enumerate(itos) if _encodable(t)]
        itos = [itos[i] for i in ids]
        data = "\x00".join(itos).encode("utf-8")
        ids = np.array(ids, np.int64)
    else:
        ids = np.arange(len(itos), dtype=np.int64)
    nul = np.flatnonzero(np.frombuffer(data, np.uint8) == 0)
    starts = np.concatenate(([0], nul + 1)) if itos else np.zeros(0, np.int64)
    ends = np.concatenate((nul, [len(data)])) if itos else np.zeros(0, np.int64)
    sizes = ends - starts
    keep = (sizes > 0) & (sizes <= MAX_KEY_BYTES)
    return data, starts[keep], sizes[keep], ids[keep]


def _encodable(token: str) -> bool:
    if "\x00" in token:
        return False
    try:
        token.encode("utf-8")
    except UnicodeEncodeError:
        return False
    return True


class ByteTable:
    """Exact lookup of tokens given as byte spans; built once per token list by ``Vocab``.

    Args:
        itos: The vocabulary's tokens in id order (unique).
        stoi: ``{token: id}`` of the same tokens, used for tokens longer than 16 bytes.
    """

    def __init__(self, itos: list[str], stoi: dict[str, int]) -> None:
        self.stoi = stoi
        data, starts, sizes, ids = _utf8_spans(itos)
        k1, k2 = token_keys(data, starts, sizes)
        n = k1.size
        # load <= 1/8, but at most 2**20 slots (24 MiB) unless the vocabulary needs more (load <= 1/2)
        bits = max(8, min((8 * n).bit_length(), 20), (2 * n).bit_length())
        self.shift, size = np.uint64(64 - bits), 1 << bits
        self.mask = size - 1
        # k1 == 0 marks an empty slot (keys are non-empty and hold no NUL, so their first byte is not 0)
        t1, t2, tid = np.zeros(size, _U64), np.zeros(size, _U64), np.full(size, OOV, np.int64)
        home = self._slots(k1, k2)
        claim = np.full(size, -1, np.int64)
        pending, d = np.arange(n), 0
        while pending.size:  # every round places, per free slot, one of the keys that probe it
            slot = (home[pending] + d) & self.mask
            free = t1[slot] == 0
            cand, cslot = pending[free], slot[free]
            claim[cslot] = cand  # several keys on one slot: one of them is stored, and read back below
            won = claim[cslot] == cand
            cand, cslot = cand[won], cslot[won]
            t1[cslot], t2[cslot], tid[cslot] = k1[cand], k2[cand], ids[cand]
            placed = np.zeros(n, bool)
            placed[cand] = True
            pending = pending[~placed[pending]]  # the rest found their slot taken: next distance
            d += 1
        self.t1, self.t2, self.tid, self.probe = t1, t2, tid, max(d - 1, 0)

    def _slots(self, k1: np.ndarray, k2: np.ndarray) -> np.ndarray:
        return ((k1 * _MUL1 + k2 * _MUL2) >> self.shift).astype(np.intp)

    def lookup(self, data: bytes, starts: np.ndarray, sizes: np.ndarray) -> np.ndarray:
        """int64 ids of the tokens ``data[starts[i]:starts[i] + sizes[i]]``; ``OOV`` (-1) if absent.

        Tokens must not contain NUL (the byte rules never produce one).
        """
        q1, q2 = token_keys(data, starts, sizes)
        ids = np.full(starts.size, OOV, np.int64)
        pending = np.arange(starts.size)
        slot = self._slots(q1, q2)
        for d in range(self.probe + 1):
            s = (slot + d) & self.mask
            t1 = self.t1[s]
            hit = (t1 == q1) & (self.t2[s] == q2)
            ids[pending[hit]] = self.tid[s[hit]]
            go = ~hit & (t1 != 0)  # a miss on an empty slot: not in the table
            if not go.any():
                break
            pending, slot, q1, q2 = pending[go], slot[go], q1[go], q2[go]
        stoi = self.stoi
        for j in np.flatnonzero(sizes > MAX_KEY_BYTES).tolist():  # long tokens: the dict
            start = int(starts[j])
            ids[j] = stoi.get(data[start:start + int(sizes[j])].decode("utf-8"), OOV)
        return ids
