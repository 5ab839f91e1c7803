"""Property tests for textpipe/sampler.py: coverage, equal counts per rank, determinism, bucketing.

Run: python3 -m pytest -q tests/test_sampler.py
"""
from collections import Counter

import numpy as np
import pytest
from hypothesis import given, strategies as st

from textpipe.batches.sampler import BucketBatchSampler

config_st = st.fixed_dictionaries({
    "lengths": st.lists(st.integers(0, 60), min_size=0, max_size=200),
    "batch_size": st.integers(1, 17),
    "num_replicas": st.integers(1, 4),
    "drop_last": st.booleans(),
    "shuffle": st.booleans(),
    "seed": st.integers(0, 2**32),
    "epoch": st.integers(0, 1000),
    "bucket_size_multiplier": st.integers(1, 6),
})


def all_ranks(cfg, lengths=None):
    """Batches per rank for one epoch, each rank's sampler built independently (as on real ranks);
    `cfg["window"]` (if any) is the sampler's window, `lengths` replaces `cfg["lengths"]`."""
    out = []
    for rank in range(cfg["num_replicas"]):
        sampler = BucketBatchSampler(cfg["lengths"] if lengths is None else lengths, cfg["batch_size"],
                                     shuffle=cfg["shuffle"], seed=cfg["seed"], drop_last=cfg["drop_last"],
                                     num_replicas=cfg["num_replicas"], rank=rank,
                                     bucket_size_multiplier=cfg["bucket_size_multiplier"], window=cfg.get("window"))
        sampler.set_epoch(cfg["epoch"])
        out.append(list(sampler))
        assert len(out[-1]) == len(sampler)
    return out


@given(config_st)
def test_every_rank_gets_the_same_number_of_batches(cfg):
    counts = {len(batches) for batches in all_ranks(cfg)}
    assert len(counts) == 1


@given(config_st)
def test_every_index_once_per_epoch_across_ranks(cfg):
    ranks = all_ranks(cfg)
    n, size, replicas = len(cfg["lengths"]), cfg["batch_size"], cfg["num_replicas"]
    seen = Counter(i for batches in ranks for batch in batches for i in batch)
    assert all(0 <= i < n for i in seen)
    assert all(1 <= len(b) <= size for batches in ranks for b in batches)
    n_batches = n // size if cfg["drop_last"] else -(-n // size)
    if cfg["drop_last"]:
        # At most once; only the short batch and the n_batches % replicas surplus batches are skipped.
        assert max(seen.values(), default=1) == 1
        assert all(len(b) == size for batches in ranks for b in batches)
        assert len(seen) == (n_batches - n_batches % replicas) * size
    else:
        # At least once; exactly once when the batches divide evenly over the ranks.
        assert set(seen) == set(range(n))
        if n_batches % replicas == 0:
            assert max(seen.values(), default=1) == 1
        else:
            repeated = sum(len(b) for batches in ranks for b in batches) - n
            assert sum(c - 1 for c in seen.values()) == repeated


@given(config_st)
def test_deterministic_for_seed_and_epoch(cfg):
    assert all_ranks(cfg) == all_ranks(cfg)


@given(st.integers(40, 300), st.integers(1, 8), st.integers(0, 2**16), st.integers(0, 100))
def test_different_epochs_give_different_orders(n, batch_size, seed, epoch):
    lengths = np.arange(n) % 7
    sampler = BucketBatchSampler(lengths, batch_size, seed=seed)
    sampler.set_epoch(epoch)
    first = list(sampler)
    sampler.set_epoch(epoch + 1)
    assert list(sampler) != first


@given(st.lists(st.integers(0, 80), min_size=1, max_size=300), st.integers(1, 16), st.integers(0, 99))
def test_batches_are_homogeneous_in_length(lengths, batch_size, seed):
    # With one bucket covering the data, batches are consecutive runs of the length-sorted samples:
    # the length ranges of any two batches overlap at most at an endpoint.
    sampler = BucketBatchSampler(lengths, batch_size, seed=seed, bucket_size_multiplier=10**6)
    spans = sorted((min(lengths[i] for i in b), max(lengths[i] for i in b)) for b in sampler)
    assert all(hi <= next_lo for (_, hi), (next_lo, _) in zip(spans, spans[1:]))


def reference_batches(lengths, batch_size, seed, epoch, multiplier):
    """Slow, obvious re-statement of the algorithm (fairseq's "simple, reliable and slow" baseline)."""
    rng = np.random.default_rng([seed, epoch])
    order = list(rng.permutation(len(lengths)))
    bucket = batch_size * multiplier
    sorted_order = []
    for start in range(0, len(order), bucket):
        chunk = order[start:start + bucket]
        sorted_order += sorted(chunk, key=lambda i: lengths[i]) if multiplier > 1 else chunk
    batches = [sorted_order[i:i + batch_size] for i in range(0, len(order), batch_size)]
    return [[int(i) for i in batches[j]] for j in rng.permutation(len(batches))]


@given(st.lists(st.integers(0, 30), min_size=1, max_size=200), st.integers(1, 9), st.integers(1, 5),
       st.integers(0, 99), st.integers(0, 9))
def test_matches_slow_reference(lengths, batch_size, multiplier, seed, epoch):
    sampler = BucketBatchSampler(lengths, batch_size, seed=seed, bucket_size_multiplier=multiplier)
    sampler.set_epoch(epoch)
    assert list(sampler) == reference_batches(lengths, batch_size, seed, epoch, multiplier)


def test_padding_is_small_with_buckets_and_large_without():
    lengths = np.random.default_rng(0).integers(5, 120, size=6400)

    def padding(sampler):
        return 1 - sum(lengths[b].sum() for b in sampler) / sum(len(b) * lengths[b].max() for b in sampler)
    assert padding(BucketBatchSampler(lengths, 64)) < 0.05
    assert padding(BucketBatchSampler(lengths, 64, bucket_size_multiplier=1)) > 0.3


def test_docstring_example_and_no_shuffle_order():
    assert list(BucketBatchSampler([3, 1, 2, 3, 1], 2, shuffle=False)) == [[1, 4], [2, 0], [3]]


def test_more_ranks_than_batches_cycles_batches():
    sampler = BucketBatchSampler([1, 2, 3], 3, num_replicas=4, rank=3)
    assert len(sampler) == 1 and sorted(next(iter(sampler))) == [0, 1, 2]


@pytest.mark.parametrize("kwargs, error, match", [
    ({"batch_size": 0}, ValueError, "batch_size must be an int >= 1, got 0"),
    ({"rank": 2, "num_replicas": 2}, ValueError, "rank must satisfy 0 <= rank < num_replicas, got rank=2"),
    ({"bucket_size_multiplier": 0}, ValueError, "bucket_size_multiplier must be an int >= 1"),
    ({"lengths": [[1, 2]]}, TypeError, "lengths must be a 1-D sequence of ints"),
    ({"seed": -1}, ValueError, "seed must be an int >= 0"),
])
def test_bad_arguments_are_named(kwargs, error, match):
    args = {"lengths": [1, 2, 3], "batch_size": 2, **kwargs}
    with pytest.raises(error, match=match):
        BucketBatchSampler(args.pop("lengths"), args.pop("batch_size"), **args)


def test_rank_and_replicas_default_from_torch_distributed(monkeypatch):
    import torch.distributed as dist
    monkeypatch.setattr(dist, "is_initialized", lambda: True)
    monkeypatch.setattr(dist, "get_world_size", lambda: 3)
    monkeypatch.setattr(dist, "get_rank", lambda: 2)
    sampler = BucketBatchSampler(list(range(10)), 2)
    assert (sampler.num_replicas, sampler.rank, len(sampler)) == (3, 2, 2)


# -- windowed mode (corpora larger than the window) and argument checks ------------------------------------

windowed_st = st.fixed_dictionaries({
    "lengths": st.lists(st.integers(0, 60), min_size=0, max_size=300),
    "batch_size": st.integers(1, 7),
    "num_replicas": st.integers(1, 4),
    "drop_last": st.booleans(),
    "shuffle": st.booleans(),
    "seed": st.integers(0, 2**32),
    "epoch": st.integers(0, 1000),
    "bucket_size_multiplier": st.integers(1, 4),
    "window": st.integers(1, 60),
})


@given(windowed_st)
def test_windowed_equal_counts_coverage_and_determinism(cfg):
    ranks = all_ranks(cfg)
    assert len({len(b) for b in ranks}) == 1
    assert ranks == all_ranks(cfg)
    seen = Counter(i for batches in ranks for batch in batches for i in batch)
    assert all(1 <= len(b) <= cfg["batch_size"] for batches in ranks for b in batches)
    if cfg["drop_last"]:
        assert max(seen.values(), default=1) == 1
        assert all(len(b) == cfg["batch_size"] for batches in ranks for b in batches)
    else:
        assert set(seen) == set(range(len(cfg["lengths"])))


@given(windowed_st)
def test_window_covering_the_corpus_is_todays_global_order(cfg):
    cfg = {**cfg, "window": max(len(cfg["lengths"]), 1)}
    assert all_ranks(cfg) == all_ranks({**cfg, "window": None})


@given(st.lists(st.integers(0, 30), min_size=1, max_size=300), st.integers(1, 7), st.integers(1, 4),
       st.integers(1, 50))
def test_windowed_without_shuffle_on_one_rank_is_the_global_order(lengths, batch_size, multiplier, window):
    kw = {"shuffle": False, "bucket_size_multiplier": multiplier}
    assert (list(BucketBatchSampler(lengths, batch_size, window=window, **kw))
            == list(BucketBatchSampler(lengths, batch_size, **kw)))


class _SpyCorpus:
    """Stands in for an EncodedCorpus: records the row ranges the sampler reads."""

    def __init__(self, lengths):
        self._lengths, self.reads = np.asarray(lengths), []

    def __len__(self):
        return self._lengths.size

    def row_lengths(self, start, stop):
        self.reads.append(stop - start)
        return self._lengths[start:stop]


def test_windowed_reads_one_chunk_at_a_time_and_ranks_get_disjoint_chunks():
    lengths = np.random.default_rng(0).integers(1, 50, size=10_000)
    spy = _SpyCorpus(lengths)
    samplers = [BucketBatchSampler(spy, 10, bucket_size_multiplier=5, window=400, num_replicas=3, rank=r)
                for r in range(3)]
    assert spy.reads == [] and all(s.lengths is None for s in samplers)  # nothing N-sized was built
    per_rank = [list(s) for s in samplers]
    assert max(spy.reads) <= 50 * 3  # one 50-row chunk, or the tail (< replicas + 1 chunks)
    chunks = [{i // 50 for b in batches for i in b if i < 9_900} for batches in per_rank]
    assert not (chunks[0] & chunks[1]) and not (chunks[1] & chunks[2]) and not (chunks[0] & chunks[2])
    lens = [lengths[b] for batches in per_rank for b in batches]
    padding = 1 - sum(x.sum() for x in lens) / sum(len(x) * x.max() for x in lens)
    assert padding < 0.15  # still bucketed


@pytest.mark.parametrize("kwargs, error, match", [
    ({"shuffle": "False"}, TypeError, "shuffle must be True or False, got str 'False'"),
    ({"drop_last": 1}, TypeError, "drop_last must be True or False, got int 1"),
    ({"num_replicas": 2.0}, TypeError, r"num_replicas must be an int >= 0, got 2.0"),
    ({"rank": True}, TypeError, "rank must be an int"),
    ({"window": 0}, ValueError, "window must be an int >= 1, got 0"),
    ({"batch_size": 2.5}, TypeError, "batch_size must be an int >= 1, got 2.5"),
])
def test_silent_coercions_are_refused_up_front(kwargs, error, match):
    with pytest.raises(error, match=match):
        BucketBatchSampler([1, 2, 3], kwargs.pop("batch_size", 2), **kwargs)


def test_numpy_integers_and_bools_are_accepted():
    sampler = BucketBatchSampler([1, 2, 3, 4], np.int64(2), num_replicas=np.int32(2), rank=np.int64(1),
                                 shuffle=np.bool_(False), seed=np.uint8(3))
    assert list(sampler) == [[2, 3]] and sampler.num_replicas == 2
