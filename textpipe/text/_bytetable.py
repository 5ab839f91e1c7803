"""``ByteTable``: an exact ``{token bytes: id}`` lookup done in numpy over a vocabulary's token store.

The vocabulary keeps its tokens as one UTF-8 buffer plus offsets (``textpipe/_vocab_store.py``). A token of
1..16 bytes without NUL is its own key: its bytes as two little-endian 64-bit words, zero-filled (no NUL
inside, so two tokens never share a key and there are no hash collisions to verify). The keys are held
per id (16 bytes a token) and an open-addressing table (linear probing) holds the ids (4 bytes a slot), so
the whole table costs about 24-32 bytes a token and no Python object. Building and vectorized lookups take
one numpy step per probe distance, never a Python step per token; ``get`` looks one token up in Python
integers. Other tokens (longer than 16 bytes, empty, or holding NUL: rare) are looked up in the small
``extra`` dict the vocabulary passes in. ``tests/test_vocab_tokenizer.py`` checks it against ``dict``
lookups, including a vocabulary built so that many tokens share one home slot.
"""
from __future__ import annotations

import numpy as np

__all__ = ["ByteTable", "token_keys", "keyable", "OOV", "MAX_KEY_BYTES"]

U64 = np.dtype("<u8")
_KEY_MASKS = np.array([(1 << (8 * n)) - 1 for n in range(9)], dtype=U64)  # the low n bytes of a word
MUL1, MUL2 = np.uint64(0x9E3779B97F4A7C15), np.uint64(0xC2B2AE3D27D4EB4F)
_M1, _M2, _W = int(MUL1), int(MUL2), (1 << 64) - 1
MAX_KEY_BYTES = 16
OOV = -1  # the id of a token that is not in the table (real ids are >= 0)


def token_keys(data: bytes, starts: np.ndarray, sizes: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """The two key words of each token ``data[starts[i]:starts[i] + sizes[i]]`` (bytes past 16 ignored)."""
    buf = bytes(data) + bytes(MAX_KEY_BYTES)  # so a word read at any start stays inside the buffer
    words = np.ndarray((len(buf) - 7,), dtype=U64, buffer=buf, strides=(1,))  # unaligned 8-byte reads
    q1 = words[starts] & _KEY_MASKS[np.minimum(sizes, 8)]
    q2 = words[starts + 8] & _KEY_MASKS[np.clip(sizes - 8, 0, 8)]
    return q1, q2


def keyable(data: bytes, offsets: np.ndarray) -> np.ndarray:
    """bool per token of the store: 1..16 bytes and no NUL (the tokens the table holds)."""
    sizes = np.diff(offsets)
    ok = (sizes > 0) & (sizes <= MAX_KEY_BYTES)
    nul = np.flatnonzero(np.frombuffer(data, np.uint8) == 0)
    if nul.size:
        ok[np.searchsorted(offsets, nul, side="right") - 1] = False
    return ok


class ByteTable:
    """Exact lookup of tokens given as byte spans, over the tokens ``data[offsets[i]:offsets[i+1]]`` (id ``i``).

    Args:
        data, offsets: The token store (``offsets`` int64, ``len(tokens) + 1`` entries).
        extra: ``{token: id}`` of the tokens that cannot be keys (see the module docstring); kept by reference.

    ``has_duplicates`` tells whether two keyable tokens are equal (the caller raises).
    """

    def __init__(self, data: bytes, offsets: np.ndarray, extra: dict[str, int]) -> None:
        self.extra = extra
        n_all = len(offsets) - 1
        ok = keyable(data, offsets)
        ids = None if ok.all() else np.flatnonzero(ok)  # None: every token (the usual case, no id array)
        if ids is None:
            k1, k2 = token_keys(data, offsets[:-1], np.diff(offsets))
        else:
            k1, k2 = np.zeros(n_all, U64), np.zeros(n_all, U64)
            k1[ids], k2[ids] = token_keys(data, offsets[:-1][ids], np.diff(offsets)[ids])
        if not k1.size:
            k1, k2 = np.zeros(1, U64), np.zeros(1, U64)  # one entry to index when empty
        n = int(ok.sum())
        del ok
        # load <= 1/8, but at most 2**20 slots (4 MiB) unless the vocabulary needs more (load <= 1/2)
        bits = max(8, min((8 * n).bit_length(), 20), (2 * n).bit_length())
        self.shift, size = np.uint64(64 - bits), 1 << bits
        self._shift_int, self.mask = 64 - bits, size - 1
        index = np.int32 if n_all < 2**31 else np.int64
        slots = np.full(size, OOV, index)  # -1: an empty slot
        pending = np.arange(n, dtype=index) if ids is None else ids.astype(index)  # ids still to place
        home = self._slots(k1[pending], k2[pending]) if ids is not None else self._slots(k1, k2)
        d, dup = 0, False
        while pending.size:  # every round places, per free slot, one of the keys that probe it
            slot = (home + d) & self.mask
            occupant = slots[slot]
            free = occupant == OOV
            taken, tid = occupant[~free], pending[~free]
            dup = dup or bool(np.any((k1[taken] == k1[tid]) & (k2[taken] == k2[tid])))
            cslot, first = np.unique(slot[free], return_index=True)  # one key per free slot this round
            cand = pending[free]
            winner = cand[first]
            slots[cslot] = winner
            if first.size != cand.size:  # the others that probed a slot just taken: equal to its key?
                lost = np.ones(cand.size, bool)
                lost[first] = False
                lslot = slot[free][lost]
                w = slots[lslot]
                dup = dup or bool(np.any((k1[cand[lost]] == k1[w]) & (k2[cand[lost]] == k2[w])))
            keep = slots[slot] != pending  # placed now: its slot holds its id
            pending, home, d = pending[keep], home[keep], d + 1
        self.k1, self.k2, self.slots, self.probe, self.has_duplicates = k1, k2, slots, max(d - 1, 0), dup
        # memoryviews for get(): indexing one returns a Python int (numpy scalar indexing is ~3x slower)
        self._mv = (memoryview(slots).cast("B").cast("i" if slots.dtype == np.int32 else "q"),
                    memoryview(k1).cast("B").cast("Q"), memoryview(k2).cast("B").cast("Q"))

    def _slots(self, k1: np.ndarray, k2: np.ndarray) -> np.ndarray:
        return ((k1 * MUL1 + k2 * MUL2) >> self.shift).astype(np.intp)

    def nbytes(self) -> int:
        """Bytes held by the table's arrays."""
        return self.k1.nbytes + self.k2.nbytes + self.slots.nbytes

    def get(self, token: str) -> int | None:
        """The id of one ``str`` token, or ``None``: a few Python integer steps, no numpy temporaries."""
        b = token.encode("utf-8", "surrogatepass")
        if not 0 < len(b) <= MAX_KEY_BYTES or b"\x00" in b:
            return self.extra.get(token)
        q1, q2 = int.from_bytes(b[:8], "little"), int.from_bytes(b[8:], "little")
        s = ((q1 * _M1 + q2 * _M2) & _W) >> self._shift_int
        slots, k1, k2 = self._mv
        while (j := slots[s]) != OOV:
            if k1[j] == q1 and k2[j] == q2:
                return j
            s = (s + 1) & self.mask
        return None

    def lookup(self, data: bytes, starts: np.ndarray, sizes: np.ndarray) -> np.ndarray:
        """int64 ids of the tokens ``data[starts[i]:starts[i] + sizes[i]]``; ``OOV`` (-1) if absent.

        Tokens must not contain NUL (the byte rules never produce one) and must not be empty.
        """
        q1, q2 = token_keys(data, starts, sizes)
        ids = np.full(starts.size, OOV, np.int64)
        pending = np.arange(starts.size)
        slot = self._slots(q1, q2)
        for d in range(self.probe + 1):
            s = (slot + d) & self.mask
            j = self.slots[s]
            found = j != OOV
            jj = np.where(found, j, 0)
            hit = found & (self.k1[jj] == q1) & (self.k2[jj] == q2)
            ids[pending[hit]] = j[hit]
            go = ~hit & found  # a miss on an empty slot: not in the table
            if not go.any():
                break
            pending, slot, q1, q2 = pending[go], slot[go], q1[go], q2[go]
        extra = self.extra
        for j in np.flatnonzero(sizes > MAX_KEY_BYTES).tolist():  # long tokens: the dict
            start = int(starts[j])
            ids[j] = extra.get(data[start:start + int(sizes[j])].decode("utf-8"), OOV)
        return ids
