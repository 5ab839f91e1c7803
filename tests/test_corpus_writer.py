"""Tests for textpipe/corpus_writer.py and the v2 file format: streamed, sharded, checksummed, mapped corpora.

Run: python3 -m pytest -q tests/test_corpus_writer.py
"""
import json
import mmap
import os
import pickle
import subprocess
import sys

import numpy as np
import pytest
import torch
from hypothesis import given, settings, strategies as st

from textpipe.batches.collate import offsets_collate, pad_collate
from textpipe.corpus import EncodedCorpus
from textpipe.corpus.writer import CorpusWriter
from textpipe.batches.loader import make_dataloader
from textpipe.batches.sampler import BucketBatchSampler
from textpipe.vocab import Vocab

WORDS = [f"w{i}" for i in range(40)]


def make_texts(n, seed=0):
    rng = np.random.default_rng(seed)
    texts = [" ".join(rng.choice(WORDS + ["oov"], size=rng.integers(0, 25))) for _ in range(n)]
    return texts, rng.integers(0, 4, size=n).tolist()


VOCAB = Vocab(["<pad>", "<unk>", *WORDS], default_index=1)


def stream(path, texts, labels, *, chunk=37, shard_rows=50, vocab=VOCAB):
    with CorpusWriter(path, vocab_size=len(vocab), shard_rows=shard_rows) as writer:
        for i in range(0, len(texts), chunk):
            writer.append_texts(texts[i:i + chunk], labels[i:i + chunk], vocab)
    return EncodedCorpus.load(path)


def epoch(loader, e):
    loader.batch_sampler.set_epoch(e)
    return [tuple(t.clone() for t in batch) for batch in loader]


@pytest.mark.parametrize("form", ["pad", "offsets"])
@pytest.mark.parametrize("num_replicas, rank, drop_last", [(1, 0, False), (2, 1, False), (3, 0, True)])
def test_streamed_sharded_batches_equal_todays_from_texts(tmp_path, form, num_replicas, rank, drop_last):
    texts, labels = make_texts(333)
    today = EncodedCorpus.from_texts(texts, labels, VOCAB)
    streamed = stream(tmp_path / "c.corpus", texts, labels)
    assert streamed.num_shards == 7 and len(streamed) == 333
    opts = {"batch_size": 16, "seed": 7, "form": form, "num_replicas": num_replicas, "rank": rank,
            "drop_last": drop_last, "bucket_size_multiplier": 3}
    for e in (0, 1):
        a, b = epoch(make_dataloader(today, **opts), e), epoch(make_dataloader(streamed, **opts), e)
        assert len(a) == len(b) > 0
        for x, y in zip(a, b):
            assert all(torch.equal(p, q) and q.dtype == torch.int64 for p, q in zip(x, y))


def test_ids_are_stored_small_and_mapped_not_copied(tmp_path):
    texts, labels = make_texts(120)
    corpus = stream(tmp_path / "c.corpus", texts, labels)
    for source, offsets, labs in corpus._shards:
        assert source.dtype == np.uint16 and offsets.dtype == np.int64 and labs.dtype == np.uint8
        for arr in (source, offsets, labs):
            assert isinstance(arr.base, memoryview) and isinstance(arr.base.obj, mmap.mmap)  # a view of the file
            assert not arr.flags.writeable
    big = CorpusWriter(tmp_path / "big.corpus", vocab_size=70_000)
    assert big.id_dtype == np.uint32
    big.abort()
    ids, label = corpus[5]
    assert ids.dtype == torch.int64 and ids.tolist() == VOCAB.encode(texts[5]) and label == labels[5]


@settings(max_examples=25)
@given(st.lists(st.lists(st.integers(0, 9), max_size=8), max_size=40), st.integers(1, 9), st.integers(1, 12))
def test_any_chunking_and_sharding_gives_the_same_rows(tmp_path_factory, seqs, shard_rows, chunk):
    path = tmp_path_factory.mktemp("w") / "c.corpus"
    with CorpusWriter(path, vocab_size=10, shard_rows=shard_rows) as writer:
        for i in range(0, len(seqs), chunk):
            part = seqs[i:i + chunk]
            offsets = np.cumsum([0] + [len(s) for s in part])
            writer.append([x for s in part for x in s], offsets, [j % 3 for j in range(i, i + len(part))])
    corpus = EncodedCorpus.load(path)
    assert [corpus[i][0].tolist() for i in range(len(corpus))] == seqs
    assert corpus.lengths.tolist() == [len(s) for s in seqs]
    if seqs:
        everything = list(range(len(seqs)))[::-1]
        want = offsets_collate([(torch.tensor(s, dtype=torch.int64), j % 3) for j, s in enumerate(seqs)][::-1])
        assert all(torch.equal(a, b) for a, b in zip(offsets_collate(corpus.__getitems__(everything)), want))


def test_append_adds_shards_and_save_of_a_sharded_corpus_is_one_file(tmp_path):
    texts, labels = make_texts(90)
    path = tmp_path / "c.corpus"
    stream(path, texts[:60], labels[:60], shard_rows=25)
    with CorpusWriter(path, vocab_size=len(VOCAB), shard_rows=25, append=True) as writer:
        writer.append_texts(texts[60:], labels[60:], VOCAB)
    corpus = EncodedCorpus.load(path)
    today = EncodedCorpus.from_texts(texts, labels, VOCAB)
    assert [corpus[i][0].tolist() for i in range(90)] == [today[i][0].tolist() for i in range(90)]
    corpus.save(tmp_path / "one.bin")
    single = EncodedCorpus.load(tmp_path / "one.bin")
    assert single.num_shards == 1 and np.array_equal(single.labels, today.labels)
    assert np.array_equal(single.offsets, today.offsets) and np.array_equal(single.ids, today.ids)


def _flip(path, at):
    raw = bytearray(path.read_bytes())
    raw[at] ^= 0x01
    path.write_bytes(bytes(raw))


@pytest.mark.parametrize("array", ["ids", "labels"])
def test_flipped_id_or_label_byte_is_detected(tmp_path, array):
    texts, labels = make_texts(40)
    path = tmp_path / "one.bin"
    EncodedCorpus.from_texts(texts, labels, VOCAB).save(path)
    header = json.loads(path.read_bytes()[24:24 + int.from_bytes(path.read_bytes()[16:24], "little")])
    _flip(path, header["arrays"][array][0] + 3)
    with pytest.raises(ValueError, match=f"sha256 of the {array} array does not match"):
        EncodedCorpus.load(path)
    EncodedCorpus.load(path, verify=False)  # the opt-out is explicit


@pytest.mark.parametrize("field, value", [("n_ids", 2**40), ("n_rows", 2**64 - 1), ("n_rows", -1),
                                          ("n_ids", 1.5), ("max_length", 2**40)])
def test_huge_or_bad_header_fields_are_value_errors(tmp_path, field, value):
    path = tmp_path / "one.bin"
    EncodedCorpus([1, 2, 3], [0, 2, 3], [0, 1]).save(path)
    raw = path.read_bytes()
    n = int.from_bytes(raw[16:24], "little")
    header = json.loads(raw[24:24 + n])
    header[field] = value
    blob = json.dumps(header).encode()
    path.write_bytes(raw[:16] + len(blob).to_bytes(8, "little") + blob + raw[24 + len(blob):])
    with pytest.raises(ValueError, match="corrupt corpus"):
        EncodedCorpus.load(path)


def test_header_length_beyond_the_file_is_a_value_error(tmp_path):
    path = tmp_path / "one.bin"
    EncodedCorpus([1], [0, 1], [0]).save(path)
    raw = path.read_bytes()
    path.write_bytes(raw[:16] + (2**64 - 1).to_bytes(8, "little") + raw[24:])
    with pytest.raises(ValueError, match="header length 18446744073709551615 exceeds the file size"):
        EncodedCorpus.load(path)


def test_an_open_corpus_keeps_its_snapshot_when_the_file_is_replaced(tmp_path):
    path = tmp_path / "one.bin"
    EncodedCorpus([1, 2, 3], [0, 2, 3], [0, 1]).save(path)
    opened = EncodedCorpus.load(path)
    EncodedCorpus([7, 7, 7, 7, 7], [0, 1, 5], [3, 3]).save(path)  # an atomic replace meanwhile
    assert [opened[i][0].tolist() for i in range(2)] == [[1, 2], [3]] and opened.labels.tolist() == [0, 1]
    assert EncodedCorpus.load(path).labels.tolist() == [3, 3]


def test_a_manifest_whose_shard_was_swapped_is_refused(tmp_path):
    texts, labels = make_texts(60)
    stream(tmp_path / "a.corpus", texts, labels, shard_rows=30)
    stream(tmp_path / "b.corpus", texts[::-1], labels[::-1], shard_rows=30)
    manifest = json.loads((tmp_path / "a.corpus").read_text())
    other = json.loads((tmp_path / "b.corpus").read_text())
    os.replace(tmp_path / other["shards"][0]["file"], tmp_path / manifest["shards"][0]["file"])
    with pytest.raises(ValueError, match="is not the shard .* names"):
        EncodedCorpus.load(tmp_path / "a.corpus", verify=False)


def test_a_failed_write_leaves_the_old_corpus_and_no_files(tmp_path):
    texts, labels = make_texts(80)
    path = tmp_path / "c.corpus"
    stream(path, texts, labels, shard_rows=30)
    before = sorted(p.name for p in tmp_path.iterdir())
    with pytest.raises(ValueError, match="id 99 is outside the vocabulary 0..41"):
        with CorpusWriter(path, vocab_size=len(VOCAB), shard_rows=30) as writer:
            writer.append_texts(texts, labels, VOCAB)  # a whole shard is committed, then:
            writer.append([99], [0, 1], [0])
    assert sorted(p.name for p in tmp_path.iterdir()) == before
    assert len(EncodedCorpus.load(path)) == 80


_KILLED_WRITER = """
import os, sys, numpy as np
from textpipe.corpus.writer import CorpusWriter
w = CorpusWriter(sys.argv[1], vocab_size=10, shard_rows=4)
w.append(np.arange(30) % 10, np.arange(0, 31, 3), [0] * 10)   # 2 shards committed, a third open
os.kill(os.getpid(), 9)
"""


def test_debris_of_a_killed_writer_is_swept_by_the_next_write(tmp_path):
    path = tmp_path / "c.corpus"
    env = {**os.environ, "PYTHONPATH": os.getcwd()}
    proc = subprocess.run([sys.executable, "-c", _KILLED_WRITER, str(path)], env=env)
    assert proc.returncode == -9
    assert len(list(tmp_path.iterdir())) == 3  # two orphan shards and one temp file, no manifest
    with CorpusWriter(path, vocab_size=10) as writer:
        writer.append([1, 2], [0, 2], [1])
    assert sorted(p.suffix for p in tmp_path.iterdir()) == [".corpus", ".shard"]
    assert EncodedCorpus.load(path)[0][0].tolist() == [1, 2]


def test_pickled_mapped_corpus_maps_the_same_files(tmp_path):
    texts, labels = make_texts(70)
    corpus = stream(tmp_path / "c.corpus", texts, labels, shard_rows=30)
    blob = pickle.dumps(corpus)
    assert len(blob) < 2000
    again = pickle.loads(blob)
    assert pad_collate(again.__getitems__([0, 45, 69]))[0].equal(pad_collate(corpus.__getitems__([0, 45, 69]))[0])


def test_windowed_sampler_reads_a_mapped_corpus_without_n_sized_tables(tmp_path):
    texts, labels = make_texts(400)
    corpus = stream(tmp_path / "c.corpus", texts, labels, shard_rows=128)
    sampler = BucketBatchSampler(corpus, 8, bucket_size_multiplier=2, window=64)
    assert sampler.windowed and sampler.lengths is None
    seen = sorted(i for batch in sampler for i in batch)
    assert seen == list(range(400))


def test_writer_argument_errors(tmp_path):
    with pytest.raises(ValueError, match="vocab_size must be an int >= 1, got 0"):
        CorpusWriter(tmp_path / "c", vocab_size=0)
    with pytest.raises(ValueError, match="labels must be >= 0, got -1"):
        with CorpusWriter(tmp_path / "c", vocab_size=5) as writer:
            writer.append([1], [0, 1], [-1])
    with pytest.raises(ValueError, match="offsets must be the 2 row boundaries"):
        with CorpusWriter(tmp_path / "c", vocab_size=5) as writer:
            writer.append([1, 2], [0, 1], [0])
    assert list(tmp_path.iterdir()) == []


def test_docstring_example_runs():
    import doctest
    import textpipe.corpus.writer
    result = doctest.testmod(textpipe.corpus.writer, optionflags=doctest.ELLIPSIS)
    assert result.attempted > 0 and result.failed == 0
