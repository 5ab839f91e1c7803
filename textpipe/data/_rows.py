"""Checked rows of a table's record batches: the per-chunk half of `table.iter_table` (after `_arrow`'s I/O).

A clean chunk (string texts without nulls, labels `canonical_label` accepts) is checked and built column-wise
by pyarrow: texts joined by `binary_join_element_wise`, labels canonicalised once per distinct value. A chunk
with any bad row goes row by row, which finds the first bad row's number for the error (or skips and counts
each bad row), so both paths give the same rows, errors and skip counts.
"""
from __future__ import annotations

from collections.abc import Iterator

import numpy as np
import pyarrow as pa
import pyarrow.compute as pc

from textpipe.core.arrow import int_values, string_scalar
from textpipe.data.labels import canonical_label

__all__ = ["checked_chunks"]


def checked_chunks(source, spec, *, batch_rows: int, split: str | None, bad: list, on_bad_rows: str,
                   counted: list, texts: bool = True) -> Iterator[tuple[list, list[str] | None]]:
    """`(labels, texts)` per batch (`texts=False`: `(distinct labels, rows kept)`), rows kept only.

    `bad` collects `(row, reason)` of skipped rows; `counted[0]` counts the rows read (kept or skipped).

    Raises:
        ValueError: the first bad row (with `on_bad_rows="raise"`), naming the file and row.
    """
    from textpipe.data._arrow import arrow_batches

    for batch in arrow_batches(source, spec, batch_rows=batch_rows, split=split, bad=bad,
                               skip=on_bad_rows == "skip"):
        row = counted[0]
        if spec.label_column is not None and pa.types.is_floating(batch.schema.field(spec.label_column).type):
            label_col = batch.column(spec.label_column).to_pylist()  # never truncate 1.7 to 1
            i = next((i for i, v in enumerate(label_col) if v is not None and not float(v).is_integer()), 0)
            raise ValueError(f"{spec.source}, row {row + 1 + i}: label {label_col[i]!r}: the label column "
                             f"{spec.label_column!r} holds floats, expected int or string labels")
        fast = _clean_batch(batch, spec, texts=texts)
        counted[0] += batch.num_rows
        if fast is not None:
            yield fast
            continue
        labels, kept = _checked_rows(batch, spec, row, bad, raise_bad=on_bad_rows == "raise")
        yield (labels, kept) if texts else (list(dict.fromkeys(labels)), len(kept))


def _clean_batch(batch, spec, *, texts: bool) -> tuple | None:
    """`(labels, texts)` (`texts=False`: `(distinct labels, rows)`) computed column-wise, or None if any row
    is bad (a null or non-string text, a label `canonical_label` rejects)."""
    cols = [batch.column(c) for c in spec.text_columns]
    if any(not (pa.types.is_string(c.type) or pa.types.is_large_string(c.type)) or c.null_count for c in cols):
        return None
    try:
        if not texts:
            joined = None
        elif len(cols) == 1:
            joined = cols[0].to_pylist()
        else:
            if len({c.type for c in cols}) > 1:
                cols = [c.cast(pa.large_string()) for c in cols]
            joined = pc.binary_join_element_wise(*cols, string_scalar(" ", cols[0].type)).to_pylist()
        if spec.label_column is None:
            return ([None], batch.num_rows) if not texts else ([None] * batch.num_rows, joined)
        label_col = batch.column(spec.label_column)
        if label_col.null_count:
            return None
        distinct = pc.unique(label_col)
        canon = np.empty(len(distinct), dtype=object)
        for i, value in enumerate(distinct.to_pylist()):
            canon[i] = canonical_label(value)
        if not texts:
            return list(dict.fromkeys(canon.tolist())), batch.num_rows
        index = pc.index_in(label_col, value_set=distinct)
        if isinstance(index, pa.ChunkedArray):
            index = index.combine_chunks()
        return canon[int_values(index)].tolist(), joined
    except (ValueError, pa.ArrowNotImplementedError, pa.ArrowTypeError):  # ArrowInvalid is a ValueError
        return None


def _checked_rows(batch, spec, row: int, bad: list, *, raise_bad: bool) -> tuple[list, list[str]]:
    """The batch's `(labels, texts)` row by row (rows from `row + 1`): the first bad row raises, naming its
    number, or (not `raise_bad`) each bad row is recorded in `bad` and left out."""
    cols = batch.to_pydict()
    text_cols = [cols[c] for c in spec.text_columns]
    label_col = cols[spec.label_column] if spec.label_column is not None else [None] * batch.num_rows
    labels, texts = [], []
    for i, y in enumerate(label_col):
        row += 1
        parts = [c[i] for c in text_cols]
        try:
            if any(p is None for p in parts):
                raise ValueError("the text is missing (null)")
            if not all(isinstance(p, str) for p in parts):
                raise ValueError(f"the text is a {type(next(p for p in parts if not isinstance(p, str))).__name__}"
                                 ", expected a string")
            y = canonical_label(y) if spec.label_column is not None else None
        except ValueError as e:
            if raise_bad:
                raise ValueError(f"{spec.source}, row {row}: {e}. Fix the row, or pass on_bad_rows='skip' "
                                 "to skip malformed rows with a warning") from None
            bad.append((row, str(e)))
            continue
        labels.append(y)
        texts.append(parts[0] if len(parts) == 1 else " ".join(parts))
    return labels, texts
