"""Shared benchmark helpers: load the AG_NEWS training stand-in, cycled to a realistic corpus size; read
`--set FIELD=VALUE` settings.

    from _common import load_texts            # run benchmarks from the benchmarks/ directory
    labels, texts = load_texts(DEFAULT_DATA, 120_000)

The stand-in (../shared/data/ag_news/train.csv.gz, see its SOURCE.md) has 5,600 real rows; the real
training split has 120,000, so benchmarks repeat the rows in file order until ``rows`` are reached.
"""
from __future__ import annotations

import ast
import contextlib
import csv
import gzip
import io
import re
from itertools import islice, cycle
from pathlib import Path

__all__ = ["DEFAULT_DATA", "DEFAULT_ROWS", "load_texts", "reference_tokenize", "parse_settings"]

DEFAULT_DATA = Path(__file__).resolve().parents[2] / "shared" / "data" / "ag_news" / "train.csv.gz"
DEFAULT_ROWS = 120_000  # the size of the real AG_NEWS training split


def load_texts(path: str | Path = DEFAULT_DATA, rows: int = DEFAULT_ROWS) -> tuple[list[int], list[str]]:
    """Read an AG_NEWS-format CSV (optionally gzipped) and cycle it to ``rows`` rows.

    Args:
        path: CSV with the fields label (1..4), title, description; ``.gz`` is decompressed.
        rows: How many rows to return; the file's rows repeat in order. ``rows <= 0`` is an error.

    Returns:
        ``(labels, texts)``: labels 0..3 and texts ``title + " " + description``, both of length ``rows``.

    Example:
        >>> labels, texts = load_texts(DEFAULT_DATA, 3)
        >>> labels, texts[0][:28]
        ([3, 3, 3], 'Loosing the War on Terrorism')
    """
    if rows <= 0:
        raise ValueError(f"rows must be >= 1, got {rows}")
    path = Path(path)
    raw = path.read_bytes()
    if path.suffix == ".gz":
        raw = gzip.decompress(raw)
    reader = csv.reader(io.StringIO(raw.decode("utf-8"), newline=""))
    data = [(int(label) - 1, f"{title} {description}") for label, title, description in reader]
    if not data:
        raise ValueError(f"path {str(path)!r} holds no rows; expected an AG_NEWS-format CSV")
    picked = list(islice(cycle(data), rows))
    return [label for label, _ in picked], [text for _, text in picked]


# torchtext 0.18's `_basic_english_normalize`, written out literally from the spec (section 1): lower-case,
# these 12 regex substitutions in order, then split. The baseline every benchmark measures against.
_STEPS = [(re.compile(p), r) for p, r in [
    (r"\'", " '  "), (r"\"", ""), (r"\.", " . "), (r"<br \/>", " "), (r",", " , "), (r"\(", " ( "),
    (r"\)", " ) "), (r"\!", " ! "), (r"\?", " ? "), (r"\;", " "), (r"\:", " "), (r"\s+", " ")]]


def reference_tokenize(line: str) -> list[str]:
    """torchtext's basic_english, step by step (the tutorial's ``get_tokenizer("basic_english")``)."""
    line = line.lower()
    for pattern, replacement in _STEPS:
        line = pattern.sub(replacement, line)
    return line.split()


def parse_settings(items: list[str]) -> dict:
    """`["lr=1e-3", "kernel_sizes=[2,3]", "pooling=max"]` -> TrainConfig fields: Python literals, else strings."""
    settings = {}
    for item in items:
        key, sep, value = item.partition("=")
        if not sep:
            raise SystemExit(f"--set takes FIELD=VALUE, got {item!r}")
        with contextlib.suppress(ValueError, SyntaxError):
            value = ast.literal_eval(value)
        settings[key] = value
    return settings
