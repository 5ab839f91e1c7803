"""Rows of results written as they come, to a .csv or a .jsonl file (the name says which): `predict --output`,
`evaluate --errors`. The file is written atomically (a temp file renamed at the end: a failed run leaves no
half file), one row at a time, so memory stays flat whatever the number of rows.

    >>> import tempfile, pathlib
    >>> path = pathlib.Path(tempfile.mkdtemp()) / "out.csv"
    >>> with RowWriter(path) as w:
    ...     w.write({"text": "hi, you", "predicted": "ham", "top_k": ["ham", "spam"]})
    >>> print(path.read_text(), end="")
    text,predicted,top_k
    "hi, you",ham,"[""ham"", ""spam""]"
"""
from __future__ import annotations

import csv
import json
import os
from pathlib import Path

from textpipe.core.fileio import atomic_write

__all__ = ["RowWriter", "row_format", "unique_keys"]

ROW_FORMATS = {".csv": "csv", ".jsonl": "jsonl", ".json": "jsonl"}


def row_format(path: str | os.PathLike) -> str:
    """'csv' or 'jsonl' by the file's extension; a ValueError for any other."""
    fmt = ROW_FORMATS.get(Path(path).suffix.lower())
    if fmt is None:
        raise ValueError(f"{path}: expected a file name ending in .csv or .jsonl (the format of the rows written)")
    return fmt


def unique_keys(names: list[str], taken) -> dict[str, str]:
    """`{name: key}` for names that must not clash with the `taken` keys (a table's own columns): the name
    itself when free, else `name_1`, `name_2`, ...

        >>> unique_keys(["predicted", "probability"], {"text", "predicted"})
        {'predicted': 'predicted_1', 'probability': 'probability'}
    """
    taken, out = set(taken), {}
    for name in names:
        key, i = name, 0
        while key in taken:
            i += 1
            key = f"{name}_{i}"
        taken.add(key)
        out[name] = key
    return out


class RowWriter:
    """A context manager writing dict rows to a .csv (the first row's keys are the header; lists and dicts as
    JSON) or a .jsonl file (one JSON object a line)."""

    def __init__(self, path: str | os.PathLike, *, columns: list[str] | None = None) -> None:
        """`columns`: the CSV header (default: the first row's keys), written even when no row comes."""
        self.path, self.format, self.columns = Path(path), row_format(path), columns
        self.rows = 0
        self._ctx = self._file = self._csv = None

    def __enter__(self) -> RowWriter:
        self._ctx = atomic_write(self.path, mode="w", fsync=False)
        self._file = self._ctx.__enter__()
        if self.columns is not None and self.format == "csv":
            self._start(self.columns)
        return self

    def _start(self, columns: list[str]) -> None:
        self._csv = csv.DictWriter(self._file, fieldnames=list(columns), extrasaction="ignore", lineterminator="\n")
        self._csv.writeheader()

    def write(self, row: dict) -> None:
        if self.format == "jsonl":
            self._file.write(json.dumps(row, ensure_ascii=False) + "\n")
        else:
            if self._csv is None:
                self._start(list(row))
            self._csv.writerow({k: json.dumps(v, ensure_ascii=False) if isinstance(v, (list, dict)) else v
                                for k, v in row.items()})
        self.rows += 1

    def flush(self) -> None:
        self._file.flush()

    def __exit__(self, *exc) -> bool | None:
        return self._ctx.__exit__(*exc)
