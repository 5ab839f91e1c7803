"""Length-bucketing batch sampler, sharded across distributed ranks (fairseq ``batch_by_size`` idea).

Global mode (the default, and whenever the corpus fits in ``window``): per epoch, permute the indices
with ``rng(seed, epoch)``, cut them into buckets of ``batch_size * bucket_size_multiplier``, sort each
bucket by length, cut it into batches and shuffle the batch order; then deal the batches round-robin to
the ranks. Memory: about 16 bytes per row (lengths + permutation) plus a list of batches.

Windowed mode (``window`` rows, for corpora larger than that): the rows are cut into contiguous chunks of
one bucket each; per epoch the chunks are shuffled, dealt to the ranks (disjoint rows per rank), and each
rank shuffles, buckets and batches ``window // bucket`` chunks at a time. Memory is bounded by the window,
not the corpus, and reads stay local (a window touches a few hundred contiguous runs of the file).
Run the tests: python3 -m pytest -q tests/test_sampler.py
"""
from __future__ import annotations

import operator
from collections.abc import Iterator, Sequence

import numpy as np
import torch
from torch.utils.data import Sampler

from textpipe.core.checks import is_int

__all__ = ["BucketBatchSampler"]


def check_int(value, name: str, minimum: int) -> int:
    if not is_int(value) or value < minimum:
        raise (ValueError if is_int(value) else TypeError)(f"{name} must be an int >= {minimum}, got {value!r}")
    return operator.index(value)


def _check_bool(value, name: str) -> bool:
    if not isinstance(value, (bool, np.bool_)):
        raise TypeError(f"{name} must be True or False, got {type(value).__name__} {value!r}")
    return bool(value)


def _dist_default(value, getter: str, fallback: int, name: str) -> int:
    if value is not None:
        return check_int(value, name, 0)
    if torch.distributed.is_available() and torch.distributed.is_initialized():
        return getattr(torch.distributed, getter)()
    return fallback


class BucketBatchSampler(Sampler[list[int]]):
    """Yield batches (lists of indices) of similar-length samples; the same batch count on every rank.

    What happens to the remainder, with ``n_batches = ceil(N / batch_size)`` (``floor`` if ``drop_last``):

    - ``drop_last=False`` (default): the one short batch is kept. If ``n_batches`` is not a multiple of
      ``num_replicas``, the first batches of this epoch's shuffled order are repeated (cyclically) until it
      is, as ``DistributedSampler`` does. Every index is seen at least once per epoch across ranks, and
      exactly once when ``n_batches % num_replicas == 0``.
    - ``drop_last=True``: the short batch is dropped, then the last ``n_batches % num_replicas`` batches of
      this epoch's order. Every index is seen at most once; at most
      ``batch_size - 1 + (num_replicas - 1) * batch_size`` indices are skipped (different ones each epoch).

    In windowed mode the same holds with the "tail" in place of the epoch: each rank gets
    ``floor(full chunks / num_replicas)`` whole chunks (all their batches), and the chunks left over (fewer
    than ``num_replicas`` plus the short last one) are batched together and dealt as above.

    Why two modes: the global one is what earlier versions did, so results on a corpus that fits in the
    window stay identical; a window shuffle is what keeps memory flat at any size (the usual
    shard-then-buffer shuffle of streaming loaders). With ``window >= N`` the windowed mode is the global one.

    Args:
        lengths: Length of each sample, e.g. ``EncodedCorpus.lengths``, or an ``EncodedCorpus`` itself
            (windowed mode then reads one window of lengths at a time).
        batch_size: Samples per batch (per rank).
        shuffle: Permute samples and batch order each epoch; ``False`` keeps bucket and batch order fixed.
        seed: Base seed; must be the same on every rank.
        drop_last: See above.
        num_replicas: Number of ranks; defaults to the ``torch.distributed`` world size, else 1.
        rank: This rank; defaults to the ``torch.distributed`` rank, else 0.
        bucket_size_multiplier: Bucket size in batches. Larger gives less padding but less randomness;
            1 gives plain random batches (no length bucketing).
        window: ``None`` (global mode) or the most rows shuffled together (windowed mode when N > window).

    Example:
        >>> sampler = BucketBatchSampler([3, 1, 2, 3, 1], 2, shuffle=False)
        >>> list(sampler)
        [[1, 4], [2, 0], [3]]
    """

    def __init__(self, lengths: Sequence[int] | np.ndarray, batch_size: int, *, shuffle: bool = True,
                 seed: int = 0, drop_last: bool = False, num_replicas: int | None = None,
                 rank: int | None = None, bucket_size_multiplier: int = 100, window: int | None = None) -> None:
        self.batch_size = check_int(batch_size, "batch_size", 1)
        self.bucket_size_multiplier = check_int(bucket_size_multiplier, "bucket_size_multiplier", 1)
        self.seed = check_int(seed, "seed", 0)
        self.shuffle, self.drop_last = _check_bool(shuffle, "shuffle"), _check_bool(drop_last, "drop_last")
        self.num_replicas = _dist_default(num_replicas, "get_world_size", 1, "num_replicas")
        self.rank = _dist_default(rank, "get_rank", 0, "rank")
        if self.num_replicas < 1 or not 0 <= self.rank < self.num_replicas:
            raise ValueError(f"rank must satisfy 0 <= rank < num_replicas, got rank={self.rank}, "
                             f"num_replicas={self.num_replicas}")
        self.window = None if window is None else check_int(window, "window", 1)
        self._source = lengths if hasattr(lengths, "row_lengths") else None
        starts = getattr(self._source, "shard_starts", None)
        self._shard_starts = starts[1:-1] if starts is not None and len(starts) > 2 else None
        n = len(lengths) if self._source is not None else None
        if self.window is not None and n is not None and n > self.window:
            self.lengths = None  # windowed: read from the corpus one window at a time
        else:
            self.lengths = np.asarray(lengths.row_lengths(0, n) if self._source is not None else lengths)
            if self.lengths.ndim != 1 or not (self.lengths.size == 0 or np.issubdtype(self.lengths.dtype, np.integer)):
                raise TypeError(f"lengths must be a 1-D sequence of ints, got dtype {self.lengths.dtype} and "
                                f"shape {self.lengths.shape}; pass corpus.lengths")
            if self.lengths.size and self.lengths.min() < 0:
                i = int(np.argmin(self.lengths))
                raise ValueError(f"lengths must be >= 0, got lengths[{i}] = {int(self.lengths[i])}")
            n = self.lengths.size
        self._n = n
        self.windowed = self.window is not None and n > self.window
        self.epoch = 0

    def set_epoch(self, epoch: int) -> None:
        """Select the epoch whose order ``__iter__`` yields; call it before each epoch, on every rank."""
        self.epoch = check_int(epoch, "epoch", 0)

    def _row_lengths(self, start: int, stop: int) -> np.ndarray:
        if self._source is not None and self.lengths is None:
            return self._source.row_lengths(start, stop)
        return np.asarray(self.lengths[start:stop], np.int64)

    # -- sizes ------------------------------------------------------------------------------------------------
    def _split(self) -> tuple[int, int, int]:
        """Windowed: (rows per chunk, full chunks per rank, first row of the tail's chunks)."""
        chunk = self.batch_size * self.bucket_size_multiplier
        per_rank = (self._n // chunk) // self.num_replicas
        return chunk, per_rank, per_rank * self.num_replicas * chunk

    def _dealt(self, n_rows: int) -> int:
        """Batches per rank when ``n_rows`` rows are batched and dealt round-robin (today's rule)."""
        n_batches = n_rows // self.batch_size if self.drop_last else -(-n_rows // self.batch_size)
        return n_batches // self.num_replicas if self.drop_last else -(-n_batches // self.num_replicas)

    def __len__(self) -> int:
        """Number of batches this rank yields per epoch (the same on every rank)."""
        if not self.windowed:
            return self._dealt(self._n)
        chunk, per_rank, tail_start = self._split()
        return per_rank * self.bucket_size_multiplier + self._dealt(self._n - tail_start)

    # -- batches ------------------------------------------------------------------------------------------------
    def _batches(self, rows: np.ndarray, lengths: np.ndarray, rng: np.random.Generator | None,
                 keep_short: bool, by_shard: bool = False) -> list[np.ndarray]:
        """Permute ``rows`` (with their ``lengths``), sort each bucket by length, cut into batches, shuffle."""
        size, order = self.batch_size, rows
        if rng is not None:
            perm = rng.permutation(rows.size)
            order, lengths = rows[perm], lengths[perm]
        if by_shard and self._shard_starts is not None:
            # windowed: group the permuted rows by shard file, so that all but a few batches per window
            # lie in one shard (served without a copy); the batch order below still mixes the shards
            group = np.argsort(np.searchsorted(self._shard_starts, order, side="right"), kind="stable")
            order, lengths = order[group], lengths[group]
        bucket = size * self.bucket_size_multiplier  # a multiple of batch_size: only the last batch is short
        if self.bucket_size_multiplier > 1:
            order = order.copy()
            for start in range(0, order.size, bucket):
                part = slice(start, start + bucket)
                order[part] = order[part][np.argsort(lengths[part], kind="stable")]
        stop = order.size if keep_short else order.size // size * size
        batches = [order[i:i + size] for i in range(0, stop, size)]
        if rng is not None:
            batches = [batches[i] for i in rng.permutation(len(batches))]
        return batches

    def _deal(self, batches: list[np.ndarray]) -> list[np.ndarray]:
        """This rank's share of ``batches`` (padded by cycling, or cut, to equal counts)."""
        return self._share(batches, self._dealt(sum(b.size for b in batches)) * self.num_replicas)

    def _share(self, batches: list[np.ndarray], total: int) -> list[np.ndarray]:
        """Rank ``rank``'s batches of the ``total`` (``batches`` padded by cycling from the start, or cut), without
        building the other ranks' share: the cost does not grow with ``num_replicas``."""
        if not batches:
            return []
        return [batches[i % len(batches)] for i in range(self.rank, total, self.num_replicas)]

    def epoch_batches(self) -> list[np.ndarray]:
        """Global mode: all batches of the current epoch, for all ranks, before sharding (rank r takes
        ``[r::R]``)."""
        if self.windowed:
            raise ValueError("epoch_batches() lists the whole epoch, which windowed mode never builds; "
                             "iterate the sampler instead")
        batches = self._all_batches()
        total = len(self) * self.num_replicas
        if total > len(batches) and batches:
            batches = [batches[i % len(batches)] for i in range(total)]
        return batches[:total]

    def _all_batches(self) -> list[np.ndarray]:
        rng = np.random.default_rng([self.seed, self.epoch]) if self.shuffle else None
        return self._batches(np.arange(self._n), self.lengths, rng, keep_short=not self.drop_last)

    def _windowed(self) -> Iterator[np.ndarray]:
        chunk, per_rank, tail_start = self._split()
        n_main = per_rank * self.num_replicas
        rng = np.random.default_rng([self.seed, self.epoch]) if self.shuffle else None
        order = rng.permutation(n_main) if rng is not None else np.arange(n_main)
        mine = order[self.rank::self.num_replicas]
        per_window = max(1, self.window // chunk)
        for w in range(0, mine.size, per_window):
            starts = np.sort(mine[w:w + per_window]) * chunk  # sorted: reads run forward through the file
            rows = (starts[:, None] + np.arange(chunk)).ravel()
            lengths = np.concatenate([self._row_lengths(s, s + chunk) for s in starts])
            window_rng = np.random.default_rng([self.seed, self.epoch, 1, self.rank, w]) if self.shuffle else None
            yield from self._batches(rows, lengths, window_rng, keep_short=True, by_shard=True)  # no short batch
        if tail_start < self._n:
            tail_rng = np.random.default_rng([self.seed, self.epoch, 2]) if self.shuffle else None
            yield from self._deal(self._batches(np.arange(tail_start, self._n),
                                                self._row_lengths(tail_start, self._n), tail_rng,
                                                keep_short=not self.drop_last))

    def __iter__(self) -> Iterator[list[int]]:
        if self.windowed:
            for batch in self._windowed():
                yield batch.tolist()
            return
        for batch in self._share(self._all_batches(), len(self) * self.num_replicas):
            yield batch.tolist()
