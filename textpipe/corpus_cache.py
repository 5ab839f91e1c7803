"""The training corpus cache: stream a table file once into a vocabulary + memory-mapped corpora, reuse it.

    cached = cached_corpus("train.csv", cache_dir="~/.cache/textpipe/corpora", val_fraction=0.1)
    cached.vocab, cached.fit, cached.val      # Vocab, EncodedCorpus (mapped), EncodedCorpus or None

The key covers the file (size, mtime, SHA-256 of its first and last MiB), the tokenizer and the vocabulary
and split settings. One process builds (the caller says which: rank 0 / local rank 0) under a file lock;
the others wait for it and map the same files. Building streams the file twice (count tokens of the
training rows, then encode all rows into shard files): rows and token lists are never all in memory.

Validation rows are the ones ``train.py`` always chose (the first ``round(N * val_fraction)`` of a seeded
permutation), kept as a 1-byte-per-row mask while building. Tests: python3 -m pytest -q tests/test_corpus_cache.py
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


def iter_chunks(source, *, label_vocab, batch_rows: int = 8192) -> Iterator[tuple[np.ndarray, list[str]]]:
    """``(class ids as int64, texts)`` chunks of any table ``textpipe.data.table.iter_table`` reads, in
    bounded memory; ``label_vocab`` (a ``LabelVocab``) maps the raw labels (errors name the row)."""
    from textpipe.data.table import iter_table

    row = 1
    for raw, texts in iter_table(source, batch_rows=batch_rows):
        yield label_vocab.encode(raw, source=str(source), first_row=row), texts
        row += len(texts)


def count_rows(source) -> int:
    """Rows of ``source`` (a pass of pyarrow's reader with no Python per row)."""
    from textpipe.data._arrow import arrow_batches
    from textpipe.data.table import inspect_table

    spec = inspect_table(source)
    return sum(b.num_rows for b in arrow_batches(source, spec, batch_rows=1 << 16, split=None, bad=[], skip=False))


def val_mask(n_rows: int, *, fraction: float, seed: int) -> np.ndarray:
    """``(n_rows,)`` bool, True for validation rows: the first ``round(n_rows * fraction)`` of the seeded
    permutation, as ``train.py`` has always chosen them (1 byte per row; the permutation is dropped)."""
    mask = np.zeros(n_rows, bool)
    n_val = int(round(n_rows * fraction))
    if n_val:
        mask[np.random.default_rng(seed).permutation(n_rows)[:n_val]] = True
    return mask


def _file_key(path: Path) -> dict:
    st = path.stat()
    h = hashlib.sha256()
    with open(path, "rb") as f:
        h.update(f.read(_PROBE))
        if st.st_size > 2 * _PROBE:
            f.seek(st.st_size - _PROBE)
        h.update(f.read(_PROBE))
    return {"path": str(path.resolve()), "size": st.st_size, "mtime_ns": st.st_mtime_ns, "probe_sha256": h.hexdigest()}


def _fit_texts(chunks, mask: np.ndarray):
    row = 0
    for _, texts in chunks:
        keep = ~mask[row:row + len(texts)]
        row += len(texts)
        yield texts if keep.all() else [t for t, k in zip(texts, keep) if k]


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


def _build(source, entry: Path, settings: dict, *, label_vocab, batch_rows: int, num_workers: int) -> None:
    mask = val_mask(count_rows(source), fraction=settings["val_fraction"], seed=settings["seed"])
    chunks = lambda: iter_chunks(source, label_vocab=label_vocab, batch_rows=batch_rows)  # noqa: E731
    vocab = _build_vocab(_fit_texts(chunks(), mask), min_freq=settings["min_freq"],
                         max_tokens=settings["max_tokens"], specials=settings["specials"], num_workers=num_workers)
    vocab.set_default_index(settings["specials"].index("<unk>") if "<unk>" in settings["specials"] else None)
    entry.mkdir(parents=True, exist_ok=True)
    vocab.save(entry / "vocab.txt")
    with CorpusWriter(entry / "fit.corpus", vocab_size=len(vocab)) as fit, \
            CorpusWriter(entry / "val.corpus", vocab_size=len(vocab)) as val:
        row = 0
        for labels, texts in chunks():
            ids, offsets = vocab.encode_flat(texts, num_workers=num_workers)
            is_val = mask[row:row + len(texts)]
            row += len(texts)
            lengths = np.diff(offsets)
            for writer, keep in ((fit, ~is_val), (val, is_val)):
                if keep.all():
                    writer.append(ids, offsets, labels)
                elif keep.any():
                    kept = np.concatenate([[0], np.cumsum(lengths[keep])])
                    writer.append(ids[np.repeat(keep, lengths)], kept, labels[keep])
    atomic_write_text(entry / "meta.json", json.dumps({**settings, "vocab_size": len(vocab), "rows": row,
                                                       "val_rows": int(mask.sum())}) + "\n")


def cached_corpus(source: str | os.PathLike, *, cache_dir: str | os.PathLike, min_freq: int = 1,
                  max_tokens: int | None = None, specials=("<pad>", "<unk>"), tokenizer: str = "basic_english",
                  label_vocab=None, val_fraction: float = 0.0, seed: int = 0, build: bool = True,
                  use_cache: bool = True,
                  batch_rows: int = 8192, num_workers: int = 2, timeout_s: float = 3600.0) -> CachedCorpus:
    """The vocabulary and the memory-mapped fit/val corpora of ``source``, built once and cached.

    Args:
        source: The training table (any format ``textpipe.data.table.iter_table`` reads).
        cache_dir: Where cache entries live (one directory per key).
        min_freq, max_tokens, specials, tokenizer: Vocabulary settings (part of the key).
        label_vocab: ``LabelVocab`` of the raw labels; None = the AG_NEWS classes (labels 1..4).
        val_fraction, seed: Validation split (part of the key); see :func:`val_mask`.
        build: This process may build a missing entry (rank 0, or local rank 0 per node); others wait.
        use_cache: ``False`` (``--no-cache``): the builder rebuilds the entry instead of reusing it.
        timeout_s: How long a waiting process waits for the builder.

    Raises:
        TimeoutError: If ``build`` is False and no builder finished within ``timeout_s``.
    """
    from filelock import FileLock

    from textpipe.vocab import Vocab

    if label_vocab is None:
        from textpipe.data.ag_news import AG_NEWS_CLASSES
        from textpipe.data.labels import LabelVocab
        label_vocab = LabelVocab([1, 2, 3, 4], names=AG_NEWS_CLASSES)
    source, cache_dir = Path(source), Path(cache_dir).expanduser()
    settings = {"labels": label_vocab.to_dict(), "cache_version": CACHE_VERSION, "file": _file_key(source), "tokenizer": tokenizer,
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
                _build(source, entry, settings, label_vocab=label_vocab, batch_rows=batch_rows,
                       num_workers=num_workers)
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


SAMPLER_WINDOW = 1 << 20  # rows shuffled together by the training sampler (corpora up to this size: global)


def training_corpora(cfg, info, *, ckpt: dict | None = None) -> CachedCorpus | None:
    """What ``textpipe.train`` calls: the cached corpora of ``cfg.data_dir``'s train file, or None if it has none.

    Rank 0 builds (or finds) the entry while the other ranks wait at a barrier, then they map it; the local
    rank 0 of another node without a shared file system builds its own copy. A resumed run must find the
    checkpoint's vocabulary (the same file and settings), else the ids would not match the model.
    """
    from textpipe.data.ag_news import _find
    from textpipe.data.download import default_cache_dir

    source = _find(Path(cfg.data_dir).expanduser(), "train")
    if source is None:
        return None  # load_ag_news says what is missing
    kwargs = {"cache_dir": cfg.cache_dir or default_cache_dir() / "corpora", "min_freq": cfg.min_freq,
              "max_tokens": cfg.max_tokens, "val_fraction": cfg.val_fraction, "seed": cfg.seed,
              "use_cache": cfg.cache}
    if info.world_size > 1 and info.rank != 0:
        import torch.distributed as dist
        dist.barrier()
    cached = cached_corpus(source, build=info.rank == 0 or info.local_rank == 0, **kwargs)
    if info.world_size > 1 and info.rank == 0:
        import torch.distributed as dist
        dist.barrier()
    if ckpt is not None and cached.vocab.get_itos() != list(ckpt["vocab_itos"]):
        raise ValueError(f"--resume: the vocabulary of {source} (with these settings) is not the checkpoint's: "
                         f"the training file changed since; resume with the file the checkpoint was trained on")
    return cached
