"""EncodedCorpus: a tokenized, encoded text corpus held as one flat id array plus offsets, and its cache file.

Why plain numpy and not Hugging Face ``datasets``/Arrow: a corpus here is three integer arrays, which
numpy holds, saves and memory-maps with no schema or cache-directory bookkeeping. Measured on the
AG_NEWS stand-in cycled to 120,000 rows (random batches of 64, 2 shared cores): fetching a batch from a
``datasets.Dataset`` takes about 0.4 ms (Python lists), 1.0 ms (``with_format("numpy")``) or 1.6 ms
(``"torch"``), before any padding; fetch plus padding here takes about 0.05 ms. Tokenizing is already done in
bulk by ``Vocab.encode_flat``, so ``map(num_proc=...)`` earns nothing either. Corpora larger than memory
are served by ``load(mmap=True)``: the file is mapped, not read.

File format (``save``/``load``), version 1: the line ``textpipe-corpus\\n``, a little-endian uint64
header size, a JSON header, then the arrays at 64-byte-aligned offsets. The ids array is stored with a
trailing guard of ``max(lengths)`` zeros so that batches can be cut as windows (see ``collate.py``).

Run the tests: python3 -m pytest -q tests/test_corpus.py
"""
from __future__ import annotations

import json
import os
import tempfile
from pathlib import Path

import numpy as np
import torch
from torch.utils.data import Dataset

from textpipe.collate import CorpusBatch

__all__ = ["EncodedCorpus"]

_MAGIC = b"textpipe-corpus\n"
_VERSION = 1
_ALIGN = 64
_I64 = np.dtype("<i8")


def _int_array(value, name: str) -> np.ndarray:
    arr = np.asarray(value)
    if arr.ndim != 1 or not (arr.size == 0 or np.issubdtype(arr.dtype, np.integer)):
        raise TypeError(f"{name} must be a 1-D integer array, got dtype {arr.dtype} and shape {arr.shape}; "
                        f"pass e.g. np.asarray({name}, dtype=np.int64)")
    return arr


class EncodedCorpus(Dataset):
    """Map-style dataset of encoded samples: ``ids[offsets[i]:offsets[i + 1]]`` and ``labels[i]``.

    ``DataLoader`` with a batch sampler calls ``__getitems__`` once per batch; the collate then pads the
    whole batch in one vectorized step (``textpipe.pad_collate``).

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
        self._setup(source, offsets, labels.astype(np.int64, copy=False), path=None)

    @staticmethod
    def _check(offsets: np.ndarray, labels: np.ndarray, n_ids: int) -> None:
        if offsets.size != labels.size + 1:
            raise ValueError(f"offsets must have len(labels) + 1 = {labels.size + 1} entries, got "
                             f"{offsets.size}; offsets are the N + 1 sample boundaries, starting at 0")
        if offsets[0] != 0 or offsets[-1] != n_ids:
            raise ValueError(f"offsets must start at 0 and end at len(ids) = {n_ids}, got "
                             f"{int(offsets[0])} and {int(offsets[-1])}")
        if offsets.size > 1 and (np.diff(offsets) < 0).any():
            bad = int(np.argmax(np.diff(offsets) < 0))
            raise ValueError(f"offsets must be non-decreasing, but offsets[{bad}] = {int(offsets[bad])} > "
                             f"offsets[{bad + 1}] = {int(offsets[bad + 1])}")

    def _setup(self, source: np.ndarray, offsets: np.ndarray, labels: np.ndarray, path) -> None:
        self._source, self.offsets, self.labels, self._path = source, offsets, labels, path
        self.ids = source[:int(offsets[-1])]  # a view: the guard stays private
        self.lengths = np.diff(offsets)
        self._starts = offsets[:-1]
        # (3, N) starts, lengths, labels: __getitems__ gathers all three with one take.
        self._rows = np.stack([self._starts, self.lengths, labels]).astype(np.int64, copy=False)

    @classmethod
    def from_texts(cls, texts, labels, vocab, *, num_workers: int = 1) -> EncodedCorpus:
        """Tokenize and encode texts once with ``vocab.encode_flat``.

        Args:
            texts: Sequence of ``str``.
            labels: Sequence of 0-based int labels, one per text.
            vocab: A ``textpipe.Vocab``.
            num_workers: Threads used by ``encode_flat`` (its kernels release the GIL).

        Example:
            >>> from textpipe.vocab import Vocab
            >>> vocab = Vocab(["<pad>", "<unk>", "a", "b"], default_index=1)
            >>> EncodedCorpus.from_texts(["a b", "c"], [0, 1], vocab).lengths
            array([2, 1])
        """
        if len(texts) != len(labels):
            raise ValueError(f"texts and labels must have the same length, got {len(texts)} and {len(labels)}")
        ids, offsets = vocab.encode_flat(texts, num_workers=num_workers)
        return cls(ids, offsets, np.asarray(labels, dtype=np.int64))

    def __len__(self) -> int:
        return self.labels.size

    def __getitem__(self, index: int) -> tuple[torch.Tensor, int]:
        n = len(self)
        if not -n <= index < n:
            raise IndexError(f"index {index} is out of range for a corpus of {n} samples")
        index %= n
        ids = np.array(self.ids[self.offsets[index]:self.offsets[index + 1]])  # a copy: tensors may be written
        return torch.from_numpy(ids), int(self.labels[index])

    def __getitems__(self, indices) -> CorpusBatch:
        """The batch ``indices`` as a :class:`~textpipe.collate.CorpusBatch` (no ids are copied here)."""
        if isinstance(indices, list):
            idx = np.fromiter(indices, dtype=np.int64, count=len(indices))  # faster than asarray for lists
        else:
            idx = np.asarray(indices, dtype=np.int64)
        rows = self._rows.take(idx, axis=1)  # (3, B), C-contiguous: each field is a contiguous row
        return CorpusBatch(self._source, rows[0], rows[1], rows[2])

    def subset(self, indices) -> EncodedCorpus:
        """A new in-memory corpus holding the samples ``indices``, in that order."""
        idx = _int_array(indices, "indices").astype(np.int64, copy=False)
        lengths = self.lengths[idx]
        offsets = np.zeros(idx.size + 1, np.int64)
        np.cumsum(lengths, out=offsets[1:])
        keep = np.arange(offsets[-1]) - np.repeat(offsets[:-1] - self._starts[idx], lengths)
        return EncodedCorpus(self._source[keep], offsets, self.labels[idx])

    def split(self, fraction: float, *, seed: int = 0) -> tuple[EncodedCorpus, EncodedCorpus]:
        """Randomly split into ``(rest, part)`` where ``part`` holds ``round(fraction * N)`` samples.

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

    def save(self, path: str | os.PathLike) -> None:
        """Write the corpus to one file, atomically (a temp file in the same directory, then rename)."""
        path = Path(path)
        arrays = {"ids": self._source, "offsets": self.offsets, "labels": self.labels}
        header = {"format_version": _VERSION, "n_rows": len(self), "n_ids": int(self.offsets[-1]),
                  "dtype": _I64.str, "arrays": {}}
        pos = 0
        for name, arr in arrays.items():
            header["arrays"][name] = [pos, int(arr.size)]
            pos += -(-arr.size * 8 // _ALIGN) * _ALIGN
        blob = json.dumps(header).encode()
        data_start = -(-(len(_MAGIC) + 8 + len(blob)) // _ALIGN) * _ALIGN
        fd, tmp = tempfile.mkstemp(dir=path.parent, prefix=path.name + ".", suffix=".tmp")
        try:
            with os.fdopen(fd, "wb") as f:
                f.write(_MAGIC + len(blob).to_bytes(8, "little") + blob)
                for name, arr in arrays.items():
                    f.seek(data_start + header["arrays"][name][0])
                    f.write(np.ascontiguousarray(arr, _I64).tobytes())
                f.truncate(data_start + pos)
                f.flush()
                os.fsync(f.fileno())
            os.chmod(tmp, 0o644)  # mkstemp creates 0600
            os.replace(tmp, path)
        except BaseException:
            Path(tmp).unlink(missing_ok=True)
            raise

    @classmethod
    def load(cls, path: str | os.PathLike, *, mmap: bool = True) -> EncodedCorpus:
        """Read a file written by :meth:`save`; with ``mmap`` the arrays are mapped, not read.

        Raises:
            FileNotFoundError: If ``path`` does not exist.
            ValueError: If the file is not a textpipe corpus, has another version, or is truncated/corrupt.
        """
        path = Path(path)
        fix = f"delete {path} and re-create it with EncodedCorpus.from_texts(...).save(path)"
        with open(path, "rb") as f:
            magic = f.read(len(_MAGIC))
            if magic != _MAGIC:
                raise ValueError(f"{path} is not a textpipe corpus file: expected it to start with "
                                 f"{_MAGIC!r}, found {magic[:16]!r}; {fix}")
            try:
                size = int.from_bytes(f.read(8), "little")
                header = json.loads(f.read(size))
                arrays = {name: (int(header["arrays"][name][0]), int(header["arrays"][name][1]))
                          for name in ("ids", "offsets", "labels")}
                version, n_ids = header["format_version"], int(header["n_ids"])
            except (ValueError, KeyError, TypeError, IndexError, AttributeError) as err:
                raise ValueError(f"{path}: corrupt corpus header ({err}); {fix}") from None
        if version != _VERSION:
            raise ValueError(f"{path}: corpus format_version {version} is not supported (this textpipe "
                             f"reads version {_VERSION}); {fix}")
        data_start = -(-(len(_MAGIC) + 8 + size) // _ALIGN) * _ALIGN
        end = max(data_start + offset + 8 * count for offset, count in arrays.values())
        if os.path.getsize(path) < end:
            raise ValueError(f"{path}: corpus file is truncated: expected at least {end} bytes, found "
                             f"{os.path.getsize(path)}; {fix}")

        def read(name: str) -> np.ndarray:
            offset, count = arrays[name]
            if mmap:
                return np.memmap(path, dtype=_I64, mode="r", offset=data_start + offset, shape=(count,))
            return np.fromfile(path, dtype=_I64, count=count, offset=data_start + offset)

        source, offsets, labels = read("ids"), np.array(read("offsets")), np.array(read("labels"))
        try:
            cls._check(offsets, labels, n_ids)
        except ValueError as err:
            raise ValueError(f"{path}: corrupt corpus ({err}); {fix}") from None
        if source.size < offsets[-1] + (int(np.diff(offsets).max()) if labels.size else 0):
            raise ValueError(f"{path}: corrupt corpus (ids array shorter than offsets say); {fix}")
        corpus = cls.__new__(cls)
        corpus._setup(source, offsets, labels, path=path.resolve() if mmap else None)
        return corpus

    def __getstate__(self) -> dict:
        # A memory-mapped corpus pickles as its path, so spawn/forkserver workers map the file too.
        if self._path is not None:
            return {"path": str(self._path)}
        return {"source": self._source, "offsets": self.offsets, "labels": self.labels}

    def __setstate__(self, state: dict) -> None:
        if "path" in state:
            loaded = EncodedCorpus.load(state["path"], mmap=True)
            state = {"source": loaded._source, "offsets": loaded.offsets, "labels": loaded.labels,
                     "path": loaded._path}
        self._setup(state["source"], state["offsets"], state["labels"], path=state.get("path"))

    def __repr__(self) -> str:
        return f"EncodedCorpus(rows={len(self)}, ids={self.offsets[-1]}, mmap={self._path is not None})"
