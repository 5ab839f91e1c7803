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

from textpipe._encode import CHUNK_CHARS, ByteRule, _groups, _pieces, arrow, byte_tokens, token_array
from textpipe.tokenizer import _SEP

_MERGE_ROWS = 1 << 16  # merge pending per-chunk counts once they hold this many rows (or as many as merged)


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
    """``(value_counts struct arrays, Counter of the texts the byte rule cannot take)`` of one group."""
    _, pc = arrow()
    arrays, counter = [], Counter()

    def count(group: list[str]) -> None:
        joined = _SEP.join(group)
        split = byte_tokens(joined, rule) if joined.count(_SEP) == len(group) - 1 else None
        if split is not None:
            data, starts, ends, _ = split
            if starts.size:
                arrays.append(pc.value_counts(token_array(data, starts, ends + 1 - starts, rule)))
        elif len(group) > 1:  # halve until the odd text out is alone
            count(group[:len(group) // 2])
            count(group[len(group) // 2:])
        else:
            counter.update(tokenize(group[0]))

    count(group)
    return arrays, counter


def _groups_of(text_chunks: Iterable[Sequence[str]]) -> Iterator[list[str]]:
    """The texts of the stream in groups of bounded size (long texts cut where no token changes)."""
    for index, chunk in enumerate(text_chunks):
        texts, _ = _pieces(_check_chunk(chunk, index), CHUNK_CHARS)
        yield from _groups(texts, np.fromiter(map(len, texts), np.int64, count=len(texts)))


def _int64s(array) -> np.ndarray:
    """An Arrow int64/int32 array as numpy, from its buffer (``to_numpy`` would import pandas)."""
    dtype = np.int64 if array.type.bit_width == 64 else np.int32
    return np.frombuffer(array.buffers()[1], dtype)[array.offset:array.offset + len(array)]


class _ArrowCounts:
    """Distinct tokens (an Arrow array) and their counts (numpy); per-chunk counts are merged in batches."""

    def __init__(self) -> None:
        self.pa, self.pc = arrow()
        self.values, self.counts, self.pending, self.pending_rows = None, None, [], 0

    def add(self, arrays: list) -> None:
        self.pending.extend(arrays)
        self.pending_rows += sum(len(a) for a in arrays)
        if self.pending_rows >= max(_MERGE_ROWS, 0 if self.values is None else len(self.values)):
            self.merge()

    def merge(self) -> None:
        if not self.pending:
            return
        pa = self.pa
        values = [a.field("values").cast(pa.large_string()) for a in self.pending]
        counts = [_int64s(a.field("counts")) for a in self.pending]
        if self.values is not None:
            values.insert(0, self.values)
            counts.insert(0, self.counts)
        encoded = pa.concat_arrays(values).dictionary_encode()  # distinct tokens + where each row's went
        sums = np.bincount(_int64s(encoded.indices), weights=np.concatenate(counts),
                           minlength=len(encoded.dictionary))  # float64: exact below 2**53
        self.values, self.counts = encoded.dictionary, sums.astype(np.int64)
        self.pending, self.pending_rows = [], 0

    def ordered(self) -> list[tuple[str, int]]:
        """Count descending, then token ascending (Arrow orders strings by their UTF-8 bytes)."""
        self.merge()
        if self.values is None:
            return []
        by_token = _int64s(self.pc.sort_indices(self.values))
        rank = np.empty(by_token.size, np.int64)
        rank[by_token] = np.arange(by_token.size)
        order = np.lexsort((rank, -self.counts))
        order_array = self.pa.Int64Array.from_buffers(self.pa.int64(), order.size, [None, self.pa.py_buffer(order)])
        tokens = self.values.take(order_array).to_pylist()  # (pa.array(numpy) would import pandas)
        return list(zip(tokens, self.counts[order].tolist()))


def count_tokens(text_chunks: Iterable[Sequence[str]], *, rule: ByteRule | None, tokenize: Callable,
                 num_workers: int, ordered: Callable) -> list[tuple[str, int]]:
    """``(token, count)`` of every token of every text, count descending then token ascending.

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
        return ordered(counter)
    merged = _ArrowCounts()

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
    if not counter:
        return merged.ordered()
    counter.update(dict(merged.ordered()))  # rare texts the byte rule could not take
    return ordered(counter)
