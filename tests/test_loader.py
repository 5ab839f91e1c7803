"""Tests for textpipe/loader.py: the DataLoader recipe with and without worker processes.

Run: python3 -m pytest -q tests/test_loader.py
"""
import gc
import warnings
from itertools import islice

import numpy as np
import pytest
import torch

from textpipe.corpus import EncodedCorpus
from textpipe.batches.loader import make_dataloader


def make_corpus(n=203, seed=0):
    rng = np.random.default_rng(seed)
    lengths = rng.integers(0, 30, size=n)
    offsets = np.concatenate([[0], np.cumsum(lengths)])
    return EncodedCorpus(rng.integers(2, 500, size=offsets[-1]), offsets, rng.integers(0, 4, size=n))


def epochs(loader, n_epochs=2):
    out = []
    for epoch in range(n_epochs):
        loader.batch_sampler.set_epoch(epoch)
        out.append([tuple(t.clone() for t in batch) for batch in loader])
    return out


def assert_same(a, b):
    assert len(a) == len(b)
    for epoch_a, epoch_b in zip(a, b):
        assert len(epoch_a) == len(epoch_b)
        for batch_a, batch_b in zip(epoch_a, epoch_b):
            assert all(torch.equal(x, y) for x, y in zip(batch_a, batch_b))


def test_batches_match_the_corpus_rows():
    corpus = make_corpus()
    loader = make_dataloader(corpus, batch_size=16, seed=1)
    seen = []
    for ids, lengths, labels in loader:
        assert ids.shape == (len(lengths), int(lengths.max())) and ids.dtype == torch.int64
        for row, length, label in zip(ids, lengths, labels):
            seen.append((row[:length].tolist(), int(label)))
            assert (row[length:] == 0).all()
    want = [(corpus[i][0].tolist(), corpus[i][1]) for i in range(len(corpus))]
    assert sorted(seen) == sorted(want)


@pytest.mark.parametrize("form, drop_last, num_replicas, rank", [
    ("pad", False, 1, 0), ("offsets", True, 1, 0), ("pad", True, 2, 1), ("offsets", False, 2, 0)])
def test_two_workers_give_the_same_batches_as_none(form, drop_last, num_replicas, rank):
    corpus = make_corpus()
    options = {"batch_size": 16, "seed": 5, "form": form, "max_len": 20, "drop_last": drop_last,
               "num_replicas": num_replicas, "rank": rank}
    serial_loader = make_dataloader(corpus, **options)
    serial = epochs(serial_loader, 3)
    loader = make_dataloader(corpus, num_workers=2, **options)
    assert len(loader) == len(serial_loader) == len(serial[0])
    assert_same(epochs(loader, 3), serial)
    assert [b[2].tolist() for b in serial[0]] != [b[2].tolist() for b in serial[1]]  # set_epoch reorders
    # resume mid-epoch as train.py does: islice over the same (persistent-worker) loader
    loader.batch_sampler.set_epoch(1)
    assert_same([[tuple(t.clone() for t in b) for b in islice(loader, 7, None)]], [serial[1][7:]])
    loader.batch_sampler.set_epoch(2)
    assert_same([[tuple(t.clone() for t in b) for b in islice(loader, 2)]], [serial[2][:2]])  # stop early
    assert_same(epochs(loader, 1), serial[:1])  # a full epoch after an abandoned one


def test_worker_errors_surface():
    loader = make_dataloader(make_corpus(40), batch_size=8, num_workers=1, max_len=0)
    with pytest.raises(ValueError, match="(?s)in DataLoader worker process 0.*max_len must be None or an int >= 1"):
        next(iter(loader))
    del loader  # subtle: after a worker error, torch's shutdown waits ~5 s per worker; pay it here, once
    gc.collect()


def test_mmap_corpus_with_workers(tmp_path):
    corpus = make_corpus()
    corpus.save(tmp_path / "c.bin")
    mapped = EncodedCorpus.load(tmp_path / "c.bin", mmap=True)
    serial = epochs(make_dataloader(corpus, batch_size=8, seed=2), 1)
    assert_same(epochs(make_dataloader(mapped, batch_size=8, seed=2, num_workers=2), 1), serial)


def test_pin_memory():
    corpus = make_corpus(40)
    if not torch.cuda.is_available():
        # On a CPU-only machine PyTorch warns and skips pinning; the batches must be unchanged.
        with warnings.catch_warnings():
            warnings.simplefilter("ignore")
            pinned = epochs(make_dataloader(corpus, batch_size=8, pin_memory=True, num_workers=2), 1)
        assert_same(pinned, epochs(make_dataloader(corpus, batch_size=8), 1))
        return
    batch = next(iter(make_dataloader(corpus, batch_size=8, pin_memory=True, num_workers=2)))
    assert all(t.is_pinned() for t in batch)


def test_ranks_split_the_epoch():
    corpus = make_corpus(100)
    loaders = [make_dataloader(corpus, batch_size=10, num_replicas=3, rank=r, bucket=False) for r in range(3)]
    per_rank = [[labels for _, _, labels in loader] for loader in loaders]
    assert {len(batches) for batches in per_rank} == {4}  # ceil(10 batches / 3 ranks)


def test_bad_arguments_are_named():
    corpus = make_corpus(10)
    with pytest.raises(TypeError, match="corpus must be an EncodedCorpus, got list"):
        make_dataloader([1, 2], batch_size=2)
    with pytest.raises(TypeError, match=r"unknown option\(s\) \['pad_idx'\] for form='offsets'"):
        make_dataloader(corpus, batch_size=2, form="offsets", pad_idx=0)
    with pytest.raises(ValueError, match="form must be 'pad' or 'offsets'"):
        make_dataloader(corpus, batch_size=2, form="bags")
    with pytest.raises(TypeError, match=r"unknown option\(s\) \['chunk_size'\]"):  # ChunkedLoader is gone
        make_dataloader(corpus, batch_size=2, num_workers=1, chunk_size=4)
