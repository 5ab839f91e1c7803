"""Where a run's train/val/test data come from (`--data-dir`, `--train/--val/--test`, datasets objects), checked
up front, then read into `(raw_labels, texts)` and mapped to class ids by one `LabelVocab`.

    >>> s = resolve_sources(data_dir="../shared/data/ag_news")  # doctest: +SKIP
    >>> s["train"].describe()                                   # doctest: +SKIP
    '../shared/data/ag_news/train.csv.gz (AG_NEWS reader)'

AG_NEWS (no `--data-dir`: the cache or a download; or a directory in its layout, headerless `label,title,
description` with labels 1..4) goes through `textpipe.data.ag_news`, with its file:line errors; everything
else through `textpipe.data.table`.
"""
from __future__ import annotations

import os
from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path

from textpipe.data.ag_news import AG_NEWS_CLASSES, load_ag_news
from textpipe.data.formats import DESCRIPTION, split_file_names
from textpipe.data.labels import LabelVocab, read_classes
from textpipe.data.table import TableSpec, inspect_table, read_table

__all__ = ["Source", "resolve_sources", "read_source", "make_label_vocab", "SPLIT_NAMES"]

# file stems looked for in a --data-dir, per split; the first match wins
SPLIT_NAMES = {"train": ("train",), "val": ("val", "valid", "validation", "dev"), "test": ("test",)}
_DICT_SPLITS = {"train": ("train",), "val": ("validation", "val", "valid", "dev"), "test": ("test",)}


@dataclass(frozen=True)
class Source:
    """One split's data: a file, a directory, or a datasets object (with `split` for a DatasetDict)."""

    data: object  # path, datasets.Dataset or DatasetDict
    split: str | None  # DatasetDict split, else None
    spec: TableSpec | None  # None for AG_NEWS from the cache/download (not on disk yet)
    ag_news: bool  # read with the AG_NEWS reader (labels come out 1..4, as in the file)
    ag_news_root: str | None = None  # its directory (None = cache/download)

    def describe(self) -> str:
        if self.ag_news:
            return f"{self.spec.source if self.spec else 'AG_NEWS (cache/download)'} (AG_NEWS reader)"
        return self.spec.source + (f" [{self.split}]" if self.split else "")

    @property
    def path(self) -> Path | None:
        """The file or directory on disk, if any."""
        return Path(self.data) if isinstance(self.data, (str, os.PathLike)) else None


def _find(directory: Path, split: str, format: str | None = None) -> Path | None:
    for stem in SPLIT_NAMES[split]:
        # with --format the name need not say it: train, train.txt (fastText's habit), train.<format>
        named = [stem, f"{stem}.txt", f"{stem}.{format}"] if format else []
        for name in [*split_file_names(stem), *named]:
            if (directory / name).is_file():
                return directory / name
    return None


def _is_dataset_dict(data) -> bool:
    if isinstance(data, (str, os.PathLike)):
        return (Path(data) / "dataset_dict.json").is_file()
    return type(data).__name__ == "DatasetDict"


def _dict_splits(data) -> list[str]:
    if isinstance(data, (str, os.PathLike)):
        import json

        return list(json.loads((Path(data) / "dataset_dict.json").read_text())["splits"])
    return list(data)


def _ag_news_layout(spec: TableSpec) -> bool:
    return (spec.format == "csv" and not spec.header and len(spec.columns) == 3
            and spec.text_columns == ("1", "2") and spec.label_column == "0")


def resolve_sources(*, data_dir=None, train=None, val=None, test=None, text_columns: Sequence | None = None,
                    label_column=None, require_train: bool = True, only: str | None = None,
                    format: str | None = None, quoting: str | None = None) -> dict[str, Source | None]:
    """Find and check each split's data (fast: first rows and schemas only); see the module docstring.

    Args:
        data_dir: a directory with train/val/test files (`SPLIT_NAMES` x csv/tsv/jsonl/json(.gz)/parquet),
            a `DatasetDict.save_to_disk` directory, or None for AG_NEWS from the cache/download (when
            `train` is None too).
        train, val, test: a file, a save_to_disk directory or a datasets object; override `data_dir`'s.
            A DatasetDict gives its train/validation/test splits.
        text_columns, label_column, format, quoting: see `textpipe.data.table.inspect_table` (`format`: of
            every file given, whatever its name).
        require_train: False: a `data_dir` without a train file is fine (evaluation).
        only: resolve this split only (the others are None).

    Returns:
        `{"train": Source | None, "val": Source | None, "test": Source | None}`.

    Raises:
        FileNotFoundError, ValueError: a missing file or column, an unknown format (named in the message).
    """
    given = {"train": train, "val": val, "test": test}
    columns_given = text_columns is not None or label_column is not None

    def one(data, split):
        return _one(data, split, text_columns, label_column, format, quoting)

    if data_dir is None and train is None:  # AG_NEWS from the cache, downloading once
        if columns_given:
            raise ValueError("--text-column/--label-column need --train FILE or --data-dir DIR")
        ag_news = Source(None, None, None, True)
        return {"train": ag_news, "val": one(val, "val"), "test": ag_news if test is None else one(test, "test")}
    found = (_in_directory(Path(data_dir), need_train=require_train and train is None, format=format)
             if data_dir is not None else {})
    sources = {}
    for split in SPLIT_NAMES:
        if only is not None and split != only:
            sources[split] = None
            continue
        data = given[split]
        if data is None and split != "train" and train is not None and _is_dataset_dict(train):
            data = train  # its validation/test splits
        sources[split] = one(found.get(split) if data is None else data, split)
    if data_dir is not None and train is None and not columns_given and format is None:
        _use_ag_news_reader(sources, Path(data_dir))
    if require_train and only in (None, "train") and sources["train"] is None:
        raise ValueError("no training data: give --train FILE or --data-dir DIR")
    return sources


def _in_directory(d: Path, *, need_train: bool, format: str | None = None) -> dict[str, Path | None]:
    if not d.is_dir():
        raise FileNotFoundError(f"--data-dir {d}: no such directory" if not d.exists() else
                                f"--data-dir {d} is a file, expected a directory; pass it as --train {d}")
    if _is_dataset_dict(d):
        return {split: d for split in SPLIT_NAMES}
    found = {split: _find(d, split, format) for split in SPLIT_NAMES}
    if found["train"] is None and need_train:
        raise FileNotFoundError(f"--data-dir {d} holds no train file (looked for train{DESCRIPTION.replace(' ', ', ')}); "
                                "give --train FILE")
    return found


def _use_ag_news_reader(sources: dict, d: Path) -> None:
    """A --data-dir in AG_NEWS's layout (and with its classes.txt, if any) is read by the AG_NEWS reader."""
    classes = d / "classes.txt"
    if classes.is_file() and tuple(read_classes(classes)) != AG_NEWS_CLASSES:
        return
    for split in ("train", "test"):
        s = sources[split]
        if (s is not None and s.path is not None and s.path.name in (f"{split}.csv", f"{split}.csv.gz")
                and _ag_news_layout(s.spec)):
            sources[split] = Source(s.data, None, s.spec, True, str(d))


def _one(data, split: str, text_columns, label_column, format=None, quoting=None) -> Source | None:
    if data is None:
        return None
    name = None
    if _is_dataset_dict(data):
        have = _dict_splits(data)
        name = next((n for n in _DICT_SPLITS[split] if n in have), None)
        if name is None:
            if split == "train":
                raise ValueError(f"{data} holds the splits {have}, none of them a train split; pass one split")
            return None
    file_format = format if name is None and not _is_datasets_dir(data) else None
    spec = inspect_table(data, text_columns=text_columns, label_column=label_column, split=name, format=file_format,
                         quoting=quoting)
    return Source(data, name, spec, False)


def _is_datasets_dir(data) -> bool:
    return not isinstance(data, (str, os.PathLike)) or (Path(data) / "dataset_info.json").is_file()


def read_source(source: Source, *, split: str, on_bad_rows: str = "raise", progress: bool = True
                ) -> tuple[list, list[str]]:
    """`(raw_labels, texts)` of one split (AG_NEWS: the file's labels 1..4)."""
    if source.ag_news:
        rows = load_ag_news(split, root=source.ag_news_root, download=source.ag_news_root is None,
                            on_bad_rows=on_bad_rows, progress=progress)
        return [y + 1 for y, _ in rows], [t for _, t in rows]
    return read_table(source.data, **source.spec.column_args(), split=source.split, on_bad_rows=on_bad_rows)


def load_classes(classes, data_dir=None) -> list[str] | None:
    """`--classes`: a list of names, one `classes.txt` path, or None (then `<data_dir>/classes.txt` if any)."""
    if classes is None:
        path = Path(data_dir) / "classes.txt" if data_dir is not None else None
        return read_classes(path) if path is not None and path.is_file() else None
    if isinstance(classes, (str, os.PathLike)):
        classes = [classes]
    classes = [str(c) for c in classes]
    if len(classes) == 1:
        if not Path(classes[0]).is_file():
            raise FileNotFoundError(f"--classes {classes[0]}: expected a classes.txt file, or two or more "
                                    "class names")
        return read_classes(classes[0])
    return classes


def make_label_vocab(train: Source, labels: list, *, classes: list[str] | None) -> LabelVocab:
    """The label vocabulary of a training split: `classes` order, a ClassLabel's names, AG_NEWS's names, or
    the sorted labels."""
    if classes is not None:
        return LabelVocab.from_labels(labels, classes=classes)
    if train.spec is not None and train.spec.class_names:
        return LabelVocab(list(range(len(train.spec.class_names))), names=train.spec.class_names)
    if train.ag_news and set(labels) == {1, 2, 3, 4}:
        return LabelVocab([1, 2, 3, 4], names=AG_NEWS_CLASSES)
    return LabelVocab.from_labels(labels)
