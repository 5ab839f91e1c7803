"""torchtext's ``AG_NEWS(root, split)``: ``(label 1..4, text)`` rows, one dataset per split.

An adapter over ``textpipe.data.ag_news`` (which parses the CSV and keeps labels 0..3): here labels are the
file's 1..4, as torchtext yielded them, so the tutorial's ``int(label) - 1`` and its 1-based class-name
dict stay right. Files are found in torchtext's layout (``root/datasets/AG_NEWS/train.csv``) or a flat
directory, else in textpipe's cache, else downloaded (torchtext's URLs and MD5s).

Run the tests: python3 -m pytest -q tests/test_datasets.py
"""
from __future__ import annotations

import os
from pathlib import Path

from torch.utils.data import IterDataPipe

from textpipe.data.ag_news import AG_NEWS_URLS, read_ag_news_classes, read_ag_news_csv
from textpipe.data.download import DownloadError, default_cache_dir, download_file

__all__ = ["AG_NEWS", "AGNewsSplit", "SplitError"]

DATASET_NAME = "AG_NEWS"
NUM_LINES = {"train": 120000, "test": 7600}  # of the full download (torchtext's table)
_SPLITS = ("train", "test")


class SplitError(ValueError, TypeError):
    """An unknown split. Also a ``TypeError``, which is what torchtext raised."""


class AGNewsSplit(IterDataPipe):
    """The rows of one AG_NEWS file: iterating yields ``(label, text)`` with label 1..4, in file order.

    Re-iterable; the file is parsed on the first pass and the rows are kept. ``AG_NEWS`` returns it inside
    torchtext's own datapipe graph (``.shuffle().set_shuffle(False).sharding_filter()``), so a ``DataLoader``
    treats it exactly as it treated torchtext's: ``shuffle=True`` shuffles, workers each get every N-th row,
    and the random numbers drawn (hence a seeded run's results) are the same.

    Attributes:
        split: ``"train"`` or ``"test"``.
        path: The CSV file read (``.csv`` or ``.csv.gz``).
    """

    def __init__(self, path: str | os.PathLike, split: str, *, on_bad_rows: str = "raise") -> None:
        self.path, self.split, self.on_bad_rows = Path(path), split, on_bad_rows
        self._rows: list[tuple[int, str]] | None = None

    def _load(self) -> list[tuple[int, str]]:
        if self._rows is None:
            self._rows = [(label + 1, text) for label, text in
                          read_ag_news_csv(self.path, on_bad_rows=self.on_bad_rows)]
        return self._rows

    def __iter__(self):
        yield from self._load()

    def __len__(self) -> int:
        return len(self._load())

    def __repr__(self) -> str:
        return f"AGNewsSplit(split={self.split!r}, path='{self.path}')"


def _torch_home() -> Path:
    """Where torchtext kept its datasets by default ($TORCH_HOME, else $XDG_CACHE_HOME/torch, else ~/.cache/torch)."""
    if os.environ.get("TORCH_HOME"):
        return Path(os.environ["TORCH_HOME"]).expanduser()
    xdg = os.environ.get("XDG_CACHE_HOME")
    return (Path(xdg).expanduser() if xdg else Path.home() / ".cache") / "torch"


def _find(directory: Path, split: str) -> Path | None:
    for name in (f"{split}.csv", f"{split}.csv.gz"):
        if (directory / name).is_file():
            return directory / name
    return None


def _locate(root: Path | None, split: str, *, download: bool, cache_dir: Path,
            urls: dict[str, tuple[str, str]]) -> Path:
    """The file for `split`: searched in order, downloaded into the first place if allowed."""
    if root is not None:
        places = [root / "datasets" / DATASET_NAME, root, cache_dir]
    else:
        places = [cache_dir, _torch_home() / "text" / "datasets" / DATASET_NAME]
    for directory in places:
        found = _find(directory, split)
        if found is not None:
            read_ag_news_classes(directory)  # a classes.txt in another order is an error
            return found
    looked = ", ".join(str(p) for p in places)
    if not download:
        raise FileNotFoundError(f"AG_NEWS {split} split not found (looked for {split}.csv or {split}.csv.gz in "
                                f"{looked}) and download=False; put the file in {places[0]} or pass download=True")
    if split not in urls:
        raise ValueError(f"urls must map {split!r} to (url, md5), got keys {sorted(urls)}")
    url, md5 = urls[split]
    dest = places[0] / (f"{split}.csv.gz" if url.endswith(".gz") else f"{split}.csv")
    try:
        return download_file(url, dest, md5=md5)
    except DownloadError as e:
        raise DownloadError(f"{e}\nOffline? Place {split}.csv in {places[0]} by hand (looked in {looked}).") from e


def AG_NEWS(root: str | os.PathLike | None = None, split: str | tuple[str, ...] = _SPLITS, *,
            download: bool = True, cache_dir: str | os.PathLike | None = None,
            urls: dict[str, tuple[str, str]] | None = None, on_bad_rows: str = "raise"):
    """AG_NEWS as torchtext 0.18 gave it: ``AG_NEWS(split="train")`` or ``train, test = AG_NEWS()``.

    Where each split's file is looked for, in order (``{split}.csv`` or ``{split}.csv.gz``):

    * with ``root``: ``root/datasets/AG_NEWS/`` (torchtext's layout), ``root/`` itself, then textpipe's
      cache; a missing file is downloaded into ``root/datasets/AG_NEWS/``, as torchtext did;
    * without ``root``: textpipe's cache (``<cache>/ag_news``, see ``default_cache_dir``), then torchtext's
      default place (``~/.cache/torch/text/datasets/AG_NEWS``); a download goes into textpipe's cache.

    Downloads use torchtext's URLs, are checked against its MD5s and written atomically under a file lock.
    A file found locally is used as it is (no MD5 check), so a hand-placed copy or a subset works.

    Args:
        root: Directory holding the data (torchtext's argument; its signature said ``".data"`` but it
            used ``~/.cache/torch/text``: see the lookup order above).
        split: ``"train"``, ``"test"``, or a tuple of them (the result is then a tuple, in that order).
        download: Fetch a split that is not found locally.
        cache_dir: textpipe cache root (default ``$TEXTPIPE_CACHE`` or ``~/.cache/textpipe``).
        urls: split -> ``(url, md5)`` replacing torchtext's (mirrors, tests).
        on_bad_rows: ``"raise"`` (default) or ``"skip"`` malformed CSV rows with a warning.

    Returns:
        For a str ``split`` an iterable datapipe of ``(label 1..4, text)`` (with ``len()``; wrap it in
        ``to_map_style_dataset`` for random access), for a tuple a tuple of them.

    Raises:
        SplitError: An unknown split (a ``ValueError``; also a ``TypeError`` as in torchtext).
        FileNotFoundError: Not found and ``download=False``.
        DownloadError: The download failed; the message says where to put the file by hand.

    Example:
        >>> train = AG_NEWS(root="/work/shared/data/ag_news", split="train")  # doctest: +SKIP
        >>> next(iter(train))[0], len(train)  # doctest: +SKIP
        (3, 5600)
    """
    splits = (split,) if isinstance(split, str) else split
    if not isinstance(splits, (tuple, list)) or not splits or \
            any(not isinstance(s, str) or s not in _SPLITS for s in splits):
        raise SplitError(f"split must be 'train', 'test' or a tuple of them, got {split!r}")
    root_path = None if root is None else Path(root).expanduser()
    if root_path is not None and root_path.is_file():
        raise ValueError(f"root must be a directory, got the file {root_path}; pass the directory that "
                         f"holds datasets/AG_NEWS/ (or train.csv and test.csv)")
    cache = (Path(cache_dir).expanduser() if cache_dir is not None else default_cache_dir()) / "ag_news"
    urls = AG_NEWS_URLS if urls is None else urls
    # torchtext's graph on top of the rows, so DataLoader shuffling, worker sharding and RNG use match it
    datasets = tuple(AGNewsSplit(_locate(root_path, s, download=download, cache_dir=cache, urls=urls), s,
                                 on_bad_rows=on_bad_rows).shuffle().set_shuffle(False).sharding_filter()
                     for s in splits)
    return datasets[0] if isinstance(split, str) else datasets
