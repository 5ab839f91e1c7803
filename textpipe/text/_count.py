"""Token counts of streamed text chunks for ``build_vocab_from_texts``, in torchtext's order.

Each chunk is tokenized by its byte rule (``basic_english``, ``split``; see ``_encode.py``) and counted by
pyarrow's ``value_counts`` without a Python object per token, in worker threads (numpy and pyarrow
release the GIL). The main thread merges the per-chunk counts with an Arrow ``group_by`` sum whenever
enough have accumulated, so memory holds the distinct tokens plus a few chunks, never the corpus. Texts
no byte rule can take (a lone surrogate, a NUL), other tokenizers and machines without pyarrow are
counted with a ``Counter``. The order is count descending, then token ascending: Arrow compares
UTF-8 bytes, which orders like Python compares code points.
"""
from __future__ import annotations

from collections import Counter, deque
from collections.abc import Callable, Iterable, Iterator, Sequence
from concurrent.futures import ThreadPoolExecutor

import numpy as np

from textpipe.core.arrow import int_values
from textpipe.text._encode import CHUNK_CHARS, ByteRule, groups, pieces, arrow, byte_tokens, token_array
from textpipe.text._bytetable import MUL1, MUL2, U64, keyable, token_keys
from textpipe.text._store import concat, decode_all, encode_tokens, select
from textpipe.text.tokenizer import SEP



def _check_chunk(chunk: object, index: int) -> list[str]:
    if isinstance(chunk, (str, bytes)) or not isinstance(chunk, Sequence):
        raise TypeError(f"text_chunks[{index}] must be a list of str texts, got {type(chunk).__name__}; "
                        f"pass an iterable of chunks, e.g. [[text, text, ...], ...]")
    chunk = list(chunk)
    if not all(type(t) is str for t in chunk):
        for pos, t in enumerate(chunk):
            if not isinstance(t, str):
                raise TypeError(f"text_chunks[{index}][{pos}] must be a str, got {type(t).__name__} "
                                f"({t!r}); decode bytes or convert values with str() first")
        chunk = [str(t) for t in chunk]
    return chunk


def _count_group(group: list[str], rule: ByteRule, tokenize: Callable) -> tuple[list, Counter]:
    """``([(data, offsets, counts) of the distinct tokens of each part], Counter of the texts the byte rule
    cannot take)`` of one group (a worker thread: numpy and pyarrow release the GIL)."""
    parts, counter = [], Counter()
    _count_into(group, rule, tokenize, parts, counter)
    return parts, counter


def _count_into(group: list[str], rule: ByteRule, tokenize: Callable, parts: list, counter: Counter) -> None:
    # (a module function, not a closure: a recursive closure is a reference cycle that keeps every part alive
    # until the garbage collector runs)
    pa, pc = arrow()
    joined = SEP.join(group)
    split = byte_tokens(joined, rule) if joined.count(SEP) == len(group) - 1 else None
    if split is not None:
        data, starts, ends, _ = split
        if starts.size:
            counted = pc.value_counts(token_array(data, starts, ends + 1 - starts, rule))
            values = counted.field("values")
            width = np.int64 if values.type == pa.large_string() else np.int32
            offsets = np.frombuffer(values.buffers()[1], width)[values.offset:values.offset + len(values) + 1]
            buf = values.buffers()[2]
            parts.append((buf.to_pybytes()[offsets[0]:offsets[-1]] if buf is not None else b"",
                          (offsets - offsets[0]).astype(np.int64), int_values(counted.field("counts")).copy()))
    elif len(group) > 1:  # halve until the odd text out is alone
        _count_into(group[:len(group) // 2], rule, tokenize, parts, counter)
        _count_into(group[len(group) // 2:], rule, tokenize, parts, counter)
    else:
        counter.update(tokenize(group[0]))


def _groups_of(text_chunks: Iterable[Sequence[str]]) -> Iterator[list[str]]:
    """The texts of the stream in groups of bounded size (long texts cut where no token changes)."""
    for index, chunk in enumerate(text_chunks):
        texts, _ = pieces(_check_chunk(chunk, index), CHUNK_CHARS)
        yield from groups(texts, np.fromiter(map(len, texts), np.int64, count=len(texts)))


class _KeyTable:
    """A growable open-addressing table of token keys (``_bytetable.token_keys``) -> id: int32 slots, the keys
    held per id. ``find`` and ``insert`` take one numpy step per probe distance."""

    def __init__(self) -> None:
        self.k1, self.k2, self.n, self.keyed = np.zeros(1 << 12, U64), np.zeros(1 << 12, U64), 0, 0
        self._resize(1 << 12)

    def _home(self, q1: np.ndarray, q2: np.ndarray) -> np.ndarray:
        return ((q1 * MUL1 + q2 * MUL2) >> self.shift).astype(np.intp)

    def _resize(self, size: int) -> None:
        self.slots, self.mask, self.shift = np.full(size, -1, np.int32), size - 1, np.uint64(64 - size.bit_length() + 1)
        ids = np.flatnonzero(self.k1[:self.n])  # k1 == 0: an id without a key (a long token)
        self._place(ids)

    def _place(self, ids: np.ndarray) -> None:
        home, pending, d = self._home(self.k1[ids], self.k2[ids]), np.arange(ids.size), 0
        while pending.size:
            slot = (home[pending] + d) & self.mask
            free = self.slots[slot] < 0
            cand, cslot = pending[free], slot[free]
            cslot, first = np.unique(cslot, return_index=True)  # one key per free slot this round
            self.slots[cslot] = ids[cand[first]]
            placed = np.zeros(ids.size, bool)
            placed[cand[first]] = True
            pending, d = pending[~placed[pending]], d + 1

    def find(self, q1: np.ndarray, q2: np.ndarray) -> np.ndarray:
        ids, pending, slot = np.full(q1.size, -1, np.int64), np.arange(q1.size), self._home(q1, q2)
        while pending.size:
            j = self.slots[slot]
            full = j >= 0
            jj = np.where(full, j, 0)
            hit = full & (self.k1[jj] == q1) & (self.k2[jj] == q2)
            ids[pending[hit]] = j[hit]
            go = full & ~hit
            pending, slot, q1, q2 = pending[go], (slot[go] + 1) & self.mask, q1[go], q2[go]
        return ids

    def add(self, q1: np.ndarray, q2: np.ndarray) -> np.ndarray:
        """New ids ``n..`` for keys not in the table and distinct (``q1 == 0``: an id without a key)."""
        m = q1.size
        if self.n + m > self.k1.size:
            grow = max(2 * self.k1.size, self.n + m)
            self.k1, self.k2 = (np.concatenate([k[:self.n], np.zeros(grow - self.n, U64)]) for k in (self.k1, self.k2))
        ids = np.arange(self.n, self.n + m)
        self.k1[ids], self.k2[ids] = q1, q2
        self.n += m
        keyed = ids[q1 != 0]
        self.keyed += keyed.size
        if 2 * self.keyed > self.slots.size:  # load <= 1/2
            self._resize(1 << (4 * self.keyed).bit_length())
        else:
            self._place(keyed)
        return ids


class _Counts:
    """Distinct tokens (a growing byte store, ``_vocab_store``) and their counts, merged chunk by chunk: about
    50-70 bytes a distinct token and no Python object per token."""

    def __init__(self) -> None:
        self.table, self.counts, self.parts, self.long = _KeyTable(), np.zeros(1 << 12, np.int64), [], {}

    def add(self, parts: list[tuple[bytes, np.ndarray, np.ndarray]]) -> None:
        for data, offsets, counts in parts:
            ok = keyable(data, offsets)
            sizes = np.diff(offsets)
            q1, q2 = token_keys(data, offsets[:-1][ok], sizes[ok])
            ids = self.table.find(q1, q2)
            hit = ids >= 0
            self.counts[ids[hit]] += counts[ok][hit]  # distinct tokens: no id twice
            new = np.zeros(ok.size, bool)
            new[np.flatnonzero(ok)[~hit]] = True
            for i in np.flatnonzero(~ok).tolist():  # longer than 16 bytes: rare
                j = self.long.get(data[offsets[i]:offsets[i + 1]])
                if j is None:
                    new[i] = True
                else:
                    self.counts[j] += counts[i]
            if new.any():
                fresh = np.flatnonzero(new)
                z = np.zeros(fresh.size, U64)
                k1, k2 = z.copy(), z
                keyed = ok[fresh]
                k1[keyed], k2[keyed] = q1[~hit], q2[~hit]
                ids = self.table.add(k1, k2)
                for i, j in zip(fresh[~keyed].tolist(), ids[~keyed].tolist()):
                    self.long[data[offsets[i]:offsets[i + 1]]] = j
                if self.table.n > self.counts.size:
                    self.counts = np.concatenate([self.counts, np.zeros(self.table.n, np.int64)])
                self.counts[ids] = counts[fresh]
                self.parts.append(select(data, offsets, new))

    def ordered(self) -> tuple[bytes, np.ndarray, np.ndarray]:
        """``(data, offsets, counts)``: the tokens as a store, count descending, then token ascending (Arrow
        orders binary strings by their bytes, which orders like Python compares code points)."""
        pa, pc = arrow()
        data, offsets = concat(self.parts)
        counts, n = self.counts[:len(offsets) - 1], len(offsets) - 1
        self.parts, self.table, self.counts, self.long = [], None, None, {}
        if not n:
            return data, offsets, counts
        tokens = pa.LargeBinaryArray.from_buffers(pa.large_binary(), n, [None, pa.py_buffer(offsets),
                                                                         pa.py_buffer(data)])
        by_token = int_values(pc.sort_indices(tokens))
        rank = np.empty(n, np.int64)
        rank[by_token] = np.arange(n)
        del by_token
        order = np.lexsort((rank, -counts))
        del rank, data
        taken = tokens.take(pa.Int64Array.from_buffers(pa.int64(), n, [None, pa.py_buffer(order)]))
        del tokens
        offsets = np.frombuffer(taken.buffers()[1], np.int64)[taken.offset:taken.offset + n + 1]
        data = taken.buffers()[2].to_pybytes()[offsets[0]:offsets[-1]]
        offsets = offsets - offsets[0]
        del taken
        pa.default_memory_pool().release_unused()  # Arrow's allocator keeps freed pages otherwise
        return data, offsets, counts[order]


def count_tokens(text_chunks: Iterable[Sequence[str]], *, rule: ByteRule | None, tokenize: Callable,
                 num_workers: int, ordered: Callable) -> tuple[bytes, np.ndarray, np.ndarray]:
    """Every token of every text with its count, count descending then token ascending, as
    ``(data, offsets, counts)``: token ``i`` is ``data[offsets[i]:offsets[i+1]]`` (a ``_vocab_store``).

    ``ordered`` sorts a ``{token: count}`` mapping that way (the one ``build_vocab_from_iterator`` uses).
    """
    if isinstance(text_chunks, (str, bytes)):
        raise TypeError(f"text_chunks must be an iterable of lists of str, got a single "
                        f"{type(text_chunks).__name__}; pass [[text, ...], ...]")
    counter: Counter = Counter()
    if rule is None or arrow() is None:  # the generic path: a Python tokenizer holds the GIL anyway
        for index, chunk in enumerate(text_chunks):
            for text in _check_chunk(chunk, index):
                counter.update(tokenize(text))
        return _as_store(ordered(counter))
    merged = _Counts()

    def take(result: tuple[list, Counter]) -> None:
        merged.add(result[0])
        counter.update(result[1])

    if num_workers == 1:
        for group in _groups_of(text_chunks):
            take(_count_group(group, rule, tokenize))
    else:
        with ThreadPoolExecutor(max_workers=num_workers) as pool:
            inflight: deque = deque()
            for group in _groups_of(text_chunks):
                inflight.append(pool.submit(_count_group, group, rule, tokenize))
                if len(inflight) >= 2 * num_workers:  # bounded: the stream is not read far ahead
                    take(inflight.popleft().result())
            while inflight:
                take(inflight.popleft().result())
    data, offsets, counts = merged.ordered()
    if not counter:
        return data, offsets, counts
    # rare texts the byte rule could not take: merge them as Python objects
    counter.update(dict(zip(decode_all(data, offsets), counts.tolist())))
    return _as_store(ordered(counter))


def _as_store(pairs: list[tuple[str, int]]) -> tuple[bytes, np.ndarray, np.ndarray]:
    data, offsets = encode_tokens([t for t, _ in pairs])
    return data, offsets, np.fromiter((c for _, c in pairs), np.int64, count=len(pairs))
