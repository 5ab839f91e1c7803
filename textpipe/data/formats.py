"""The one table of file formats: file name ending -> format, how each is opened, and the words `--help` and
the errors use for them. A new format is one entry here plus its reader in `textpipe.data._arrow`.
The extension only guesses: `--format` names the format of any file (`SMSSpamCollection`, `train.txt`).

    >>> format_of("train.csv.gz"), format_of("x.JSON"), DESCRIPTION
    ('csv', 'jsonl', '.csv .tsv .jsonl .json (each optionally .gz), .parquet')
    >>> FILE_FORMATS, default_quoting("tsv")
    (('csv', 'tsv', 'jsonl', 'parquet', 'fasttext'), 'none')
"""
from __future__ import annotations

import gzip
import os
from pathlib import Path

__all__ = ["EXTENSIONS", "FILE_FORMATS", "DESCRIPTION", "QUOTINGS", "format_of", "split_file_names", "open_binary",
           "load_dataset_split", "check_format", "default_quoting", "FASTTEXT_LABEL"]

# file name ending -> format; every text format may also end in .gz (not Parquet: it compresses itself)
EXTENSIONS = {".csv": "csv", ".tsv": "tsv", ".jsonl": "jsonl", ".json": "jsonl", ".parquet": "parquet"}
GZIP_OK = ("csv", "tsv", "jsonl", "fasttext")
# fastText's `__label__X text` lines: no extension of their own (`.txt`, `.train`, ...), so only by --format
FILE_FORMATS = (*dict.fromkeys(EXTENSIONS.values()), "fasttext")  # ('csv', 'tsv', 'jsonl', 'parquet', 'fasttext')
DELIMITED = ("csv", "tsv")  # read with a header check and a delimiter
FASTTEXT_LABEL = "__label__"
# how a delimited file quotes: "csv" (RFC 4180: "a, b" is one field, "" a quote) or "none" (every character is
# data: TSV as IANA defines it, and as fastText and pandas' QUOTE_NONE read it)
QUOTINGS = ("csv", "none")
DESCRIPTION = (" ".join(e for e, f in EXTENSIONS.items() if f in GZIP_OK) + " (each optionally .gz), "
               + " ".join(e for e, f in EXTENSIONS.items() if f not in GZIP_OK))


def format_of(path: str | os.PathLike) -> str | None:
    """The format of a file name, or None when no known ending matches."""
    name = Path(path).name.lower()
    for ext, fmt in EXTENSIONS.items():
        if name.endswith(ext) or (fmt in GZIP_OK and name.endswith(ext + ".gz")):
            return fmt
    return None


def check_format(fmt: str | None) -> str | None:
    """`fmt` if it is one of `FILE_FORMATS` (or None), else a ValueError listing them."""
    if fmt is not None and fmt not in FILE_FORMATS:
        raise ValueError(f"--format must be one of {', '.join(FILE_FORMATS)}, got {fmt!r}")
    return fmt


def default_quoting(fmt: str) -> str:
    """CSV quotes fields, TSV does not (a `"` in a TSV field is part of the text)."""
    return "csv" if fmt == "csv" else "none"


def split_file_names(split: str) -> list[str]:
    """Every file name a `--data-dir` split may have: `train.csv`, `train.csv.gz`, ..., `train.parquet`."""
    return [f"{split}{ext}{gz}" for ext, fmt in EXTENSIONS.items() for gz in (("", ".gz") if fmt in GZIP_OK else ("",))]


def open_binary(path: Path):
    """The file's bytes, gunzipped when its name ends in .gz."""
    return gzip.open(path, "rb") if path.name.lower().endswith(".gz") else open(path, "rb")


def load_dataset_split(source, split: str | None):
    """A datasets.Dataset from a save_to_disk dir, a Dataset, or a DatasetDict's `split`."""
    import datasets

    ds = datasets.load_from_disk(str(source)) if isinstance(source, (str, os.PathLike)) else source
    if isinstance(ds, datasets.DatasetDict):
        if split is None and len(ds) == 1:
            split = next(iter(ds))
        if split not in ds:
            name = str(source) if isinstance(source, (str, os.PathLike)) else f"<{type(source).__name__}>"
            raise ValueError(f"{name} holds the splits {list(ds)}; choose one (split=...)")
        ds = ds[split]
    if not isinstance(ds, datasets.Dataset):
        raise TypeError(f"expected a datasets.Dataset or DatasetDict, got {type(ds).__name__} (iterable "
                        "datasets: materialize them first)")
    return ds
