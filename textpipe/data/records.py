"""Every record of a table, in file order, with all its columns: what `predict --data` classifies and copies to
its output. Unlike `table.iter_table` (the training reader), nothing is dropped: a blank line is a record with
empty values, so the k-th output belongs to the k-th input. Streams: one batch of records in memory at a time.

    >>> _ = Path("q.tsv").write_text('DESC\\tHow do "fish" swim ?\\n\\nHUM\\tWho won ?\\n')
    >>> spec = inspect_table("q.tsv", text_columns=[1], need_label=False)
    >>> [[record_text(r, spec) for r in batch] for batch in iter_records(spec, batch_rows=2)]
    [['How do "fish" swim ?', ''], ['Who won ?']]
"""
from __future__ import annotations

import csv
import io
import json
import sys
from collections.abc import Iterator
from pathlib import Path

from textpipe.data._arrow import split_fasttext_line
from textpipe.data.formats import DELIMITED, load_dataset_split, open_binary
from textpipe.data.table import TableSpec, inspect_table

__all__ = ["iter_records", "record_text"]


def record_text(record: dict, spec: TableSpec) -> str:
    """The record's text: its text columns joined with one space (missing or null values: empty)."""
    parts = [record.get(c) for c in spec.text_columns]
    parts = ["" if p is None else p if isinstance(p, str) else str(p) for p in parts]
    return parts[0] if len(parts) == 1 else " ".join(p for p in parts if p)


def iter_records(spec: TableSpec, *, batch_rows: int = 512, source=None, split: str | None = None
                 ) -> Iterator[list[dict]]:
    """Lists of at most `batch_rows` records (`{column: value}`), one per record of the table `spec` describes.

    CSV/TSV: every line (or quoted multi-line record) after the header, a blank line too (its values empty);
    JSON lines: a blank line is `{}`; fastText: `{"label": ..., "text": ...}` (a line without a label: None);
    Parquet and `datasets`: every row. `source`: the datasets object, when `spec` describes one.

    Raises:
        ValueError: a JSON line that is not an object (naming the line), unreadable bytes.
    """
    if spec.format in DELIMITED:
        records = _delimited(spec)
    elif spec.format == "jsonl":
        records = _jsonl(Path(spec.source))
    elif spec.format == "fasttext":
        records = _fasttext(Path(spec.source))
    elif spec.format == "parquet":
        import pyarrow.parquet as pq

        records = (r for b in pq.ParquetFile(spec.source).iter_batches(batch_size=batch_rows) for r in b.to_pylist())
    else:
        ds = load_dataset_split(spec.source if source is None else source, split)
        records = (r for b in ds.iter(batch_size=batch_rows) for r in _columns_to_rows(b))
    batch: list[dict] = []
    for record in records:
        batch.append(record)
        if len(batch) >= batch_rows:
            yield batch
            batch = []
    if batch:
        yield batch


def _columns_to_rows(columns: dict) -> list[dict]:
    names = list(columns)
    return [dict(zip(names, values)) for values in zip(*columns.values())]


def _text_lines(path: Path):
    return io.TextIOWrapper(open_binary(path), encoding="utf-8-sig", newline="")


def _delimited(spec: TableSpec) -> Iterator[dict]:
    quoting = csv.QUOTE_NONE if spec.quoting == "none" else csv.QUOTE_MINIMAL
    columns = spec.columns
    # long texts are fine: the csv module's 128 KiB field limit is raised while this file is read, then restored
    # (it is the whole process's setting)
    limit = csv.field_size_limit(min(sys.maxsize, 2**31 - 1))
    try:
        with _text_lines(Path(spec.source)) as f:
            reader = csv.reader(f, delimiter="," if spec.format == "csv" else "\t", quoting=quoting)
            try:
                if spec.header:
                    next((r for r in reader if r), None)  # the header row (the first one that is not blank)
                for fields in reader:
                    yield {c: fields[i] if i < len(fields) else "" for i, c in enumerate(columns)}
            except csv.Error as e:
                raise ValueError(f"{spec.source}, line {reader.line_num}: {e}") from None
    finally:
        csv.field_size_limit(limit)


def _jsonl(path: Path) -> Iterator[dict]:
    with _text_lines(path) as f:
        for n, line in enumerate(f, 1):
            if not line.strip():
                yield {}
                continue
            try:
                record = json.loads(line)
            except ValueError as e:
                raise ValueError(f"{path}, line {n}: not JSON ({e})") from None
            if not isinstance(record, dict):
                raise ValueError(f"{path}, line {n}: expected a JSON object, got a {type(record).__name__}")
            yield record


def _fasttext(path: Path) -> Iterator[dict]:
    with io.TextIOWrapper(open_binary(path), encoding="utf-8-sig", newline="\n") as f:
        for line in f:
            labels, text = split_fasttext_line(line)
            yield {"label": " ".join(labels) or None, "text": text}
