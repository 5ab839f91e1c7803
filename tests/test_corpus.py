"""Tests for textpipe/corpus.py: validation, indexing, subset/split, save/load round trip and bad files.

Run: python3 -m pytest -q tests/test_corpus.py
"""
import pickle

import numpy as np
import pytest
import torch
from hypothesis import given, strategies as st

from textpipe.batches.collate import pad_collate
from textpipe.corpus import EncodedCorpus
from textpipe.vocab import Vocab

seqs_st = st.lists(st.lists(st.integers(0, 999), max_size=10), min_size=1, max_size=30)


def corpus_of(seqs, labels=None):
    offsets = np.cumsum([0] + [len(s) for s in seqs])
    ids = np.fromiter((i for s in seqs for i in s), dtype=np.int64, count=int(offsets[-1]))
    return EncodedCorpus(ids, offsets, labels if labels is not None else [i % 4 for i in range(len(seqs))])


def rows(corpus):
    return [(corpus[i][0].tolist(), corpus[i][1]) for i in range(len(corpus))]


@given(seqs_st)
def test_indexing_and_lengths(seqs):
    corpus = corpus_of(seqs)
    assert len(corpus) == len(seqs)
    assert rows(corpus) == [(s, i % 4) for i, s in enumerate(seqs)]
    assert corpus.lengths.tolist() == [len(s) for s in seqs]
    assert corpus[-1][0].tolist() == seqs[-1]
    assert corpus[0][0].dtype == torch.int64


def test_getitem_out_of_range():
    with pytest.raises(IndexError, match="index 2 is out of range for a corpus of 2 samples"):
        corpus_of([[1], [2]])[2]


@given(seqs_st, st.data())
def test_subset_and_split(seqs, data):
    corpus = corpus_of(seqs)
    idx = data.draw(st.lists(st.integers(0, len(seqs) - 1), max_size=20))
    assert rows(corpus.subset(idx)) == [rows(corpus)[i] for i in idx]
    fraction = data.draw(st.floats(0, 1))
    rest, part = corpus.split(fraction, seed=3)
    assert len(part) == round(fraction * len(seqs)) and len(rest) + len(part) == len(seqs)
    assert sorted(rows(rest) + rows(part)) == sorted(rows(corpus))
    assert rows(corpus.split(fraction, seed=3)[1]) == rows(part)


@given(seqs_st, st.booleans())
def test_save_load_round_trip(tmp_path_factory, seqs, mmap):
    path = tmp_path_factory.mktemp("c") / "corpus.bin"
    corpus = corpus_of(seqs)
    corpus.save(path)
    loaded = EncodedCorpus.load(path, mmap=mmap)
    assert rows(loaded) == rows(corpus)
    assert np.array_equal(loaded.lengths, corpus.lengths)
    batch = list(range(len(seqs)))
    for a, b in zip(pad_collate(loaded.__getitems__(batch)), pad_collate(corpus.__getitems__(batch))):
        assert torch.equal(a, b)


def test_save_is_atomic_and_overwrites(tmp_path):
    path = tmp_path / "corpus.bin"
    corpus_of([[1, 2], [3]]).save(path)
    corpus_of([[4]]).save(path)
    assert rows(EncodedCorpus.load(path)) == [([4], 0)]
    assert [p.name for p in tmp_path.iterdir()] == ["corpus.bin"]  # no temp files left


def test_pickle_in_memory_and_mmap(tmp_path):
    corpus = corpus_of([[1, 2], [3], []])
    assert rows(pickle.loads(pickle.dumps(corpus))) == rows(corpus)
    corpus.save(tmp_path / "c.bin")
    mapped = EncodedCorpus.load(tmp_path / "c.bin")
    blob = pickle.dumps(mapped)
    assert len(blob) < 1000  # pickled as its path and checksums: workers map the file instead of copying it
    assert rows(pickle.loads(blob)) == rows(corpus)


def test_load_missing_file(tmp_path):
    with pytest.raises(FileNotFoundError):
        EncodedCorpus.load(tmp_path / "nope.bin")


@pytest.mark.parametrize("damage, match", [
    (lambda b: b"hello world" + b[11:], "is not a textpipe corpus file: expected it to start with"),
    (lambda b: b[:len(b) // 2], "corpus file is truncated: ids needs bytes up to"),
    (lambda b: b[:30], "corrupt corpus header"),
    (lambda b: b.replace(b'"format_version":2', b'"format_version":9'), "format_version 9 is not supported"),
    (lambda b: b.replace(b'"n_ids"', b'"n_idz"'), r"corrupt corpus header \(KeyError\('n_ids'\)\)"),
])
def test_corrupt_files_raise_clear_errors(tmp_path, damage, match):
    path = tmp_path / "c.bin"
    corpus_of([[1, 2, 3], [4, 5], [6]]).save(path)
    path.write_bytes(damage(path.read_bytes()))
    with pytest.raises(ValueError, match=match):
        EncodedCorpus.load(path)


def test_corrupt_offsets_are_detected(tmp_path):
    path = tmp_path / "c.bin"
    corpus = corpus_of([[1, 2, 3], [4, 5], [6]])
    corpus.save(path)
    raw = bytearray(path.read_bytes())
    needle = np.array([0, 3, 5, 6], dtype="<i8").tobytes()
    at = raw.index(needle)
    raw[at + 8:at + 16] = np.array([9], dtype="<i8").tobytes()  # offsets [0, 9, 5, 6]
    path.write_bytes(bytes(raw))
    with pytest.raises(ValueError, match=r"corrupt corpus \(sha256 of the offsets array does not match"):
        EncodedCorpus.load(path)
    with pytest.raises(ValueError, match=r"corrupt corpus \(offsets must be non-decreasing"):
        EncodedCorpus.load(path, verify=False)


@pytest.mark.parametrize("args, error, match", [
    (([1, 2], [0, 1], [0]), ValueError, "offsets must start at 0 and end at len"),
    (([1, 2], [0, 2], [0, 1]), ValueError, "offsets must have len"),
    (([1, 2], [0, 2, 1, 2], [0, 1, 2]), ValueError, r"offsets must be non-decreasing, but offsets\[1\] = 2"),
    (([1.0, 2.0], [0, 2], [0]), TypeError, "ids must be a 1-D integer array, got dtype float64"),
])
def test_constructor_validation(args, error, match):
    with pytest.raises(error, match=match):
        EncodedCorpus(*args)


def test_from_texts_uses_the_vocab():
    vocab = Vocab(["<pad>", "<unk>", "a", "b"], default_index=1)
    corpus = EncodedCorpus.from_texts(["a b", "c a"], [2, 1], vocab)
    assert rows(corpus) == [([2, 3], 2), ([1, 2], 1)]
    with pytest.raises(ValueError, match="texts and labels must have the same length, got 2 and 1"):
        EncodedCorpus.from_texts(["a", "b"], [0], vocab)


def _rss_file_kib() -> int | None:
    try:
        with open("/proc/self/status") as f:
            return next((int(line.split()[1]) for line in f if line.startswith("RssFile:")), None)
    except OSError:
        return None


@pytest.mark.parametrize("release_rows, bounded", [(4, True), (10**9, False)])
def test_a_mapped_corpus_hands_back_the_pages_its_batches_touched(tmp_path, monkeypatch, release_rows, bounded):
    # 20,000 rows of 100 uint32 ids (8 MB): served in random batches, every page gets mapped unless released
    import textpipe.corpus.encoded as corpus_module
    if _rss_file_kib() is None or not hasattr(__import__("mmap"), "MADV_DONTNEED"):
        pytest.skip("needs Linux /proc/self/status RssFile and madvise(MADV_DONTNEED)")
    monkeypatch.setattr(corpus_module, "RELEASE_ROWS", release_rows)
    rng = np.random.default_rng(0)
    ids = rng.integers(0, 70_000, 20_000 * 100)
    EncodedCorpus(ids, np.arange(0, ids.size + 1, 100), np.zeros(20_000, np.int64)).save(tmp_path / "c.corpus")
    corpus = EncodedCorpus.load(tmp_path / "c.corpus")
    before, total = _rss_file_kib(), 0
    for _ in range(3000):  # batches of 4 random rows; the kernel maps 60-150 KiB around each
        batch = corpus.__getitems__(rng.integers(0, 20_000, 4).tolist())
        total += int(batch.source.take(batch.starts).sum())  # touch every row's first id
    grown_mib = (_rss_file_kib() - before) / 1024
    if bounded:
        assert grown_mib < 3, f"{grown_mib:.1f} MiB of the 8 MB file stayed mapped"
    else:
        assert grown_mib > 4, f"only {grown_mib:.1f} MiB mapped: this check cannot see the release"
    assert total > 0
