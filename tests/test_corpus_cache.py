"""Tests for textpipe/corpus_cache.py: build once from a streamed CSV, reuse, key, split, one builder.

Run: python3 -m pytest -q tests/test_corpus_cache.py
"""
import os
import subprocess
import sys
import time

import numpy as np
import pytest

from textpipe.corpus import EncodedCorpus
from textpipe.corpus.cache import cached_corpus, iter_chunks, val_mask
from textpipe.data.labels import LabelVocab
from textpipe.text.tokenizer import basic_english_batch
from textpipe.vocab import build_vocab_from_iterator


def write_csv(path, n, seed=0):
    rng = np.random.default_rng(seed)
    words = [f"tok{i}" for i in range(60)]
    lines = [f'"{i % 4 + 1}","{" ".join(rng.choice(words, 3))}","{" ".join(rng.choice(words, rng.integers(1, 15)))}."'
             for i in range(n)]
    path.write_text("\n".join(lines) + "\n")
    return path


def all_rows(path):
    labels, texts = [], []
    for y, t in iter_chunks(path, label_vocab=LabelVocab([1, 2, 3, 4]), batch_rows=64):
        labels += y.tolist()
        texts += t
    return labels, texts


def test_build_then_reuse_and_the_corpora_match_from_texts(tmp_path):
    csv = write_csv(tmp_path / "train.csv", 700)
    first = cached_corpus(csv, cache_dir=tmp_path / "cache", val_fraction=0.2, seed=3, batch_rows=100)
    assert first.built
    again = cached_corpus(csv, cache_dir=tmp_path / "cache", val_fraction=0.2, seed=3, batch_rows=100)
    assert not again.built and again.directory == first.directory
    labels, texts = all_rows(csv)
    assert labels[:4] == [0, 1, 2, 3] and len(texts) == 700
    mask = val_mask(700, fraction=0.2, seed=3)
    perm = np.random.default_rng(3).permutation(700)  # train.py's split: the first 20% of the permutation
    assert sorted(np.flatnonzero(mask)) == sorted(perm[:140])
    assert len(first.val) == 140 and len(first.fit) == 560
    fit_texts = [t for t, m in zip(texts, mask) if not m]
    vocab = build_vocab_from_iterator(basic_english_batch(fit_texts), specials=["<pad>", "<unk>"])
    assert first.vocab.get_itos() == vocab.get_itos() and first.vocab.get_default_index() == 1
    vocab.set_default_index(1)
    want = EncodedCorpus.from_texts(fit_texts, [y for y, m in zip(labels, mask) if not m], vocab)
    assert np.array_equal(first.fit.ids, want.ids) and np.array_equal(first.fit.offsets, want.offsets)
    assert np.array_equal(first.fit.labels, want.labels)


def test_key_follows_file_and_settings_and_no_cache_rebuilds(tmp_path):
    csv = write_csv(tmp_path / "train.csv", 120)
    a = cached_corpus(csv, cache_dir=tmp_path / "c")
    assert cached_corpus(csv, cache_dir=tmp_path / "c", min_freq=2).directory != a.directory
    assert cached_corpus(csv, cache_dir=tmp_path / "c", use_cache=False).built  # rebuilt
    time.sleep(0.01)
    write_csv(csv, 130, seed=1)
    b = cached_corpus(csv, cache_dir=tmp_path / "c")
    assert b.built and b.directory != a.directory and len(b.fit) == 130


def test_a_waiting_process_does_not_build(tmp_path):
    csv = write_csv(tmp_path / "train.csv", 50)
    with pytest.raises(TimeoutError, match="waited 0 s for another process to build"):
        cached_corpus(csv, cache_dir=tmp_path / "c", build=False, timeout_s=0.0)
    code = ("import sys; from textpipe.corpus.cache import cached_corpus; "
            "print(cached_corpus(sys.argv[1], cache_dir=sys.argv[2], build=sys.argv[3] == '1').built)")
    env = {**os.environ, "PYTHONPATH": os.getcwd()}
    waiter = subprocess.Popen([sys.executable, "-c", code, str(csv), str(tmp_path / "c"), "0"], env=env,
                              stdout=subprocess.PIPE, text=True)
    builder = subprocess.run([sys.executable, "-c", code, str(csv), str(tmp_path / "c"), "1"], env=env,
                             capture_output=True, text=True, timeout=120)
    assert builder.stdout.strip() == "True"
    assert waiter.communicate(timeout=120)[0].strip() == "False"


def test_bad_class_names_the_row(tmp_path):
    csv = tmp_path / "train.csv"
    csv.write_text('"1","a","b"\n"7","c","d"\n')
    with pytest.raises(ValueError, match="row 2: label 7 was not seen in training"):  # AG_NEWS: classes 1..4
        cached_corpus(csv, cache_dir=tmp_path / "c")


@pytest.mark.slow
def test_train_cli_ddp_two_ranks_map_the_one_cached_corpus(tmp_path):
    # rank 1 is started with build=False: it can only map what rank 0 built; one entry, one build
    from pathlib import Path
    (tmp_path / "data").mkdir()
    csv = write_csv(tmp_path / "data" / "train.csv", 360)
    root = Path(__file__).resolve().parents[1]
    cmd = [sys.executable, "-m", "torch.distributed.run", "--standalone", "--nproc_per_node=2", "-m", "textpipe.train",
           "--data-dir", str(csv.parent), "--cache", "--cache-dir", str(tmp_path / "cache"),
           "--embed-dim", "8", "--batch-size", "8", "--epochs", "1", "--parallel", "ddp", "--device", "cpu",
           "--val-fraction", "0.1", "--no-progress"]
    env = {**os.environ, "PYTHONPATH": str(root), "OMP_NUM_THREADS": "1"}
    for attempt in range(2):
        out = ["--output-dir", str(tmp_path / f"run{attempt}")]
        proc = subprocess.run(cmd + out, cwd=tmp_path, env=env, capture_output=True, text=True, timeout=300)
        assert proc.returncode == 0, proc.stderr[-3000:]
        entries = [p for p in (tmp_path / "cache").iterdir() if p.is_dir()]
        assert len(entries) == 1 and len(list(entries[0].glob("fit.corpus.*.shard"))) == 1
        meta = (entries[0] / "meta.json").stat().st_mtime_ns
        if attempt == 0:
            first = meta
    assert meta == first  # the second run reused the entry
    import json
    summary = json.loads((tmp_path / "run1" / "summary.json").read_text())
    assert summary["replicas_in_sync"] and [r["step"] for r in summary["ranks"]] == [21, 21]  # 324 rows: 41 batches


@pytest.mark.parametrize("cache, min_bytes, streamed", [(None, 1 << 30, False), (None, 0, True), (True, 1 << 30, True),
                                                         (False, 0, False)])
def test_prepare_data_streams_by_flag_or_by_file_size(tmp_path, monkeypatch, cache, min_bytes, streamed):
    # --cache unset: files of STREAM_MIN_BYTES and more are streamed into the cache, smaller ones read in memory;
    # both paths give the same vocabulary and encoded rows
    import textpipe.train.prepare as prepare_module
    from textpipe.train.prepare import prepare_data
    from textpipe.train.config import TrainConfig

    monkeypatch.setattr(prepare_module, "STREAM_MIN_BYTES", min_bytes)
    csv = write_csv(tmp_path / "train.csv", 200)
    cfg = TrainConfig(train=str(csv), cache=cache, cache_dir=str(tmp_path / "cache"), progress=False)
    data = prepare_data(cfg)
    entries = list((tmp_path / "cache").glob("corpus-*/meta.json")) if (tmp_path / "cache").exists() else []
    assert len(entries) == (1 if streamed else 0)
    reference = prepare_data(TrainConfig(train=str(csv), cache=False, progress=False))
    assert data.vocab.get_itos() == reference.vocab.get_itos()
    assert np.array_equal(np.asarray(data.train.ids), np.asarray(reference.train.ids))
    assert np.array_equal(np.asarray(data.train.labels), np.asarray(reference.train.labels))


def test_cache_flag_must_be_a_bool_or_none():
    from textpipe.train.config import TrainConfig, check_config

    with pytest.raises(ValueError, match=r"cache \(--cache\) must be True, False or None, got 'False'"):
        check_config(TrainConfig(cache="False"))


def test_edit_that_keeps_size_and_mtime_is_not_reused_issue20(tmp_path, capsys, monkeypatch):
    """Issue 20 #2: labels edited in the middle of the file, size and mtime kept: the entry was reused."""
    import textpipe.corpus.cache as cache

    monkeypatch.setattr(cache, "_PROBE", 64)  # the hashed ends miss the middle, as 1 MiB ends miss it in 4 MiB
    csv = write_csv(tmp_path / "train.csv", 3000)
    a = cached_corpus(csv, cache_dir=tmp_path / "c")
    st = os.stat(csv)
    data = bytearray(csv.read_bytes())
    mid = data.index(b'\n"', len(data) // 2) + 2
    data[mid] = ord("1") if data[mid] != ord("1") else ord("2")  # one label, same size
    csv.write_bytes(bytes(data))
    os.utime(csv, ns=(st.st_atime_ns, st.st_mtime_ns))
    b = cached_corpus(csv, cache_dir=tmp_path / "c")
    assert b.built and b.directory != a.directory
    assert not np.array_equal(a.fit.labels, b.fit.labels)
    capsys.readouterr()
    c = cached_corpus(csv, cache_dir=tmp_path / "c")
    assert not c.built
    err = capsys.readouterr().err.strip().splitlines()
    assert len(err) == 1 and err[0].startswith(f"reusing corpus cache {c.directory}, built from {csv} at ")


def test_damaged_entry_is_rebuilt_with_a_message_issue20(tmp_path, capsys):
    csv = write_csv(tmp_path / "train.csv", 100)
    a = cached_corpus(csv, cache_dir=tmp_path / "c")
    (a.directory / "meta.json").write_text('{"cache_ver')  # a torn write by another tool, a full disk
    b = cached_corpus(csv, cache_dir=tmp_path / "c")
    assert b.built and len(b.fit) == 100
    assert "is damaged (JSONDecodeError" in capsys.readouterr().err
    import shutil

    fit = b.directory / "fit.corpus"
    shutil.rmtree(fit) if fit.is_dir() else fit.unlink()
    assert cached_corpus(csv, cache_dir=tmp_path / "c").built
    assert "is damaged (FileNotFoundError" in capsys.readouterr().err


def test_read_only_cache_with_a_complete_entry_is_used_issue20(tmp_path, monkeypatch, capsys):
    from filelock import FileLock

    csv = write_csv(tmp_path / "train.csv", 100)
    a = cached_corpus(csv, cache_dir=tmp_path / "c")

    def read_only(self, *a, **k):
        raise PermissionError(13, "Permission denied", self.lock_file)

    monkeypatch.setattr(FileLock, "acquire", read_only)
    b = cached_corpus(csv, cache_dir=tmp_path / "c")
    assert not b.built and b.directory == a.directory and len(b.fit) == 100
    assert "read-only" in capsys.readouterr().err
    with pytest.raises(OSError, match="holds no complete entry for .*--cache-dir"):
        cached_corpus(csv, cache_dir=tmp_path / "c", min_freq=3)


def test_train_rebuild_cache_flag_issue20(tmp_path, capsys):
    from textpipe.train import main

    csv = write_csv(tmp_path / "train.csv", 200)
    args = ["--train", str(csv), "--cache", "--cache-dir", str(tmp_path / "c"), "--epochs", "1", "--no-progress",
            "--checkpoints", "none", "--val-fraction", "0"]
    assert main(args + ["--output-dir", str(tmp_path / "r1")]) == 0
    assert main(args + ["--output-dir", str(tmp_path / "r2")]) == 0
    assert "reusing corpus cache" in capsys.readouterr().out
    assert main(args + ["--output-dir", str(tmp_path / "r3"), "--rebuild-cache"]) == 0
    assert "reusing corpus cache" not in capsys.readouterr().out


def test_streaming_decision_looks_at_the_inflated_size_issue20(tmp_path):
    """Issue 20 #9: a 9 MB .csv.gz that inflates to 3 GiB was read into memory (the threshold looked at 9 MB)."""
    import gzip

    from textpipe.corpus.cache import STREAM_MIN_BYTES
    from textpipe.train import main
    from textpipe.train.prepare import inflated_size_at_least

    bomb = tmp_path / "bomb.csv.gz"
    with gzip.open(bomb, "wb", compresslevel=1) as f:  # ~34 MiB of text in a small file
        f.write(b'"1","a","' + b"x " * (17 << 20) + b'"\n')
    assert bomb.stat().st_size < STREAM_MIN_BYTES // 100
    assert inflated_size_at_least(bomb, STREAM_MIN_BYTES)
    small = tmp_path / "small.csv.gz"
    with gzip.open(small, "wb") as f:
        f.write(b'"1","a","b"\n' * 100)
    assert not inflated_size_at_least(small, STREAM_MIN_BYTES)
    plain = write_csv(tmp_path / "plain.csv", 10)
    assert not inflated_size_at_least(plain, STREAM_MIN_BYTES)
    # end to end: a .gz that may inflate past the threshold goes to the streaming cache without --cache
    csv = write_csv(tmp_path / "t.csv", 3000)
    big_gz = tmp_path / "t.csv.gz"
    big_gz.write_bytes(gzip.compress(csv.read_bytes()))
    assert inflated_size_at_least(big_gz, STREAM_MIN_BYTES)
    assert main(["--train", str(big_gz), "--cache-dir", str(tmp_path / "c"), "--epochs", "1", "--no-progress",
                 "--checkpoints", "none", "--val-fraction", "0", "--output-dir", str(tmp_path / "r")]) == 0
    assert list((tmp_path / "c").glob("corpus-*/meta.json"))


def test_retrained_hf_tokenizer_at_the_same_path_gets_a_new_entry_issue19(tmp_path, capsys):
    pytest.importorskip("tokenizers", reason="the hf extra (tokenizers) is not installed")
    from textpipe.text.subword import train_tokenizer
    from textpipe.train import TrainConfig
    from textpipe.train.prepare import prepare_data

    csv = write_csv(tmp_path / "train.csv", 200)
    texts = all_rows(csv)[1]
    tok = tmp_path / "tok.json"

    def prepare(cache=True):
        return prepare_data(TrainConfig(train=str(csv), tokenizer=f"hf:{tok}", cache=cache, progress=False,
                                        cache_dir=str(tmp_path / "c"), val_fraction=0.1))

    train_tokenizer(texts, kind="bpe", vocab_size=300).save(str(tok))
    first = prepare()
    assert "reusing" not in capsys.readouterr().out
    tok.write_text(tok.read_text())  # the same content written again: the entry is reused
    prepare()
    assert "reusing corpus cache" in capsys.readouterr().out
    train_tokenizer(texts, kind="bpe", vocab_size=330).save(str(tok))  # retrained at the same path
    second = prepare()
    assert "reusing" not in capsys.readouterr().out
    fresh = prepare(cache=False)  # what the new tokenizer gives, read into memory
    assert second.vocab.get_itos() == fresh.vocab.get_itos() != first.vocab.get_itos()
    assert np.array_equal(second.train.ids, fresh.train.ids) and np.array_equal(second.train.offsets,
                                                                                 fresh.train.offsets)
    assert len(list((tmp_path / "c").glob("corpus-*/meta.json"))) == 2
