"""CorpusWriter: build an encoded corpus chunk by chunk, straight into shard files, never holding it.

    with CorpusWriter("train.corpus", vocab_size=len(vocab)) as writer:
        for labels, texts in chunks:                 # e.g. textpipe.data.table.iter_table(...)
            writer.append_texts(texts, labels, vocab)
    corpus = EncodedCorpus.load("train.corpus")      # memory-mapped

The target is a manifest; each shard (``shard_rows`` rows) is its own file beside it, written through
``textpipe.core.fileio.atomic_write`` and hashed while it streams. The manifest is written last, atomically:
until then readers see the previous corpus (or none), and a killed writer leaves no temp files that the
next write does not sweep. Memory: one chunk of the input plus one shard's offsets and labels (9 B/row).
Format: ``textpipe/_corpus_format.py``. Tests: python3 -m pytest -q tests/test_corpus_writer.py
"""
from __future__ import annotations

import contextlib
import hashlib
import json
import os
import uuid
from pathlib import Path

import numpy as np

from textpipe.corpus import _format as fmt
from textpipe.core.fileio import HOST, pid_alive, atomic_write, atomic_write_text, sweep_stale_temps

__all__ = ["CorpusWriter", "write_shard"]

SHARD_ROWS = 1 << 20  # rows per shard file: bounds the writer's offsets/labels buffer (about 9 MiB)


class _Shard:
    """One shard file being streamed: ids go to disk as they come, offsets and labels at close."""

    def __init__(self, path: Path, id_dtype: np.dtype) -> None:
        self.path, self.id_dtype = path, id_dtype
        self._stack = contextlib.ExitStack()
        self._f = self._stack.enter_context(atomic_write(path))
        self._f.seek(fmt.HEADER_SLOT)
        self._ids_hash, self.n_ids = hashlib.sha256(), 0
        self._lengths: list[np.ndarray] = []
        self._labels: list[np.ndarray] = []
        self.n_rows = 0

    def append(self, ids: np.ndarray, lengths: np.ndarray, labels: np.ndarray) -> None:
        data = np.ascontiguousarray(ids, self.id_dtype)
        self._f.write(memoryview(data).cast("B"))
        self._ids_hash.update(memoryview(data).cast("B"))
        self.n_ids += data.size
        self.n_rows += lengths.size
        self._lengths.append(lengths.astype(np.int64, copy=False))
        self._labels.append(np.asarray(labels, np.int64))

    def _write_array(self, name: str, arr: np.ndarray, arrays: dict, digests: dict) -> None:
        pos = fmt.align(self._f.tell())
        self._f.seek(pos)
        raw = memoryview(np.ascontiguousarray(arr)).cast("B")
        self._f.write(raw)
        arrays[name] = [pos, int(arr.size), arr.dtype.str]
        digests[name] = hashlib.sha256(raw).hexdigest()

    def close(self) -> dict:
        lengths = np.concatenate(self._lengths) if self._lengths else np.zeros(0, np.int64)
        labels = np.concatenate(self._labels) if self._labels else np.zeros(0, np.int64)
        self._lengths = self._labels = []
        max_len = int(lengths.max()) if lengths.size else 0
        guard = np.zeros(max_len, self.id_dtype)  # batches are cut as windows: see textpipe.corpus.batch.windows
        self._f.write(guard.tobytes())
        self._ids_hash.update(guard.tobytes())
        arrays = {"ids": [fmt.HEADER_SLOT, self.n_ids + max_len, self.id_dtype.str]}
        digests = {"ids": self._ids_hash.hexdigest()}
        offsets = np.zeros(lengths.size + 1, np.int64)
        np.cumsum(lengths, out=offsets[1:])
        self._write_array("offsets", offsets.astype("<i8", copy=False), arrays, digests)
        lo, hi = (int(labels.min()), int(labels.max())) if labels.size else (0, 0)
        self._write_array("labels", labels.astype(fmt.smallest_dtype(lo, hi, fmt.LABEL_DTYPES)), arrays, digests)
        end = self._f.tell()
        header = {"format_version": fmt.VERSION, "n_rows": self.n_rows, "n_ids": self.n_ids,
                  "max_length": max_len, "arrays": arrays, "sha256": digests}
        self._f.seek(0)
        self._f.write(fmt.header_bytes(header))
        self._f.truncate(end)
        self._stack.close()  # flush, fsync, rename into place
        return {"file": self.path.name, "n_rows": self.n_rows, "n_ids": self.n_ids, "sha256": digests}

    def abort(self, exc: BaseException) -> None:
        self._stack.__exit__(type(exc), exc, exc.__traceback__)  # the temp file is removed


def _check_chunk(ids, offsets, labels) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    ids, offsets, labels = np.asarray(ids), np.asarray(offsets), np.asarray(labels)
    for name, arr in (("ids", ids), ("offsets", offsets), ("labels", labels)):
        if arr.ndim != 1 or not (arr.size == 0 or np.issubdtype(arr.dtype, np.integer)):
            raise TypeError(f"{name} must be a 1-D integer array, got dtype {arr.dtype} and shape {arr.shape}")
    if offsets.size != labels.size + 1 or offsets[0] != 0 or offsets[-1] != ids.size:
        raise ValueError(f"offsets must be the {labels.size + 1} row boundaries of this chunk, from 0 to "
                         f"len(ids) = {ids.size}, got {offsets.size} entries from {offsets[:1].tolist()} to "
                         f"{offsets[-1:].tolist()}")
    lengths = np.diff(offsets)
    if (lengths < 0).any():
        raise ValueError("offsets must be non-decreasing")
    return ids, lengths, labels


class CorpusWriter:
    """Stream rows into a sharded, memory-mappable corpus at ``path`` (a manifest plus shard files).

    Args:
        path: The manifest to write; shards are ``<path>.<build>.<k>.shard`` beside it.
        vocab_size: Ids must be in ``0..vocab_size-1``; picks uint16 (<= 65,536) or uint32 ids.
        shard_rows: Rows per shard file.
        append: Keep the shards of an existing corpus at ``path`` and add new ones after them.

    Raises:
        ValueError: For an id outside the vocabulary, a negative label or inconsistent offsets (the
            corpus at ``path`` is left as it was).

    Example:
        >>> import tempfile; from textpipe.corpus.encoded import EncodedCorpus
        >>> path = Path(tempfile.mkdtemp()) / "c.corpus"
        >>> with CorpusWriter(path, vocab_size=10) as w:
        ...     w.append([5, 6, 7], [0, 2, 3], [1, 0])
        >>> EncodedCorpus.load(path)[0]
        (tensor([5, 6]), 1)
    """

    def __init__(self, path: str | os.PathLike, *, vocab_size: int, shard_rows: int = SHARD_ROWS,
                 append: bool = False) -> None:
        for name, value in (("vocab_size", vocab_size), ("shard_rows", shard_rows)):
            if isinstance(value, bool) or not isinstance(value, (int, np.integer)) or value < 1:
                raise ValueError(f"{name} must be an int >= 1, got {value!r}")
        self.path, self.vocab_size, self.shard_rows = Path(path), int(vocab_size), int(shard_rows)
        self.id_dtype = fmt.id_dtype_for(self.vocab_size)
        self._build = f"{HOST}-{os.getpid()}-{uuid.uuid4().hex[:8]}"
        self.shards: list[dict] = []
        if append and self.path.exists():
            self.shards = [{"file": f, "n_rows": r, "n_ids": i, "sha256": d}
                           for f, r, i, d in fmt.read_manifest(self.path)["shards"]]
        self._current: _Shard | None = None
        self._closed = False

    def _shard(self) -> _Shard:
        if self._current is None:
            name = f"{self.path.name}.{self._build}.{len(self.shards):05d}.shard"
            self._current = _Shard(self.path.with_name(name), self.id_dtype)
        return self._current

    def append(self, ids, offsets, labels) -> None:
        """Add the rows ``ids[offsets[i]:offsets[i + 1]]`` with ``labels[i]`` (one chunk, any size)."""
        if self._closed:
            raise ValueError(f"this CorpusWriter for {self.path} is closed")
        ids, lengths, labels = _check_chunk(ids, offsets, labels)
        if ids.size and (ids.min() < 0 or ids.max() >= self.vocab_size):
            bad = int(ids.min()) if ids.min() < 0 else int(ids.max())
            raise ValueError(f"id {bad} is outside the vocabulary 0..{self.vocab_size - 1}; pass the vocab_size "
                             f"the ids come from")
        if labels.size and labels.min() < 0:
            raise ValueError(f"labels must be >= 0, got {int(labels.min())}")
        starts = np.zeros(lengths.size + 1, np.int64)
        np.cumsum(lengths, out=starts[1:])
        row = 0
        while row < lengths.size:  # split the chunk where shards end
            shard = self._shard()
            take = min(lengths.size - row, self.shard_rows - shard.n_rows)
            shard.append(ids[starts[row]:starts[row + take]], lengths[row:row + take], labels[row:row + take])
            row += take
            if shard.n_rows == self.shard_rows:
                self.shards.append(shard.close())
                self._current = None

    def append_texts(self, texts, labels, vocab, *, num_workers: int = 1) -> None:
        """Encode ``texts`` with ``vocab.encode_flat`` and append them."""
        ids, offsets = vocab.encode_flat(texts, num_workers=num_workers)
        self.append(ids, offsets, labels)

    def close(self) -> Path:
        """Finish the last shard and commit the manifest; returns ``path``."""
        if self._closed:
            return self.path
        if self._current is not None or not self.shards:
            self.shards.append(self._shard().close())
            self._current = None
        manifest = {"format": fmt.MANIFEST, "format_version": fmt.MANIFEST_VERSION,
                    "n_rows": sum(s["n_rows"] for s in self.shards),
                    "n_ids": sum(s["n_ids"] for s in self.shards), "shards": self.shards}
        atomic_write_text(self.path, json.dumps(manifest, indent=1) + "\n")
        self._closed = True
        sweep_shards(self.path, keep={s["file"] for s in self.shards})
        return self.path

    def abort(self, exc: BaseException | None = None) -> None:
        """Drop the shard being written and the shards of this build; ``path`` keeps its old corpus."""
        if self._current is not None:
            self._current.abort(exc or RuntimeError("aborted"))
            self._current = None
        for s in self.shards:
            if self._build in s["file"]:
                with contextlib.suppress(OSError):
                    self.path.with_name(s["file"]).unlink()
        self._closed = True

    def __enter__(self) -> CorpusWriter:
        return self

    def __exit__(self, exc_type, exc, tb) -> None:
        if exc is None:
            self.close()
        else:
            self.abort(exc)


def sweep_shards(path: Path, *, keep: set[str]) -> None:
    """Remove shard files of ``path`` that its manifest no longer names, unless a live writer made them,
    and the temp files of dead writers' unfinished shards."""
    prefix = f"{path.name}."
    for tmp in path.parent.glob(f".{path.name}.*.shard.tmp-*"):
        sweep_stale_temps(path.with_name(tmp.name[1:].split(".shard.tmp-", 1)[0] + ".shard"))
    for p in path.parent.glob(f"{path.name}.*.shard"):
        if p.name in keep:
            continue
        parts = p.name[len(prefix):].split(".", 1)[0].split("-")  # the build id: host-pid-uuid
        if len(parts) != 3 or parts[0] != HOST or not parts[1].isdigit():
            continue  # another host's or not ours: never touched
        if int(parts[1]) == os.getpid() or not pid_alive(int(parts[1])):
            with contextlib.suppress(OSError):
                p.unlink()


def write_shard(path: str | os.PathLike, rows, *, id_dtype: np.dtype) -> dict:
    """Write one shard file from ``rows``, an iterable of ``(ids, lengths, labels)`` chunks."""
    shard = _Shard(Path(path), np.dtype(id_dtype))
    try:
        for ids, lengths, labels in rows:
            shard.append(ids, lengths, labels)
    except BaseException as err:
        shard.abort(err)
        raise
    return shard.close()
