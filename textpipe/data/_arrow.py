"""Record batches of a table, per format, through pyarrow (and `datasets`): the I/O half of `table.iter_table`.

Every reader streams: pyarrow's CSV/JSON readers parse one block (1 MiB, larger for longer rows) at a
time, Parquet and `datasets` read `batch_rows` rows at a time. pyarrow errors become ValueErrors that name the file.
"""
from __future__ import annotations

import csv
import io
from collections.abc import Callable, Iterator
from pathlib import Path

import pyarrow as pa
import pyarrow.compute as pc_compute

from textpipe.data.formats import DELIMITED, FASTTEXT_LABEL

# pyarrow's parse block. subtle: the streaming CSV reader reads about 30 blocks ahead of a slower consumer
# (measured: 16 MiB blocks held 240-480 MiB, 1 MiB blocks 36 MiB), so blocks start small; a row longer than
# the block makes the read start again with a 4x larger block (up to MAX_BLOCK_BYTES), see `_growing_blocks`.
BLOCK_BYTES = 1 << 20
MAX_BLOCK_BYTES = 1 << 30


def arrow_batches(source, spec, *, batch_rows: int, split: str | None, bad: list, skip: bool
                  ) -> Iterator[pa.RecordBatch | pa.Table]:
    """Batches (of at most `batch_rows` rows) holding the spec's text and label columns.

    `bad` collects `(row, reason)` of CSV rows with the wrong number of fields when `skip`.
    """
    needed = [*spec.text_columns, *([spec.label_column] if spec.label_column is not None else [])]
    try:
        if spec.format in DELIMITED:
            batches = _csv_batches(Path(source), spec, bad=bad, skip=skip)
        elif spec.format == "jsonl":
            batches = _jsonl_batches(Path(source))
        elif spec.format == "fasttext":
            batches = _fasttext_batches(Path(source), batch_rows=batch_rows, bad=bad, skip=skip)
        elif spec.format == "parquet":
            import pyarrow.parquet as pq

            batches = pq.ParquetFile(source).iter_batches(batch_size=batch_rows, columns=needed)
        else:
            from textpipe.data.formats import load_dataset_split

            ds = load_dataset_split(source, split).select_columns(needed)
            batches = ds.with_format("arrow").iter(batch_size=batch_rows)
        for batch in batches:
            for start in range(0, batch.num_rows, batch_rows):
                yield batch.slice(start, batch_rows).select(needed)
    except (pa.ArrowInvalid, pa.ArrowTypeError, OSError, EOFError) as e:
        if isinstance(e, (FileNotFoundError, PermissionError, IsADirectoryError)):
            raise
        raise ValueError(f"{spec.source}: {_explain(str(e))}") from e


def _explain(message: str) -> str:
    message = " ".join(message.split())
    if _is_long_row(message):
        return f"a row is longer than {MAX_BLOCK_BYTES >> 20} MiB, the reader's largest block ({message})"
    if "changed from" in message:
        return f"a column holds values of two types, e.g. numbers and strings; make each column one type ({message})"
    if "invalid UTF8" in message or "UTF8" in message:
        return f"the file is not valid UTF-8 ({message}); re-save it as UTF-8"
    return message


def _is_long_row(message: str) -> bool:
    return "straddling" in message or "larger than block size" in message


def _growing_blocks(read: Callable[[int], Iterator[pa.RecordBatch]]) -> Iterator[pa.RecordBatch]:
    """`read(block_size)`'s batches; when a row is longer than the block, read again with a 4x larger block.

    The read is deterministic, so the rows already yielded are skipped on the new pass: no row is lost or
    repeated. Costs nothing for files whose rows fit the first block (nearly every file).
    """
    block, done = BLOCK_BYTES, 0
    while True:
        to_skip = done
        try:
            for batch in read(block):
                if to_skip >= batch.num_rows:
                    to_skip -= batch.num_rows
                    continue
                batch, to_skip = batch.slice(to_skip), 0
                done += batch.num_rows
                yield batch
            return
        except pa.ArrowInvalid as e:
            if not _is_long_row(str(e)) or block >= MAX_BLOCK_BYTES:
                raise
            block *= 4


def _csv_batches(path: Path, spec, *, bad: list, skip: bool) -> Iterator[pa.RecordBatch]:
    import pyarrow.csv as pc

    delimiter = "," if spec.format == "csv" else "\t"
    reported = [0]  # bad rows already passed on (a re-read with a larger block finds the same ones first)

    def read(block: int) -> Iterator[pa.RecordBatch]:
        bad_rows: list[str] = []
        seen = [0]

        def on_invalid(row) -> str:  # wrong number of fields
            seen[0] += 1
            if seen[0] > reported[0]:
                bad_rows.append(f"a row with {row.actual_columns} fields, expected {row.expected_columns}: "
                                f"{row.text[:80]!r}")
            return "skip"

        def pass_on_bad_rows() -> None:
            if bad_rows:
                if not skip:
                    raise ValueError(f"{path}: {bad_rows[0]}. Fix the file, or pass on_bad_rows='skip' "
                                     "to skip malformed rows with a warning")
                bad.extend((None, r) for r in bad_rows)
                reported[0] += len(bad_rows)
                bad_rows.clear()

        opts = pc.ReadOptions(block_size=block, column_names=None if spec.header else list(spec.columns))
        # TSV (quoting "none"): a quote is data, and a line is a row (`ham<TAB>"Wen u miss someone ..." gdeve`)
        quoted = spec.quoting != "none"
        parse = pc.ParseOptions(delimiter=delimiter, quote_char='"' if quoted else False, newlines_in_values=quoted,
                                invalid_row_handler=on_invalid)
        # every column as a string: labels are typed by canonical_label, and no value is converted behind our back
        convert = pc.ConvertOptions(column_types={c: pa.string() for c in spec.columns}, strings_can_be_null=False)
        checked = False
        with pa.input_stream(str(path), compression="detect") as stream:
            for batch in pc.open_csv(stream, read_options=opts, parse_options=parse, convert_options=convert):
                pass_on_bad_rows()
                # subtle: pyarrow accepts an unclosed quote, swallowing the rows up to the next quote (or the end
                # of the file) into one value; that value then holds a line break, so check such files strictly
                if quoted and not checked and any(pc_compute.any(pc_compute.match_substring(col, "\n")).as_py()
                                       for col in batch.columns):
                    _check_quotes(path, delimiter)
                    checked = True
                yield batch
            pass_on_bad_rows()

    yield from _growing_blocks(read)


def _check_quotes(path: Path, delimiter: str) -> None:
    """Read the file with Python's strict CSV parser: an unclosed or stray quote raises, naming its line."""
    from textpipe.data.formats import open_binary

    with open_binary(path) as f:
        reader = csv.reader(io.TextIOWrapper(f, encoding="utf-8-sig", newline=""), delimiter=delimiter, strict=True)
        try:
            for _ in reader:
                pass
        except csv.Error as e:
            raise ValueError(f"{path}, line {reader.line_num}: malformed quoting ({e}); a quoted field must end "
                             "with a quote, and a quote inside it is written twice (\"\"); if quotes are part of "
                             "the text, read the file with --quoting none") from None


def _jsonl_batches(path: Path) -> Iterator[pa.RecordBatch]:
    import pyarrow.json as pj

    def read(block: int) -> Iterator[pa.RecordBatch]:
        with pa.input_stream(str(path), compression="detect") as stream:
            yield from pj.open_json(stream, read_options=pj.ReadOptions(block_size=block))

    yield from _growing_blocks(read)


def split_fasttext_line(line: str) -> tuple[list[str], str]:
    """`(labels, text)` of one fastText line: the `__label__X` words and the text between and after them.

        >>> split_fasttext_line("__label__spam Win a prize now")
        (['spam'], 'Win a prize now')
    """
    words = line.split()
    labels = [w[len(FASTTEXT_LABEL):] for w in words if w.startswith(FASTTEXT_LABEL)]
    if not labels:
        return [], line.strip()
    return labels, " ".join(w for w in words if not w.startswith(FASTTEXT_LABEL))


def _fasttext_batches(path: Path, *, batch_rows: int, bad: list, skip: bool) -> Iterator[pa.RecordBatch]:
    """fastText's `__label__X text` lines as (label, text) batches; a line without a label has a null label,
    blank lines are skipped, a line with several labels is an error (or, with `skip`, a bad row)."""
    from textpipe.data.formats import open_binary

    labels: list[str | None] = []
    texts: list[str] = []
    with open_binary(path) as f:
        for n, line in enumerate(io.TextIOWrapper(f, encoding="utf-8-sig", newline="\n"), 1):
            if not line.strip():
                continue
            found, text = split_fasttext_line(line)
            if len(found) > 1:
                reason = (f"line {n} has {len(found)} labels ({', '.join(FASTTEXT_LABEL + y for y in found[:4])}): "
                          "textpipe trains one label per text (multi-label files are not supported); keep one "
                          "__label__ per line")
                if not skip:
                    raise ValueError(f"{path}, {reason}, or pass on_bad_rows='skip' to skip such lines")
                bad.append((None, reason))
                continue
            labels.append(found[0] if found else None)
            texts.append(text)
            if len(texts) >= batch_rows:
                yield pa.RecordBatch.from_arrays([pa.array(labels, pa.string()), pa.array(texts, pa.string())],
                                                 names=["label", "text"])
                labels, texts = [], []
    if texts:
        yield pa.RecordBatch.from_arrays([pa.array(labels, pa.string()), pa.array(texts, pa.string())],
                                         names=["label", "text"])
