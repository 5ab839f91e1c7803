"""EncodedCorpus: a tokenized, encoded corpus as flat id arrays plus offsets, in memory or memory-mapped.

Why plain numpy and not Hugging Face ``datasets``/Arrow: a corpus here is three integer arrays, which
numpy holds, saves and memory-maps with no schema or cache-directory bookkeeping. Measured on the
AG_NEWS stand-in cycled to 120,000 rows (random batches of 64, 2 shared cores): fetching a batch from a
``datasets.Dataset`` takes about 0.4 ms (Python lists), 1.0 ms (``with_format("numpy")``) or 1.6 ms
(``"torch"``), before any padding; fetch plus padding here takes about 0.05 ms. ``benchmarks/scale.py``
compares the two at 2M+ rows.

On disk (``textpipe/_corpus_format.py``) a corpus is one shard file (``save``) or a manifest naming several
(``textpipe.corpus.writer.CorpusWriter``, which streams rows and never holds the corpus). ``load`` maps every
array of a shard from one ``mmap`` of one open file: no in-RAM copy of ids, offsets or labels. Ids are stored
as uint16/uint32 and become int64 only in the collated batch. The pages of a mapping that batches touch
count in the process's RSS (the kernel maps 60-150 KiB around every fault), so a mapped corpus hands them back
(``madvise(MADV_DONTNEED)``: the file's page cache keeps them) every ``RELEASE_ROWS`` rows it serves: its
RSS stays bounded instead of growing to the whole file over an epoch of random batches.

Run the tests: python3 -m pytest -q tests/test_corpus.py tests/test_corpus_writer.py
"""
from __future__ import annotations

import mmap
import os
from pathlib import Path

import numpy as np
import torch
from torch.utils.data import Dataset

from textpipe.corpus import _format as fmt
from textpipe.corpus.batch import CorpusBatch, windows

__all__ = ["EncodedCorpus"]

_I64 = np.dtype(np.int64)
_SAVE_BLOCK = 1 << 16  # rows per write when saving
# A mapped corpus drops its mapped pages after serving this many rows. Measured (800k rows, random batches of 64):
# each row served maps ~60-150 KiB around it (fault-around, large folios), so this bounds the file pages in RSS
# to ~120-300 MiB whatever the corpus size; re-mapping costs ~1 us a row (0.56 -> 1.44 s an epoch of 800k rows).
RELEASE_ROWS = 2048


def _int_array(value, name: str) -> np.ndarray:
    arr = np.asarray(value)
    if arr.ndim != 1 or not (arr.size == 0 or np.issubdtype(arr.dtype, np.integer)):
        raise TypeError(f"{name} must be a 1-D integer array, got dtype {arr.dtype} and shape {arr.shape}; "
                        f"pass e.g. np.asarray({name}, dtype=np.int64)")
    if arr.dtype == np.uint64 and arr.size and arr.max() > np.iinfo(np.int64).max:
        raise ValueError(f"{name} holds {int(arr.max())}, beyond int64 (max {np.iinfo(np.int64).max}); a cast "
                         f"would wrap it negative")
    return arr


class EncodedCorpus(Dataset):
    """Map-style dataset of encoded samples: ``ids[offsets[i]:offsets[i + 1]]`` and ``labels[i]``.

    ``DataLoader`` with a batch sampler calls ``__getitems__`` once per batch; the collate then pads the
    whole batch in one vectorized step (``textpipe.pad_collate``). A loaded corpus may have several
    shards; indices are global either way.

    Args:
        ids: Flat 1-D integer array of all token ids (copied once, to int64 plus a guard).
        offsets: ``(N + 1,)`` non-decreasing, ``offsets[0] == 0`` and ``offsets[-1] == len(ids)``.
        labels: ``(N,)`` integer labels (0-based).

    Raises:
        TypeError: If an array is not 1-D integer.
        ValueError: If the shapes or offsets are inconsistent.

    Example:
        >>> corpus = EncodedCorpus([5, 6, 7, 8], [0, 3, 4], [2, 0])
        >>> corpus[0], corpus.lengths
        ((tensor([5, 6, 7]), 2), array([3, 1]))
    """

    def __init__(self, ids, offsets, labels) -> None:
        ids, offsets, labels = (_int_array(ids, "ids"), _int_array(offsets, "offsets"),
                                _int_array(labels, "labels"))
        offsets = offsets.astype(np.int64, copy=False)
        self._check(offsets, labels, ids.size)
        lengths = np.diff(offsets)
        source = np.zeros(ids.size + (int(lengths.max()) if lengths.size else 0), np.int64)
        source[:ids.size] = ids
        self._setup([(source, offsets, labels.astype(np.int64, copy=False))], path=None, digests=None)

    @staticmethod
    def _check(offsets: np.ndarray, labels: np.ndarray, n_ids: int) -> None:
        if offsets.size != labels.size + 1:
            raise ValueError(f"offsets must have len(labels) + 1 = {labels.size + 1} entries, got "
                             f"{offsets.size}; offsets are the N + 1 sample boundaries, starting at 0")
        if offsets[0] != 0 or offsets[-1] != n_ids:
            raise ValueError(f"offsets must start at 0 and end at len(ids) = {n_ids}, got "
                             f"{int(offsets[0])} and {int(offsets[-1])}")
        for start in range(0, offsets.size - 1, 1 << 20):  # in blocks: no N-sized temporary
            steps = np.diff(offsets[start:start + (1 << 20) + 1])
            if (steps < 0).any():
                bad = start + int(np.argmax(steps < 0))
                raise ValueError(f"offsets must be non-decreasing, but offsets[{bad}] = {int(offsets[bad])} > "
                                 f"offsets[{bad + 1}] = {int(offsets[bad + 1])}")

    def _setup(self, shards: list[tuple[np.ndarray, np.ndarray, np.ndarray]], path, digests) -> None:
        """``shards``: ``(source with guard, local int64 offsets, labels)`` each; ``path`` if mapped."""
        self._shards, self._path, self._digests = shards, path, digests
        counts = [offsets.size - 1 for _, offsets, _ in shards]
        self._row_starts = np.concatenate([[0], np.cumsum(counts)]).astype(np.int64)
        self._lengths = None
        self._served, self._maps = 0, _mappings(shards) if path is not None else []

    def _release(self, rows: int) -> None:
        """Count ``rows`` served; every ``RELEASE_ROWS`` drop this process's mapped pages (not the page cache:
        the next access maps them again from it, no disk read)."""
        self._served += rows
        if self._served >= RELEASE_ROWS and self._maps:
            self._served = 0
            for mm in self._maps:
                mm.madvise(mmap.MADV_DONTNEED)

    # -- views --------------------------------------------------------------------------------------------
    @property
    def num_shards(self) -> int:
        return len(self._shards)

    @property
    def shard_starts(self) -> np.ndarray:
        """``(num_shards + 1,)`` first global row of each shard, then ``len(self)``."""
        return self._row_starts

    @property
    def offsets(self) -> np.ndarray:
        """``(N + 1,)`` int64 row boundaries (a view for one shard; several shards allocate N * 8 bytes)."""
        if len(self._shards) == 1:
            return self._shards[0][1]
        parts, base = [np.zeros(1, np.int64)], 0
        for _, offsets, _ in self._shards:
            parts.append(offsets[1:] + base)
            base += int(offsets[-1])
        return np.concatenate(parts)

    @property
    def labels(self) -> np.ndarray:
        """``(N,)`` labels (a view for one shard; stored as the smallest dtype that holds them)."""
        if len(self._shards) == 1:
            return self._shards[0][2]
        return np.concatenate([labels for _, _, labels in self._shards])

    @property
    def ids(self) -> np.ndarray:
        """All ids, flat (a view without the guard for one shard)."""
        if len(self._shards) == 1:
            source, offsets, _ = self._shards[0]
            return source[:int(offsets[-1])]
        return np.concatenate([source[:int(offsets[-1])] for source, offsets, _ in self._shards])

    @property
    def lengths(self) -> np.ndarray:
        """``(N,)`` int64 sample lengths (N * 8 bytes; cached only for in-memory corpora)."""
        if self._lengths is not None:
            return self._lengths
        lengths = self.row_lengths(0, len(self))
        if self._path is None:
            self._lengths = lengths
        return lengths

    def row_lengths(self, start: int, stop: int) -> np.ndarray:
        """Lengths of rows ``start..stop-1`` (what the windowed sampler reads, one window at a time)."""
        start, stop = max(int(start), 0), min(int(stop), len(self))
        parts = []
        for k in range(len(self._shards)):
            lo, hi = max(start, self._row_starts[k]), min(stop, self._row_starts[k + 1])
            if lo < hi:
                offsets = self._shards[k][1]
                a, b = lo - self._row_starts[k], hi - self._row_starts[k]
                parts.append(np.diff(offsets[a:b + 1]))
        return np.concatenate(parts).astype(np.int64, copy=False) if parts else np.zeros(0, np.int64)

    # -- dataset protocol -----------------------------------------------------------------------------------
    def __len__(self) -> int:
        return int(self._row_starts[-1])

    def __getitem__(self, index: int) -> tuple[torch.Tensor, int]:
        n = len(self)
        if not -n <= index < n:
            raise IndexError(f"index {index} is out of range for a corpus of {n} samples")
        index %= n
        k = int(np.searchsorted(self._row_starts, index, side="right")) - 1
        source, offsets, labels = self._shards[k]
        local = index - int(self._row_starts[k])
        ids = np.array(source[offsets[local]:offsets[local + 1]], dtype=np.int64)  # a copy, as int64
        self._release(1)
        return torch.from_numpy(ids), int(labels[local])

    def __getitems__(self, indices) -> CorpusBatch:
        """The batch ``indices`` as a :class:`~textpipe.batches.collate.CorpusBatch` (ids are not copied when
        the batch lies in one shard; otherwise just this batch's ids are gathered)."""
        if isinstance(indices, list) and all(type(i) is int for i in indices):
            idx = np.fromiter(indices, dtype=np.int64, count=len(indices))  # faster than asarray for lists
        else:  # floats and bools are refused, not truncated (1.5 is not row 1)
            idx = np.asarray(indices.numpy() if isinstance(indices, torch.Tensor) else indices)
            if idx.ndim != 1 or not (idx.size == 0 or idx.dtype.kind in "iu"):
                raise TypeError(f"indices must be a 1-D sequence of ints, got dtype {idx.dtype} and shape "
                                f"{idx.shape}")
            if idx.dtype.kind == "u" and idx.size and idx.max() >= len(self):  # before a cast could wrap it
                raise IndexError(f"index {int(idx.max())} is out of range for a corpus of {len(self)} samples")
            idx = idx.astype(np.int64, copy=False)
        n = len(self)
        if idx.size and (idx.min() < 0 or idx.max() >= n):  # negative: from the end, as __getitem__ counts
            if idx.min() < -n or idx.max() >= n:
                bad = int(idx[(idx < -n) | (idx >= n)][0])
                raise IndexError(f"index {bad} is out of range for a corpus of {n} samples")
            idx = np.where(idx < 0, idx + n, idx)
        self._release(idx.size)  # (before this batch: its ids are read after this returns)
        if len(self._shards) == 1:
            source, offsets, labels = self._shards[0]
            starts = offsets.take(idx)
            return CorpusBatch(source, starts, offsets.take(idx + 1) - starts, labels.take(idx))
        shard = np.searchsorted(self._row_starts, idx, side="right") - 1
        if idx.size and shard.min() == shard.max():
            source, offsets, labels = self._shards[int(shard[0])]
            local = idx - self._row_starts[shard[0]]
            starts = offsets.take(local)
            return CorpusBatch(source, starts, offsets.take(local + 1) - starts, labels.take(local))
        return self._gather_batch(idx, shard)

    def _gather_batch(self, idx: np.ndarray, shard: np.ndarray) -> CorpusBatch:
        """A batch spanning shards: each shard's rows cut as ``(b, T)`` windows into one ``(B, T)`` block
        (what lies past a row's length is padded over by the collate)."""
        local = idx - self._row_starts[shard]
        starts, lengths, labels = np.empty(idx.size, np.int64), np.empty(idx.size, np.int64), np.empty(idx.size, np.int64)
        groups = [(int(k), np.flatnonzero(shard == k)) for k in np.unique(shard)]
        for k, sel in groups:
            _, offsets, shard_labels = self._shards[k]
            starts[sel] = offsets.take(local[sel])
            lengths[sel] = offsets.take(local[sel] + 1) - starts[sel]
            labels[sel] = shard_labels.take(local[sel])
        T = int(lengths.max()) if lengths.size else 0
        block = np.empty((idx.size, T), np.int64)
        for k, sel in groups:
            block[sel] = windows(self._shards[k][0], starts[sel], T)
        return CorpusBatch(block.ravel(), np.arange(idx.size, dtype=np.int64) * T, lengths, labels)

    def _rows(self, idx: np.ndarray) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
        """``(flat ids, lengths, labels)`` of rows ``idx``, in that order."""
        batch = self.__getitems__(idx)
        cum = np.zeros(batch.lengths.size + 1, np.int64)
        np.cumsum(batch.lengths, out=cum[1:])
        pos = np.repeat(batch.starts - cum[:-1], batch.lengths) + np.arange(cum[-1])
        return batch.source.take(pos), batch.lengths, batch.labels

    # -- construction, subsets ------------------------------------------------------------------------------
    @classmethod
    def from_texts(cls, texts, labels, vocab, *, num_workers: int = 1) -> EncodedCorpus:
        """Tokenize and encode texts once with ``vocab.encode_flat`` (in memory; for a stream of chunks
        use :class:`textpipe.corpus.writer.CorpusWriter`).

        Example:
            >>> from textpipe.text.vocabulary import Vocab
            >>> vocab = Vocab(["<pad>", "<unk>", "a", "b"], default_index=1)
            >>> EncodedCorpus.from_texts(["a b", "c"], [0, 1], vocab).lengths
            array([2, 1])
        """
        if len(texts) != len(labels):
            raise ValueError(f"texts and labels must have the same length, got {len(texts)} and {len(labels)}")
        labels = np.asarray(labels)  # floats are refused by the constructor, not truncated (1.7 is not class 1)
        ids, offsets = vocab.encode_flat(texts, num_workers=num_workers)
        return cls(ids, offsets, labels)

    def subset(self, indices) -> EncodedCorpus:
        """A new in-memory corpus holding the samples ``indices``, in that order."""
        idx = _int_array(indices, "indices").astype(np.int64, copy=False)
        ids, lengths, labels = self._rows(idx)
        offsets = np.zeros(idx.size + 1, np.int64)
        np.cumsum(lengths, out=offsets[1:])
        return EncodedCorpus(ids, offsets, labels)

    def split(self, fraction: float, *, seed: int = 0) -> tuple[EncodedCorpus, EncodedCorpus]:
        """Randomly split into in-memory ``(rest, part)`` where ``part`` holds ``round(fraction * N)`` samples.

        Example:
            >>> corpus = EncodedCorpus(list(range(20)), list(range(21)), [0] * 20)  # 20 one-id samples
            >>> rest, part = corpus.split(0.25, seed=0)   # e.g. a validation carve-out
            >>> len(rest), len(part)
            (15, 5)
        """
        if not 0.0 <= fraction <= 1.0:
            raise ValueError(f"fraction must be in [0, 1], got {fraction!r}")
        order = np.random.default_rng(seed).permutation(len(self))
        n_part = int(round(fraction * len(self)))
        return self.subset(np.sort(order[n_part:])), self.subset(np.sort(order[:n_part]))

    # -- files ---------------------------------------------------------------------------------------------
    def save(self, path: str | os.PathLike) -> None:
        """Write the corpus to one shard file, atomically (``textpipe.core.fileio``), ids in the smallest dtype."""
        from textpipe.corpus.writer import write_shard

        lo = min((int(s[:int(o[-1])].min()) for s, o, _ in self._shards if o[-1] > 0), default=0)
        hi = max((int(s[:int(o[-1])].max()) for s, o, _ in self._shards if o[-1] > 0), default=0)
        dtype = fmt.smallest_dtype(lo, hi, fmt.ID_DTYPES)

        def blocks():
            for start in range(0, len(self), _SAVE_BLOCK):
                yield self._rows(np.arange(start, min(start + _SAVE_BLOCK, len(self))))
        write_shard(path, blocks(), id_dtype=dtype)

    @classmethod
    def load(cls, path: str | os.PathLike, *, mmap: bool = True, verify: bool = True) -> EncodedCorpus:
        """Open a corpus written by :meth:`save` or ``CorpusWriter``; with ``mmap`` the arrays are mapped.

        Args:
            path: A shard file or a manifest.
            mmap: Map the files (default); ``False`` reads the arrays into memory.
            verify: Check every array against its SHA-256 (about 1 GB/s; reads through the page cache,
                so it adds no RSS). ``False`` skips it, e.g. in workers re-opening a verified corpus.

        Raises:
            FileNotFoundError: If ``path`` (or a shard it names) does not exist.
            ValueError: If a file is not a textpipe corpus, has another version, is truncated, or its
                data does not match its checksum; the message names the file.
        """
        path = Path(path)
        for attempt in (0, 1):
            try:
                shards, digests = _map_all(path, verify=verify)
                break
            except FileNotFoundError:
                if attempt or not path.exists():
                    raise  # else: a rebuild replaced the manifest between reading it and its shards
        if not mmap:
            shards = [tuple(np.array(a) for a in shard) for shard in shards]
        corpus = cls.__new__(cls)
        corpus._setup(shards, path=path.resolve() if mmap else None, digests=digests)
        return corpus

    def __getstate__(self) -> dict:
        # A memory-mapped corpus pickles as its path, so spawn/forkserver workers map the file too.
        if self._path is not None:
            return {"path": str(self._path), "digests": self._digests}
        return {"shards": self._shards}

    def __setstate__(self, state: dict) -> None:
        if "path" in state:
            shards, digests = _map_all(Path(state["path"]), verify=False)
            if digests != state["digests"]:
                raise ValueError(f"{state['path']} changed since this corpus was opened; open it again")
            self._setup(shards, path=Path(state["path"]), digests=digests)
        else:
            self._setup(state["shards"], path=None, digests=None)

    def __repr__(self) -> str:
        n_ids = sum(int(o[-1]) for _, o, _ in self._shards)
        return (f"EncodedCorpus(rows={len(self)}, ids={n_ids}, shards={len(self._shards)}, "
                f"mmap={self._path is not None})")


def _mappings(shards) -> list:
    """The ``mmap`` objects under the shards' arrays (none where ``madvise`` is missing, e.g. Windows)."""
    if not hasattr(mmap, "MADV_DONTNEED"):
        return []
    maps = {}
    for arrays in shards:
        for a in arrays:
            while a is not None and not isinstance(a, mmap.mmap):
                a = getattr(a, "base", None) if not isinstance(a, memoryview) else a.obj
            if a is not None:
                maps[id(a)] = a
    return list(maps.values())


def _map_all(path: Path, *, verify: bool):
    """Every shard of ``path`` (a shard file or a manifest), mapped and checked; and their digests."""
    if not fmt.is_manifest(path):
        shard = _checked(fmt.map_shard(path, verify=verify), path)
        return [shard[:3]], [shard[3]]
    manifest = fmt.read_manifest(path)
    shards, digests = [], []
    for name, n_rows, n_ids, sha in manifest["shards"]:
        shard_path = path.with_name(name)
        shard = _checked(fmt.map_shard(shard_path, verify=verify), shard_path)
        if shard[3] != sha or shard[1].size - 1 != n_rows or int(shard[1][-1]) != n_ids:
            raise ValueError(f"{shard_path} is not the shard {path} names (its checksums differ): the corpus "
                             f"was rebuilt while it was opened, or mixed by hand; build it again")
        shards.append(shard[:3])
        digests.append(shard[3])
    return shards, digests


def _checked(mapped: dict, path: Path):
    source, offsets, labels = mapped["source"], mapped["offsets"], mapped["labels"]
    try:
        if offsets.size == 0:
            raise ValueError("offsets array is empty")
        if mapped["n_rows"] != labels.size or mapped["n_ids"] > source.size:
            raise ValueError(f"header says {mapped['n_rows']} rows and {mapped['n_ids']} ids, the arrays "
                             f"hold {labels.size} labels and {source.size} ids")
        EncodedCorpus._check(offsets, labels, mapped["n_ids"])  # also without verify: a cheap pass
        if source.size - mapped["n_ids"] < mapped["max_length"]:
            raise ValueError("ids array is shorter than its guard needs")
    except ValueError as err:
        raise ValueError(f"{path}: corrupt corpus ({err}); delete it and build it again") from None
    return source, offsets.astype(_I64, copy=False), labels, mapped["sha256"]
