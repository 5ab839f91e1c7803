"""The one reader for labelled text tables: CSV/TSV (.gz), JSON lines (.gz), Parquet, `datasets` dirs and objects.

Streaming-first: pyarrow's CSV/JSON readers and Parquet `iter_batches` read a block at a time, so
`iter_table` holds one chunk of `batch_rows` rows in memory, whatever the file's size:

    >>> _ = Path("t.csv").write_text("label,text\\npos,great film\\nneg,dull\\n")
    >>> read_table("t.csv")
    (['pos', 'neg'], ['great film', 'dull'])
    >>> _ = Path("t.tsv").write_text("3\\tFed Up\\tRates rise.\\n")     # headerless 3 columns: AG_NEWS layout
    >>> read_table("t.tsv")
    ([3], ['Fed Up Rates rise.'])
"""
from __future__ import annotations

import contextlib
import csv
import functools
import gzip
import inspect
import io
import os
import warnings
import zlib
from collections.abc import Iterator, Sequence
from dataclasses import dataclass
from pathlib import Path

from textpipe.data._rows import checked_chunks
from textpipe.data.formats import DELIMITED, DESCRIPTION, format_of, load_dataset_split, open_binary
from textpipe.data.labels import canonical_label

__all__ = ["TableSpec", "inspect_table", "iter_table", "read_table", "scan_table", "table_format"]

_ON_BAD_ROWS = ("raise", "skip")
Column = str | int


def table_format(source) -> str:
    """'csv', 'tsv', 'jsonl', 'parquet', 'datasets' (a save_to_disk directory or a Dataset/DatasetDict)."""
    if not isinstance(source, (str, os.PathLike)):
        if type(source).__module__.startswith("datasets"):
            return "datasets"
        raise TypeError(f"expected a file path, a directory or a datasets.Dataset/DatasetDict, got "
                        f"{type(source).__name__}")
    path = Path(source)
    if path.is_dir():
        if (path / "dataset_info.json").is_file() or (path / "dataset_dict.json").is_file():
            return "datasets"
        raise ValueError(f"{path} is a directory but not one written by datasets' save_to_disk (no "
                         f"dataset_info.json or dataset_dict.json); give a file: {DESCRIPTION}")
    fmt = format_of(path)
    if fmt is None:
        raise ValueError(f"{path}: unknown table format; expected a name ending in {DESCRIPTION}, or a datasets "
                         "save_to_disk directory")
    return fmt


@dataclass(frozen=True)
class TableSpec:
    """What `inspect_table` found: the format, the columns and which of them hold texts and the label."""

    source: str  # the path (or repr of the dataset)
    format: str  # see `table_format`
    columns: tuple[str, ...]  # names found (headerless CSV/TSV: "0", "1", ...)
    text_columns: tuple[str, ...]  # joined with one space, in this order
    label_column: str | None  # None: no labels (need_label=False and no label column)
    header: bool  # CSV/TSV: the first row holds the column names
    class_names: tuple[str, ...] | None = None  # a datasets ClassLabel's names (the labels are 0..C-1)

    def column_args(self) -> dict:
        """`text_columns`/`label_column` as `inspect_table` takes them (0-based indexes without a header)."""
        conv = (lambda c: c) if self.header else int
        return {"text_columns": [conv(c) for c in self.text_columns],
                "label_column": None if self.label_column is None else conv(self.label_column)}


def _first_csv_row(path: Path, delimiter: str) -> list[str]:
    with open_binary(path) as f:
        text = io.TextIOWrapper(f, encoding="utf-8-sig", errors="replace", newline="")
        return next(csv.reader(text, delimiter=delimiter), [])


def _name(source) -> str:
    return str(source) if isinstance(source, (str, os.PathLike)) else f"<{type(source).__name__}>"


@contextlib.contextmanager
def _naming(source):
    """Errors from the readers (gzip, zlib, pyarrow) that do not say which file: the file's name added."""
    try:
        yield
    except (ValueError, OSError, EOFError, zlib.error, KeyError) as e:
        name, text = _name(source), " ".join(str(e).strip("'\"").split())
        if isinstance(e, KeyError) and "exists 2 times" not in text:
            raise
        if name in text or (isinstance(e, OSError) and e.filename is not None):
            raise
        if isinstance(e, gzip.BadGzipFile):
            text = f"its name ends in .gz but it is not gzip data ({text}); rename it or compress it with gzip"
        elif "exists 2 times" in text or "duplicate" in text.lower():
            text = f"duplicate column names ({text}); give each column its own name"
        elif isinstance(e, (EOFError, zlib.error)) or type(e).__module__.startswith("pyarrow"):
            text = f"cannot read it ({text}); is it truncated or corrupt?"
        raise ValueError(f"{name}: {text}") from e


def _names_the_file(fn):
    """`fn(source, ...)` (a function or a generator function) whose errors name `source`; see `_naming`."""
    if inspect.isgeneratorfunction(fn):
        @functools.wraps(fn)
        def gen(source, *args, **kwargs):
            with _naming(source):
                yield from fn(source, *args, **kwargs)
        return gen

    @functools.wraps(fn)
    def call(source, *args, **kwargs):
        with _naming(source):
            return fn(source, *args, **kwargs)
    return call


def _show(names: Sequence[str], *, most: int = 12, width: int = 40) -> str:
    """The column names for a message: each cut to `width` characters, at most `most` of them."""
    shown = [n if len(n) <= width else n[:width] + "..." for n in names[:most]]
    return repr(shown)[:-1] + (f", ... ({len(names)} in all)]" if len(names) > most else "]")


def _resolve(names: Sequence[str], col: Column, what: str, source: str, *, by_index: bool) -> str:
    if isinstance(col, bool) or not isinstance(col, (str, int)):
        raise TypeError(f"{what} must be a column name or a 0-based index, got {col!r}")
    if isinstance(col, int):
        if not by_index:
            raise ValueError(f"{source}: {what} {col} is an index, but this file has named columns "
                             f"{_show(names)}; give the name")
        if not 0 <= col < len(names):
            raise ValueError(f"{source}: {what} {col} is out of range: the file has {len(names)} columns "
                             f"(0..{len(names) - 1})")
        return names[col]
    if col not in names:
        raise ValueError(f"{source}: no column {col!r} ({what}); the columns found are {_show(names)}")
    return col


@_names_the_file
def inspect_table(source, *, text_columns: Sequence[Column] | Column | None = None,
                  label_column: Column | None = None, split: str | None = None, need_label: bool = True) -> TableSpec:
    """Find the format and resolve the columns, reading only the schema or the first row (fast).

    Columns: by name; headerless CSV/TSV by 0-based index. Defaults: `text` and `label` when the file has
    them, else for a headerless 3-column CSV/TSV the AG_NEWS layout (label 0, texts 1 and 2).

    With `need_label=False` (texts to classify) a table without the (default) label column is fine: its
    `label_column` is None.

    Raises:
        FileNotFoundError: no such file.
        ValueError: unknown format; a column that does not exist (the message lists the columns found).
    """
    fmt, name = table_format(source), _name(source)
    if isinstance(source, (str, os.PathLike)) and not Path(source).exists():
        raise FileNotFoundError(f"{source}: no such file")
    if isinstance(text_columns, (str, int)):
        text_columns = [text_columns]
    asked = [*(text_columns or []), *([] if label_column is None else [label_column])]
    if text_columns is not None and not text_columns:
        raise ValueError("text_columns is empty: give at least one column")
    class_names = None
    header = True
    if fmt in DELIMITED:
        first = _first_csv_row(Path(source), "," if fmt == "csv" else "\t")
        if not first:
            raise ValueError(f"{name} is empty: expected a header row or the first record")
        if any(isinstance(c, str) for c in asked) and any(isinstance(c, int) for c in asked):
            raise ValueError("give the columns either all by name (files with a header row) or all by 0-based "
                             f"index (files without one), got {asked}")
        header = isinstance(asked[0], str) if asked else bool({"text", "label"} & set(first))
        if not header:
            if not asked and (len(first) != 3 or not isinstance(_try_label(first[0]), int)):
                raise ValueError(f"{name}: cannot tell which columns hold the text and the label: no 'text'/"
                                 f"'label' header, and the first row {_show(first, most=6)} is not the AG_NEWS layout "
                                 "(int label, title, description); give --text-column and --label-column "
                                 "(names for a header row, 0-based indexes for a file without one)")
            if {"text", "label"} & set(first):
                raise ValueError(f"{name}: columns given by index, but the first row {_show(first, most=6)} looks like a "
                                 "header; give the columns by name")
            ag_news = len(first) == 3 and label_column in (None, 0) and text_columns in (None, [1, 2])
            if (text_columns is None or label_column is None) and not ag_news:
                raise ValueError(f"{name}: without a header row, give both --text-column and --label-column as "
                                 f"0-based indexes (the first row has {len(first)} fields)")
            text_columns = [1, 2] if text_columns is None else text_columns
            label_column = 0 if label_column is None else label_column
        columns = tuple(first) if header else tuple(str(i) for i in range(len(first)))
    elif fmt == "jsonl":
        columns = _jsonl_columns(Path(source))
    elif fmt == "parquet":
        import pyarrow.parquet as pq

        columns = tuple(pq.ParquetFile(source).schema_arrow.names)
    else:
        ds = load_dataset_split(source, split)
        columns = tuple(ds.column_names)
    text_columns = ["text"] if text_columns is None else list(text_columns)
    label_column = "label" if label_column is None else label_column
    by_index = not header
    try:
        texts = tuple(_resolve(columns, c, "text column", name, by_index=by_index) for c in text_columns)
        if not need_label and label_column == "label" and "label" not in columns:
            label = None
        else:
            label = _resolve(columns, label_column, "label column", name, by_index=by_index)
    except ValueError as e:
        if fmt in DELIMITED and asked:  # a headerless file read with names: say why its row became a header
            raise ValueError(f"{e}. The first row was read as the header because the columns were given by name; "
                             "for a file without a header row give 0-based indexes (e.g. --text-column 1 "
                             "--label-column 0)") from None
        raise
    if label is not None and label in texts:
        raise ValueError(f"{name}: column {label!r} is both a text column and the label column")
    if fmt == "datasets" and label is not None:
        feature = ds.features[label]
        class_names = tuple(feature.names) if hasattr(feature, "names") else None  # a ClassLabel
    return TableSpec(name, fmt, columns, texts, label, header, class_names)


def _try_label(value: str):
    try:
        return canonical_label(value)
    except ValueError:
        return None


def _jsonl_columns(path: Path) -> tuple[str, ...]:
    import json

    with open_binary(path) as f:
        for raw in f:
            if raw.strip():
                try:
                    row = json.loads(raw)
                except ValueError as e:
                    raise ValueError(f"{path}: the first line is not JSON ({e}); expected JSON lines: one "
                                     "object per line") from e
                if not isinstance(row, dict):
                    raise ValueError(f"{path}: expected JSON lines with one object per line, the first line "
                                     f"holds a {type(row).__name__}")
                return tuple(row)
    raise ValueError(f"{path} is empty: expected JSON lines like {{\"text\": \"...\", \"label\": \"...\"}}")


@_names_the_file
def iter_table(source, *, text_columns: Sequence[Column] | Column | None = None, label_column: Column | None = None,
               batch_rows: int = 8192, on_bad_rows: str = "raise", split: str | None = None,
               need_label: bool = True) -> Iterator[tuple[list, list[str]]]:
    """Yield `(raw_labels, texts)` chunks of at most `batch_rows` rows, in file order, in bounded memory.

    Args:
        source: a .csv/.tsv/.jsonl/.json file (optionally .gz), a .parquet file, a `save_to_disk` directory,
            or a `datasets.Dataset` / `DatasetDict` (with `split`).
        text_columns: the column(s) joined (with one space, in order) into the text; see `inspect_table`.
        label_column: the label column. Labels come out as ints or strings (an int-valued string is an int).
        batch_rows: rows per chunk.
        on_bad_rows: "raise" (default) or "skip" rows with a missing text or label or, in CSV/TSV, the wrong
            number of fields: one warning gives the count and the first row numbers.
        split: the split of a DatasetDict.
        need_label: False: a table without a label column is read too, with labels None.

    Raises:
        ValueError: unreadable or malformed data (the message names the file and row), bad arguments.
    """
    if on_bad_rows not in _ON_BAD_ROWS:
        raise ValueError(f"on_bad_rows must be one of {_ON_BAD_ROWS}, got {on_bad_rows!r}")
    if isinstance(batch_rows, bool) or not isinstance(batch_rows, int) or batch_rows < 1:
        raise ValueError(f"batch_rows must be an int >= 1, got {batch_rows!r}")
    spec = inspect_table(source, text_columns=text_columns, label_column=label_column, split=split,
                         need_label=need_label)
    bad: list[tuple[int, str]] = []
    counted = [0]  # rows of the table read (kept or skipped)
    for labels, texts in checked_chunks(source, spec, batch_rows=batch_rows, split=split, bad=bad,
                                        on_bad_rows=on_bad_rows, counted=counted):
        if labels:
            yield labels, texts
    _finish(spec, bad, counted[0])


@_names_the_file
def scan_table(source, *, text_columns: Sequence[Column] | Column | None = None, label_column: Column | None = None,
               on_bad_rows: str = "raise", split: str | None = None) -> tuple[int, list]:
    """`(rows, distinct labels in first-seen order)` of what `iter_table` yields, without building the texts.

    The same checks, errors and skip warning as `iter_table` (whose arguments these are); labels canonical.
    """
    if on_bad_rows not in _ON_BAD_ROWS:
        raise ValueError(f"on_bad_rows must be one of {_ON_BAD_ROWS}, got {on_bad_rows!r}")
    spec = inspect_table(source, text_columns=text_columns, label_column=label_column, split=split)
    bad: list[tuple[int, str]] = []
    counted, rows, seen = [0], 0, {}
    for distinct, n in checked_chunks(source, spec, batch_rows=1 << 16, split=split, bad=bad,
                                      on_bad_rows=on_bad_rows, counted=counted, texts=False):
        rows += n
        seen.update(dict.fromkeys(distinct))
    _finish(spec, bad, counted[0])
    return rows, list(seen)


def _finish(spec: TableSpec, bad: list, row: int) -> None:
    """The skip warning, and the error for a table without rows."""
    if bad:
        numbered = [str(r) for r, _ in bad if r is not None]
        shown = f" (rows {', '.join(numbered[:5])}{', ...' if len(numbered) > 5 else ''})" if numbered else ""
        first = f"row {bad[0][0]}: " if bad[0][0] is not None else ""
        warnings.warn(f"{spec.source}: skipped {len(bad)} malformed row(s){shown}; first: {first}{bad[0][1]}",
                      UserWarning, stacklevel=3)
    if row == 0 or row == len(bad):
        raise ValueError(f"{spec.source}: no rows" + (f" left after skipping {len(bad)} malformed" if bad else ""))


def read_table(source, **kwargs) -> tuple[list, list[str]]:
    """The whole table as `(raw_labels, texts)`; the same arguments as `iter_table`."""
    labels, texts = [], []
    for chunk_labels, chunk_texts in iter_table(source, **kwargs):
        labels += chunk_labels
        texts += chunk_texts
    return labels, texts
