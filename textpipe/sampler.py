"""Length-bucketing batch sampler, sharded across distributed ranks (fairseq ``batch_by_size`` idea).

Per epoch: permute the indices with ``rng(seed, epoch)``, cut them into buckets of
``batch_size * bucket_size_multiplier``, sort each bucket by length, cut it into batches and shuffle the
batch order; then deal the batches round-robin to the ranks. Samples in a batch have similar lengths, so
padding is small, while batch contents and order still change every epoch.

Run the tests: python3 -m pytest -q tests/test_sampler.py
"""
from __future__ import annotations

from collections.abc import Iterator, Sequence

import numpy as np
import torch
from torch.utils.data import Sampler

__all__ = ["BucketBatchSampler"]


def _dist_default(value: int | None, getter: str, fallback: int) -> int:
    if value is not None:
        return value
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

    Args:
        lengths: Length of each sample, e.g. ``EncodedCorpus.lengths``.
        batch_size: Samples per batch (per rank).
        shuffle: Permute samples and batch order each epoch; ``False`` keeps bucket and batch order fixed.
        seed: Base seed; must be the same on every rank.
        drop_last: See above.
        num_replicas: Number of ranks; defaults to the ``torch.distributed`` world size, else 1.
        rank: This rank; defaults to the ``torch.distributed`` rank, else 0.
        bucket_size_multiplier: Bucket size in batches. Larger gives less padding but less randomness;
            1 gives plain random batches (no length bucketing).

    Example:
        >>> sampler = BucketBatchSampler([3, 1, 2, 3, 1], 2, shuffle=False)
        >>> list(sampler)
        [[1, 4], [2, 0], [3]]
    """

    def __init__(self, lengths: Sequence[int] | np.ndarray, batch_size: int, *, shuffle: bool = True,
                 seed: int = 0, drop_last: bool = False, num_replicas: int | None = None,
                 rank: int | None = None, bucket_size_multiplier: int = 100) -> None:
        self.lengths = np.asarray(lengths)
        if self.lengths.ndim != 1 or not (self.lengths.size == 0 or np.issubdtype(self.lengths.dtype, np.integer)):
            raise TypeError(f"lengths must be a 1-D sequence of ints, got dtype {self.lengths.dtype} and "
                            f"shape {self.lengths.shape}; pass corpus.lengths")
        for name, value in (("batch_size", batch_size), ("bucket_size_multiplier", bucket_size_multiplier)):
            if not isinstance(value, (int, np.integer)) or isinstance(value, bool) or value < 1:
                raise ValueError(f"{name} must be an int >= 1, got {value!r}")
        if not isinstance(seed, (int, np.integer)) or seed < 0:
            raise ValueError(f"seed must be an int >= 0, got {seed!r}")
        self.num_replicas = _dist_default(num_replicas, "get_world_size", 1)
        self.rank = _dist_default(rank, "get_rank", 0)
        if self.num_replicas < 1 or not 0 <= self.rank < self.num_replicas:
            raise ValueError(f"rank must satisfy 0 <= rank < num_replicas, got rank={self.rank}, "
                             f"num_replicas={self.num_replicas}")
        self.batch_size, self.shuffle, self.seed = int(batch_size), bool(shuffle), int(seed)
        self.drop_last, self.bucket_size_multiplier = bool(drop_last), int(bucket_size_multiplier)
        self.epoch = 0

    def set_epoch(self, epoch: int) -> None:
        """Select the epoch whose order ``__iter__`` yields; call it before each epoch, on every rank."""
        self.epoch = int(epoch)

    def _num_batches(self) -> int:
        n = self.lengths.size
        return n // self.batch_size if self.drop_last else -(-n // self.batch_size)

    def __len__(self) -> int:
        """Number of batches this rank yields per epoch (the same on every rank)."""
        n_batches = self._num_batches()
        if self.drop_last:
            return n_batches // self.num_replicas
        return -(-n_batches // self.num_replicas)

    def epoch_batches(self) -> list[np.ndarray]:
        """All batches of the current epoch, for all ranks, before sharding (rank r takes ``[r::R]``)."""
        n, size = self.lengths.size, self.batch_size
        rng = np.random.default_rng([self.seed, self.epoch])
        order = rng.permutation(n) if self.shuffle else np.arange(n)
        bucket = size * self.bucket_size_multiplier  # a multiple of batch_size: only the last batch is short
        if self.bucket_size_multiplier > 1:
            for start in range(0, n, bucket):
                chunk = order[start:start + bucket]
                order[start:start + bucket] = chunk[np.argsort(self.lengths[chunk], kind="stable")]
        batches = [order[i:i + size] for i in range(0, self._num_batches() * size, size)]
        if self.shuffle:
            batches = [batches[i] for i in rng.permutation(len(batches))]
        total = len(self) * self.num_replicas
        if total > len(batches) and batches:  # pad by cycling through this epoch's batches from the start
            batches = [batches[i % len(batches)] for i in range(total)]
        return batches[:total]

    def __iter__(self) -> Iterator[list[int]]:
        for batch in self.epoch_batches()[self.rank::self.num_replicas]:
            yield batch.tolist()
