"""The training corpus cache: stream a table file once into a vocabulary + memory-mapped corpora, reuse it.

    cached = cached_corpus("train.csv", cache_dir="~/.cache/textpipe/corpora", val_fraction=0.1)
    cached.vocab, cached.fit, cached.val      # Vocab, EncodedCorpus (mapped), EncodedCorpus or None

The key covers the file (size, mtime, SHA-256 of its first and last MiB), the tokenizer and the vocabulary
and split settings. One process builds (the caller says which: rank 0 / local rank 0) under a file lock;
the others wait for it and map the same files. Building streams the file twice (count tokens of the
training rows, then encode all rows into shard files): rows and token lists are never all in memory.

Validation rows are chosen per row by a seeded hash of the row number (about ``val_fraction`` of the
rows, exact for a given seed and file, no N-sized permutation). Tests: python3 -m pytest -q tests/test_corpus_cache.py
"""
from __future__ import annotations

import hashlib
import json
import os
import time
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path

import numpy as np

from textpipe.corpus import EncodedCorpus
from textpipe.corpus_writer import CorpusWriter
from textpipe.fileio import atomic_write_text

__all__ = ["CachedCorpus", "cached_corpus", "iter_chunks", "val_mask"]

CACHE_VERSION = 1
_PROBE = 1 << 20  # bytes hashed at each end of the source file for the key


@dataclass
class CachedCorpus:
    """What :func:`cached_corpus` returns."""

    vocab: object  # textpipe.Vocab
    fit: EncodedCorpus  # training rows
    val: EncodedCorpus | None  # validation rows (None when val_fraction == 0)
    directory: Path  # the cache entry
    built: bool  # True if this call built it


def iter_chunks(source, *, batch_rows: int = 8192) -> Iterator[tuple[np.ndarray, list[str]]]:
    """``(labels 0..3 as int64, texts)`` chunks of an AG_NEWS-format CSV (class 1..4, title, description),
    streamed with pyarrow in bounded memory. (The one place to switch to ``textpipe.data.table.iter_table``.)
    """
    yield from _ag_news_chunks(Path(source), batch_rows)


def _ag_news_chunks(path: Path, batch_rows: int):
    import pyarrow as pa
    import pyarrow.csv as pacsv

    opts = pacsv.ReadOptions(column_names=["label", "title", "description"], block_size=batch_rows * 256)
    conv = pacsv.ConvertOptions(column_types={"label": pa.int64(), "title": pa.string(), "description": pa.string()})
    line = 1
    with pacsv.open_csv(path, read_options=opts, convert_options=conv) as reader:
        for batch in reader:
            labels = batch.column(0).to_numpy(zero_copy_only=False)
            if labels.size and (labels.min() < 1 or labels.max() > 4):
                bad = int(np.flatnonzero((labels < 1) | (labels > 4))[0])
                raise ValueError(f"{path}, row {line + bad}: class must be one of 1, 2, 3, 4, found "
                                 f"{int(labels[bad])}")
            titles, descriptions = batch.column(1).to_pylist(), batch.column(2).to_pylist()
            yield labels - 1, [f"{t} {d}" for t, d in zip(titles, descriptions)]
            line += labels.size


def val_mask(first_row: int, n: int, *, fraction: float, seed: int) -> np.ndarray:
    """``(n,)`` bool: which of rows ``first_row..first_row+n-1`` are validation rows (splitmix64 hash)."""
    if fraction <= 0:
        return np.zeros(n, bool)
    with np.errstate(over="ignore"):
        x = np.arange(first_row, first_row + n, dtype=np.uint64) + np.uint64(seed * 0x9E3779B97F4A7C15 % 2**64)
        x = (x ^ (x >> np.uint64(30))) * np.uint64(0xBF58476D1CE4E5B9)
        x = (x ^ (x >> np.uint64(27))) * np.uint64(0x94D049BB133111EB)
        x ^= x >> np.uint64(31)
    return (x >> np.uint64(11)).astype(np.float64) * 2.0**-53 < fraction


def _file_key(path: Path) -> dict:
    st = path.stat()
    h = hashlib.sha256()
    with open(path, "rb") as f:
        h.update(f.read(_PROBE))
        if st.st_size > 2 * _PROBE:
            f.seek(st.st_size - _PROBE)
        h.update(f.read(_PROBE))
    return {"path": str(path.resolve()), "size": st.st_size, "mtime_ns": st.st_mtime_ns, "probe_sha256": h.hexdigest()}


def _split_chunks(source, *, val_fraction: float, seed: int, batch_rows: int, want_val: bool):
    row = 0
    for labels, texts in iter_chunks(source, batch_rows=batch_rows):
        mask = val_mask(row, len(texts), fraction=val_fraction, seed=seed)
        row += len(texts)
        keep = ~mask if not want_val else mask
        if keep.all():
            yield labels, texts
        elif keep.any():
            yield labels[keep], [t for t, k in zip(texts, keep) if k]


def _build_vocab(text_chunks, *, min_freq, max_tokens, specials, num_workers):
    try:
        from textpipe.vocab import build_vocab_from_texts  # the vocab helper's streaming counter
    except ImportError:
        from textpipe.tokenizer import basic_english_batch
        from textpipe.vocab import build_vocab_from_iterator

        tokens = (toks for texts in text_chunks for toks in basic_english_batch(texts))
        return build_vocab_from_iterator(tokens, min_freq=min_freq, specials=list(specials), max_tokens=max_tokens)
    return build_vocab_from_texts(text_chunks, min_freq=min_freq, specials=tuple(specials), max_tokens=max_tokens,
                                  num_workers=num_workers)


def _build(source, entry: Path, settings: dict, *, batch_rows: int, num_workers: int) -> None:
    from textpipe.vocab import Vocab

    split = {"val_fraction": settings["val_fraction"], "seed": settings["seed"], "batch_rows": batch_rows}
    vocab = _build_vocab((texts for _, texts in _split_chunks(source, want_val=False, **split)),
                         min_freq=settings["min_freq"], max_tokens=settings["max_tokens"],
                         specials=settings["specials"], num_workers=num_workers)
    vocab.set_default_index(settings["specials"].index("<unk>") if "<unk>" in settings["specials"] else None)
    entry.mkdir(parents=True, exist_ok=True)
    vocab.save(entry / "vocab.txt")
    with CorpusWriter(entry / "fit.corpus", vocab_size=len(vocab)) as fit, \
            CorpusWriter(entry / "val.corpus", vocab_size=len(vocab)) as val:
        row = 0
        for labels, texts in iter_chunks(source, batch_rows=batch_rows):
            ids, offsets = vocab.encode_flat(texts, num_workers=num_workers)
            mask = val_mask(row, len(texts), fraction=settings["val_fraction"], seed=settings["seed"])
            row += len(texts)
            lengths = np.diff(offsets)
            for writer, keep in ((fit, ~mask), (val, mask)):
                if keep.all():
                    writer.append(ids, offsets, labels)
                elif keep.any():
                    row_ids = np.repeat(keep, lengths)
                    kept = np.concatenate([[0], np.cumsum(lengths[keep])])
                    writer.append(ids[row_ids], kept, labels[keep])
    atomic_write_text(entry / "meta.json", json.dumps({**settings, "vocab_size": len(vocab), "rows": row}) + "\n")
    assert isinstance(vocab, Vocab)


def cached_corpus(source: str | os.PathLike, *, cache_dir: str | os.PathLike, min_freq: int = 1,
                  max_tokens: int | None = None, specials=("<pad>", "<unk>"), tokenizer: str = "basic_english",
                  val_fraction: float = 0.0, seed: int = 0, build: bool = True, use_cache: bool = True,
                  batch_rows: int = 8192, num_workers: int = 2, timeout_s: float = 3600.0) -> CachedCorpus:
    """The vocabulary and the memory-mapped fit/val corpora of ``source``, built once and cached.

    Args:
        source: The training table (AG_NEWS-format CSV; any format ``textpipe.data.table`` reads once it lands).
        cache_dir: Where cache entries live (one directory per key).
        min_freq, max_tokens, specials, tokenizer: Vocabulary settings (part of the key).
        val_fraction, seed: Validation split (part of the key); see :func:`val_mask`.
        build: This process may build a missing entry (rank 0, or local rank 0 per node); others wait.
        use_cache: ``False`` (``--no-cache``): the builder rebuilds the entry instead of reusing it.
        timeout_s: How long a waiting process waits for the builder.

    Raises:
        TimeoutError: If ``build`` is False and no builder finished within ``timeout_s``.
    """
    from filelock import FileLock

    from textpipe.vocab import Vocab

    source, cache_dir = Path(source), Path(cache_dir).expanduser()
    settings = {"cache_version": CACHE_VERSION, "file": _file_key(source), "tokenizer": tokenizer,
                "min_freq": min_freq, "max_tokens": max_tokens, "specials": list(specials),
                "val_fraction": float(val_fraction), "seed": int(seed)}
    key = hashlib.sha256(json.dumps(settings, sort_keys=True).encode()).hexdigest()[:20]
    entry = cache_dir / f"corpus-{key}"
    cache_dir.mkdir(parents=True, exist_ok=True)
    lock, built, deadline = FileLock(str(cache_dir / f"corpus-{key}.lock")), False, time.monotonic() + timeout_s
    if not use_cache and build:  # --no-cache: this builder rebuilds (callers start the others after it)
        with lock:
            (entry / "meta.json").unlink(missing_ok=True)
    while True:
        with lock:
            if not (entry / "meta.json").exists() and build:
                _build(source, entry, settings, batch_rows=batch_rows, num_workers=num_workers)
                built = True
            if (entry / "meta.json").exists():
                break
        if time.monotonic() > deadline:
            raise TimeoutError(f"waited {timeout_s:.0f} s for another process to build {entry}; is rank 0 running?")
        time.sleep(0.2)  # the builder has not taken the lock yet
    vocab = Vocab.load(entry / "vocab.txt")
    val = EncodedCorpus.load(entry / "val.corpus") if val_fraction > 0 else None
    return CachedCorpus(vocab=vocab, fit=EncodedCorpus.load(entry / "fit.corpus"), val=val, directory=entry,
                        built=built)
