"""Read word vectors in the GloVe / word2vec / fastText text format, streaming, into one float32 array.

Each line is ``word v1 v2 ... vD``, split on single spaces as torchtext did (so a non-breaking space stays
inside a word); an optional first line ``count dim`` (word2vec/fastText ``.vec``) is a header. Plain
files, ``.gz`` and ``.zip`` (one member) are read in blocks of lines: the numbers of a block are parsed by
one ``np.loadtxt`` call (strict, like ``float()``) into float64 and cast to float32 (the rounding
torchtext's ``float()`` + float32 tensor gave), and rows go into preallocated blocks, so peak memory is the final array plus one block, never a
Python float per number. Any malformed line is an error naming the file and line.

Run the tests: python3 -m pytest -q tests/test_vectors.py
"""
from __future__ import annotations

import gzip
import os
import warnings
import zipfile
from pathlib import Path

import numpy as np

__all__ = ["VectorsFormatError", "read_vectors_text"]

_READ_HINT = 4 << 20  # bytes of lines per parsing block
_BLOCK_BYTES = 32 << 20  # float32 rows per storage block when the row count is not known up front
_ON_BAD_LINES = ("raise", "skip")


class VectorsFormatError(ValueError, RuntimeError):
    """A malformed vectors file (``file:line: what``). Also a ``RuntimeError``, as torchtext raised."""


def _open(path: Path, member: str | None):
    """A binary stream of the vectors text and its display name (``archive.zip:member``)."""
    name = path.name.lower()
    if name.endswith((".tar.gz", ".tgz", ".tar")):
        raise VectorsFormatError(f"{path}: tar archives are not read directly; extract the vectors file "
                                 f"(tar -xf {path.name}) and pass its path")
    if name.endswith(".gz"):
        return gzip.open(path, "rb"), str(path)
    if name.endswith(".zip"):
        try:
            zf = zipfile.ZipFile(path)
        except zipfile.BadZipFile as e:
            raise VectorsFormatError(f"{path}: not a readable zip archive ({e}); is it truncated or corrupt? "
                                     f"Download or copy it again") from e
        files = [i.filename for i in zf.infolist() if not i.is_dir()]
        if member is None:
            stem = path.name[:-4]
            matches = [f for f in files if Path(f).name == stem] if len(files) != 1 else files
            if len(matches) != 1:
                zf.close()
                raise VectorsFormatError(f"{path}: cannot tell which member holds the vectors: it has {files}; "
                                         f"pass member='...' (e.g. member={files[0]!r})" if files else
                                         f"{path}: the zip archive is empty")
            member = matches[0]
        elif member not in files:
            zf.close()
            raise VectorsFormatError(f"{path}: no member {member!r}; it has {files}")
        stream = zf.open(member)
        stream._textpipe_zip = zf  # keep the archive open as long as the member stream
        return stream, f"{path}:{member}"
    return open(path, "rb", buffering=1 << 20), str(path)


class _Rows:
    """float32 rows appended in blocks; ``finish()`` gives one contiguous ``(n, dim)`` array."""

    def __init__(self, dim: int, capacity: int | None) -> None:
        self.dim, self.n = dim, 0
        self.block_rows = max(1024, _BLOCK_BYTES // (4 * dim))
        self.blocks = [np.empty((capacity or self.block_rows, dim), dtype=np.float32)]
        self.used = 0  # rows filled in the last block

    def add(self, values: np.ndarray) -> None:  # values: (k, dim) float64
        while len(values):
            block = self.blocks[-1]
            if self.used == len(block):
                self.blocks.append(np.empty((self.block_rows, self.dim), dtype=np.float32))
                block, self.used = self.blocks[-1], 0
            k = min(len(values), len(block) - self.used)
            with np.errstate(over="ignore"):  # beyond float32's range -> inf, as torch's cast gave torchtext
                block[self.used:self.used + k] = values[:k]  # float64 -> float32, round to nearest
            self.used += k
            self.n += k
            values = values[k:]

    def finish(self) -> np.ndarray:
        if len(self.blocks) == 1:
            out = self.blocks.pop()
            if self.used < len(out):
                out.resize((self.used, self.dim), refcheck=False)  # shrink in place (no other references)
            return out
        # subtle: np.empty pages become resident only when written, and each block is freed once copied,
        # so this costs the final array plus one block, not twice the array.
        out = np.empty((self.n, self.dim), dtype=np.float32)
        start = 0
        self.blocks.reverse()
        while self.blocks:
            block = self.blocks.pop()
            k = len(block) if self.blocks else self.used
            out[start:start + k] = block[:k]
            start += k
            del block
        return out


def _max_rows(path: Path, dim: int) -> int:
    """An upper bound on the rows a file can hold (a value takes >= 2 bytes), so a wrong header cannot make
    the first block huge; compressed files are allowed a generous ratio. More rows still fit: blocks grow."""
    plain = not path.name.lower().endswith((".gz", ".zip"))
    return path.stat().st_size * (1 if plain else 50) // (2 * dim) + 1


def _header(first: bytes) -> tuple[int, int] | None:
    parts = first.split()
    if len(parts) == 2 and all(p.isdigit() for p in parts):
        return int(parts[0]), int(parts[1])
    return None


def read_vectors_text(path: str | os.PathLike, *, max_vectors: int | None = None, on_bad_lines: str = "raise",
                      member: str | None = None) -> tuple[list[str], np.ndarray]:
    """Read a vectors text file into ``(itos, vectors)``: a word list and a ``(len(itos), dim)`` float32 array.

    Args:
        path: ``.txt``/``.vec`` (any name), ``.gz``, or ``.zip`` (its single member, or the member named like
            the archive without ``.zip``, or ``member``).
        max_vectors: Keep only the first ``max_vectors`` rows.
        on_bad_lines: ``"raise"`` (default): a malformed line raises; ``"skip"``: skip it, warn once with the
            count and the first line numbers. Only lines whose word is not UTF-8 or whose numbers do not
            parse can be skipped; a wrong number of values always raises.

    Raises:
        VectorsFormatError: ``file:line: ...`` for a line with another number of values than the first (or
            the header's), a value that is not a number, a word that is not UTF-8; or an empty file.
    """
    if on_bad_lines not in _ON_BAD_LINES:
        raise ValueError(f"on_bad_lines must be one of {_ON_BAD_LINES}, got {on_bad_lines!r}")
    if max_vectors is not None and (isinstance(max_vectors, bool) or not isinstance(max_vectors, int)
                                    or max_vectors < 1):
        raise ValueError(f"max_vectors must be an int >= 1 or None, got {max_vectors!r}")
    path = Path(path)
    stream, where = _open(path, member)
    itos: list[str] = []
    rows: _Rows | None = None
    dim = capacity = None
    skipped: list[tuple[int, str]] = []
    lineno = 0
    limit = max_vectors or float("inf")
    try:
        with stream:
            while len(itos) < limit:
                lines = stream.readlines(_READ_HINT)
                if not lines:
                    break
                words, rests, linenos = [], [], []
                for raw in lines:
                    lineno += 1
                    line = raw.rstrip()
                    if lineno == 1 and line.startswith(b"\xef\xbb\xbf"):
                        line = line[3:]  # a UTF-8 byte order mark is not part of the first word
                    if not line:
                        continue  # a blank line holds no vector
                    if lineno == 1 and (header := _header(line)) is not None:
                        capacity, dim = header
                        continue
                    word, _, rest = line.partition(b" ")
                    n_values = rest.count(b" ") + 1 if rest else 0
                    if dim is None:
                        if n_values < 1:
                            raise VectorsFormatError(f"{where}:{lineno}: expected 'word v1 v2 ...', got only "
                                                     f"{word[:40]!r}")
                        dim = n_values
                    if n_values != dim:
                        raise VectorsFormatError(
                            f"{where}:{lineno}: the vector for {word[:40]!r} has {n_values} values, but "
                            f"{'the header says' if capacity is not None else 'the first vector has'} {dim}; "
                            f"every line must be 'word' and {dim} numbers separated by single spaces")
                    try:
                        words.append(word.decode("utf-8"))
                    except UnicodeDecodeError as e:
                        _bad(skipped, on_bad_lines, where, lineno, f"the word {word[:40]!r} is not UTF-8 ({e.reason})")
                        continue
                    rests.append(rest)
                    linenos.append(lineno)
                if not words:
                    continue
                take = int(min(len(words), limit - len(itos)))
                values = _parse(rests[:take], linenos[:take], dim, where, on_bad_lines, skipped, words)
                if rows is None:
                    cap = None if capacity is None else min(capacity, max_vectors or capacity, _max_rows(path, dim))
                    rows = _Rows(dim, cap)
                rows.add(values)
                itos.extend(words[:len(values)])
    except (OSError, EOFError, zipfile.BadZipFile) as e:
        if isinstance(e, FileNotFoundError):
            raise
        raise VectorsFormatError(f"{where}: cannot read the file ({type(e).__name__}: {e}); is it truncated "
                                 f"or corrupt? Download or copy it again") from e
    if skipped:
        shown = ", ".join(str(n) for n, _ in skipped[:5]) + (", ..." if len(skipped) > 5 else "")
        warnings.warn(f"{where}: skipped {len(skipped)} malformed line(s) at {shown}; first: line "
                      f"{skipped[0][0]}: {skipped[0][1]}", UserWarning, stacklevel=3)
    if rows is None:
        raise VectorsFormatError(f"{where}: no vectors found (an empty file, or only a header); expected lines "
                                 f"'word v1 v2 ...'")
    return itos, rows.finish()


def _bad(skipped: list, on_bad_lines: str, where: str, lineno: int, what: str) -> None:
    if on_bad_lines == "raise":
        raise VectorsFormatError(f"{where}:{lineno}: {what}; fix the file or pass on_bad_lines='skip'")
    skipped.append((lineno, what))


def _parse(rests: list[bytes], linenos: list[int], dim: int, where: str, on_bad_lines: str,
           skipped: list, words: list[str]) -> np.ndarray:
    """Numbers of the lines as a ``(k, dim)`` float64 array. Drops skipped lines from ``words`` in place.

    ``np.loadtxt`` (numpy's C parser) reads each field strictly, as Python's ``float()`` does: an empty
    field (two spaces in a row) or a token like ``1-2`` is an error, never a silently shifted row.
    """
    try:
        return np.loadtxt(rests, dtype=np.float64, delimiter=" ", comments=None, encoding="latin-1", ndmin=2)
    except ValueError:
        pass
    good, kept_words = [], []  # the slow path: find the bad line(s), one line at a time
    for rest, lineno, word in zip(rests, linenos, words):
        tokens = rest.split(b" ")
        bad_token = next((x for x in tokens if not _is_float(x)), None)
        if bad_token is None:
            good.append([float(x) for x in tokens])
            kept_words.append(word)
        else:
            what = ("an empty value (two spaces in a row)" if bad_token == b"" else
                    f"{bad_token[:40].decode('latin-1')!r} is not a number")
            _bad(skipped, on_bad_lines, where, lineno, f"{what} in the vector for {word[:40]!r}")
    words[:] = kept_words + words[len(rests):]
    return np.array(good, dtype=np.float64).reshape(len(good), dim)


def _is_float(token: bytes) -> bool:
    try:
        float(token)
    except ValueError:
        return False
    return True
