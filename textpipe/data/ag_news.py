"""AG_NEWS: find the CSV files (directory, cache or download) and parse them into (label, text) rows.

Rows come out as torchtext's AG_NEWS made them: label 0..3 (the file's 1..4 minus one) and
text = title + " " + description, escapes such as `\\` and `#39;` kept verbatim.
Tests: python3 -m pytest -q tests/test_ag_news.py tests/test_download.py
"""
from __future__ import annotations

import collections
import csv
import gzip
import os
import re
import warnings
import zlib
from pathlib import Path
from urllib.parse import urlparse

from textpipe.data.download import DownloadError, default_cache_dir, download_file

__all__ = ["AG_NEWS_CLASSES", "AG_NEWS_URLS", "load_ag_news", "read_ag_news_classes",
           "read_ag_news_csv"]

AG_NEWS_CLASSES = ("World", "Sports", "Business", "Sci/Tech")  # label 0..3, as in classes.txt

# The files torchtext downloaded, with its MD5s (of the uncompressed CSV); see SOURCE.md.
_BASE = "https://raw.githubusercontent.com/mhjabreel/CharCnn_Keras/master/data/ag_news_csv"
AG_NEWS_URLS = {
    "train": (f"{_BASE}/train.csv", "b1a00f826fdfbd249f79597b59e1dc12"),
    "test": (f"{_BASE}/test.csv", "d52ea96a97a2d943681189a97654912d"),
}

_LABELS = {"1": 0, "2": 1, "3": 2, "4": 3}
_ON_BAD_ROWS = ("raise", "skip")
_SHOW_LINES = 5  # line numbers listed in the skip warning
_RECORD_START = re.compile(r'"?[1-4]"?,')  # a line that can start an AG_NEWS record: its class, then a comma
_NEXT_RECORD = re.compile(r'"[1-4]","')  # ... and quoted as AG_NEWS quotes it: never inside a quoted field


def read_ag_news_csv(path: str | os.PathLike, *, on_bad_rows: str = "raise") -> list[tuple[int, str]]:
    """Parses one AG_NEWS CSV file (`.csv`, or gzip-compressed if the name ends in `.gz`).

    Each record is `"class","title","description"` with class 1..4. A malformed record (not 3
    fields, class outside 1..4, invalid UTF-8, a quote left open to the end of the file) raises by
    default; with `on_bad_rows="skip"` it is skipped and one warning gives the count and the first
    line numbers. A malformed record never takes a good row with it: when one spans several lines
    (an unclosed quote), parsing starts again at the next line that begins a record, and every line
    skipped on the way is counted. Nothing is dropped silently.

    Args:
        path: the file to read.
        on_bad_rows: "raise" (default) or "skip".

    Returns:
        A list of `(label, text)` with label in 0..3 and text = title + " " + description.

    Raises:
        ValueError: a malformed record (message: file, line, what was wrong), an empty file, a corrupt
            or truncated gzip file, or a bad `on_bad_rows`.
        FileNotFoundError, IsADirectoryError, PermissionError: the file cannot be opened (the message
            says which, with the path).

    Example:
        >>> _ = Path("t.csv").write_text('"3","Fed Up","Rates rise, again."\\n')
        >>> read_ag_news_csv("t.csv")
        [(2, 'Fed Up Rates rise, again.')]
    """
    if on_bad_rows not in _ON_BAD_ROWS:
        raise ValueError(f"on_bad_rows must be one of {_ON_BAD_ROWS}, got {on_bad_rows!r}")
    path = Path(path)
    rows: list[tuple[int, str]] = []
    bad: list[tuple[int, str]] = []  # (line, reason), one per skipped line
    try:
        for line, record, error in _records(path):
            if error is None:
                rows.append((_LABELS[record[0]], " ".join(record[1:])))  # torchtext: " ".join(row[1:])
            elif on_bad_rows == "raise":
                raise ValueError(f"{path}, line {line}: {error}. Fix the file, or pass "
                                 f"on_bad_rows='skip' to skip malformed rows with a warning.")
            else:
                bad.append((line, error))
    except (gzip.BadGzipFile, EOFError, zlib.error) as e:
        raise ValueError(f"{path}: corrupt or truncated gzip file ({e}); delete it and copy or "
                         f"download it again") from e
    except OSError as e:  # after BadGzipFile, which is an OSError too
        raise _open_error(e, path) from None
    if not rows and not bad:
        raise ValueError(f"{path} is empty: expected AG_NEWS rows like "
                         f'"3","title","description"')
    if bad:
        shown = ", ".join(str(line) for line, _ in bad[:_SHOW_LINES])
        more = ", ..." if len(bad) > _SHOW_LINES else ""
        warnings.warn(f"{path}: skipped {len(bad)} malformed line(s): {shown}{more}; "
                      f"first: line {bad[0][0]}: {bad[0][1]}", UserWarning, stacklevel=2)
        if not rows:
            raise ValueError(f"{path}: no valid row: all {len(bad)} line(s) are malformed (first: line "
                             f"{bad[0][0]}: {bad[0][1]})")
    return rows


def _open_error(e: OSError, path: Path) -> OSError:
    """The OSError of reading `path`, with a message that says which problem it is and the fix."""
    if isinstance(e, FileNotFoundError):
        return FileNotFoundError(f"{path} does not exist")
    if isinstance(e, IsADirectoryError) or path.is_dir():
        return IsADirectoryError(f"{path} is a directory, expected an AG_NEWS CSV file "
                                          f"(.csv or .csv.gz)")
    if isinstance(e, PermissionError):
        return PermissionError(f"permission denied: cannot read {path}; check its permissions "
                                        f"(and those of {path.parent})")
    return type(e)(f"cannot read {path}: {e.strerror or e}")


def _records(path: Path):
    """Yields (line number, valid record or None, error or None), one per record or skipped line.

    A quoted field never runs into a line that starts the next record (`"1","...`): the record is cut
    there, reported as an unclosed quote, and parsing goes on at that line (so one bad quote costs its own
    row and the lines it swallowed, never a good row, and parsing stays linear). A malformed record that
    spans several lines is reported at its first line; its other lines are read again from the first one
    that can start a record (`_RECORD_START`), and those before it are reported one by one.
    """
    bad_lines: dict[int, str] = {}  # line number -> UnicodeDecodeError text
    replay: collections.deque = collections.deque()  # (line number, text) lines to parse again
    fed: list[tuple[int, str]] = []  # the lines the current record consumed
    state = [0, None]  # last line number read from the file; why the current record ended early ("eof", "next")

    def take(item) -> bool:
        """Feed `item` to the current record, unless it starts the next one while a quote is open."""
        if fed and _NEXT_RECORD.match(item[1]):
            state[1] = "next"
            return False
        fed.append(item)
        return True

    def feed(f):
        while replay:  # first the lines to parse again, then the rest of the file
            item = replay.popleft()
            if not take(item):
                replay.appendleft(item)
                return
            yield item[1]
        for raw in f:
            state[0] = i = state[0] + 1
            # Decode line by line so invalid UTF-8 can be pinned to a line; surrogateescape keeps the
            # csv parser going so the record boundaries (and the following line numbers) stay right.
            try:
                # subtle: a byte-order mark (files saved by spreadsheet tools) would glue itself
                # to the first label, so line 1 drops it.
                text = raw.decode("utf-8-sig" if i == 1 else "utf-8")
            except UnicodeDecodeError as e:
                bad_lines[i] = f"invalid UTF-8 ({e.reason} at byte {e.start} of the line)"
                text = raw.decode("utf-8", errors="surrogateescape")
            if not take((i, text)):
                replay.append((i, text))
                return
            yield text
        if fed:  # subtle: the reader asks for more mid-record only while a quote is open
            state[1] = "eof"

    opener = gzip.open if path.name.endswith(".gz") else open
    with opener(path, "rb") as f:
        reader = csv.reader(feed(f))
        while True:
            fed.clear()
            state[1] = None
            try:
                record = next(reader)
            except StopIteration:
                if not replay:
                    return
                reader = csv.reader(feed(f))  # the last record was cut at a record start: go on there
                continue
            except csv.Error as e:  # e.g. a field over csv's size limit
                record, error = None, f"unparsable CSV ({e})"
            else:
                cut = state[1] and ("runs to the end of the file" if state[1] == "eof" else
                                    f"runs into line {replay[0][0]}, which starts the next record")
                error = _check(record, fed, bad_lines, cut)
            if state[1] == "next":
                reader = csv.reader(feed(f))  # the feed ended at that line: a fresh parser starts there
            if error is None:
                yield fed[0][0], record, None
                continue
            start = fed[0][0]
            yield start, None, error
            if len(fed) > 1:  # resynchronise: the swallowed lines may hold good rows
                rest = fed[1:]
                k = 0
                while k < len(rest) and not _RECORD_START.match(rest[k][1]):
                    yield rest[k][0], None, f"inside the malformed record that starts at line {start}"
                    k += 1
                replay.extendleft(reversed(rest[k:]))
                reader = csv.reader(feed(f))  # a fresh parser, at a line boundary


def _check(record: list[str], fed: list[tuple[int, str]], bad_lines: dict[int, str],
           cut: str | None) -> str | None:
    """Returns what is wrong with a parsed record, or None when it is a valid AG_NEWS row."""
    if cut:
        return f"unclosed quote: the quoted field opened on line {fed[0][0]} {cut} ({len(fed)} line(s))"
    if bad_lines:
        error = next((bad_lines[i] for i, _ in fed if i in bad_lines), None)
        if error is not None:
            return error
    if len(record) != 3:
        return (f"expected 3 fields (class, title, description), found {len(record)}: "
                f"{_preview(record)}")
    if record[0] not in _LABELS:
        return f"class must be one of 1, 2, 3, 4, found {record[0]!r}"
    return None


def _preview(record: list[str], width: int = 80) -> str:
    text = repr(record)
    return text if len(text) <= width else text[: width - 3] + "..."


def read_ag_news_classes(directory: str | os.PathLike) -> tuple[str, ...]:
    """Returns the class names from `directory/classes.txt`, checked against `AG_NEWS_CLASSES`.

    Without a classes.txt the answer is `AG_NEWS_CLASSES`.

    Raises:
        ValueError: classes.txt lists other names or another order than `AG_NEWS_CLASSES`.

    Example:
        >>> _ = Path("classes.txt").write_text("World\\nSports\\nBusiness\\nSci/Tech\\n")
        >>> read_ag_news_classes(".")
        ('World', 'Sports', 'Business', 'Sci/Tech')
    """
    path = Path(directory) / "classes.txt"
    if not path.is_file():
        return AG_NEWS_CLASSES
    names = tuple(line.strip() for line in path.read_text(encoding="utf-8").splitlines() if line.strip())
    if names != AG_NEWS_CLASSES:
        raise ValueError(f"{path} lists classes {names}, expected {AG_NEWS_CLASSES} in that order "
                         f"(labels 0..3 follow it); this does not look like AG_NEWS")
    return names


def load_ag_news(split: str, *, root: str | os.PathLike | None = None, download: bool = True,
                 cache_dir: str | os.PathLike | None = None, on_bad_rows: str = "raise",
                 urls: dict[str, tuple[str, str]] | None = None,
                 progress: bool = True) -> list[tuple[int, str]]:
    """Loads one AG_NEWS split as a list of (label 0..3, title + " " + description).

    Where the file comes from, in order:
      1. `root`, else `$TEXTPIPE_DATA`: a directory holding `{split}.csv` or `{split}.csv.gz`
         (plain .csv wins if both exist). If given, the file must be there: no fallback, so a typo
         cannot silently trigger a download. A `classes.txt` there is checked against the order.
      2. the cache: `<cache_dir>/ag_news/`, with cache_dir defaulting to `$TEXTPIPE_CACHE` or
         `~/.cache/textpipe` (see `default_cache_dir`).
      3. a download into the cache (if `download`), checksum-verified and file-locked, so
         concurrent ranks download once.

    Args:
        split: "train" or "test".
        root: directory with the CSV files; overrides `$TEXTPIPE_DATA`.
        download: fetch into the cache when the file is not there.
        cache_dir: textpipe cache root (AG_NEWS goes in its `ag_news/` subdirectory).
        on_bad_rows: "raise" or "skip" (see `read_ag_news_csv`).
        urls: split -> (url, md5) overriding `AG_NEWS_URLS` (mirrors, tests).
        progress: show a progress bar while downloading.

    Raises:
        FileNotFoundError: the file is not where `root`/`$TEXTPIPE_DATA` says, or not cached and
            `download=False`.
        DownloadError: the download failed; the message names the directory to fill by hand.
        ValueError: bad arguments or malformed data (see `read_ag_news_csv`).

    Example:
        >>> _ = Path("data").mkdir(exist_ok=True)
        >>> _ = Path("data/test.csv").write_text('"3","Fears for T N pension after talks","Unions ..."\\n')
        >>> rows = load_ag_news("test", root="data")
        >>> len(rows), rows[0][0], rows[0][1][:24]
        (1, 2, 'Fears for T N pension af')
        >>> rows = load_ag_news("test", root="../shared/data/ag_news")  # doctest: +SKIP
    """
    if split not in ("train", "test"):
        raise ValueError(f"split must be 'train' or 'test', got {split!r}")
    source = "root=" if root is not None else "$TEXTPIPE_DATA"
    data_dir = root if root is not None else os.environ.get("TEXTPIPE_DATA") or None
    if data_dir is not None:
        data_dir = Path(data_dir).expanduser()
        if data_dir.is_file():
            raise ValueError(f"{source} must be a directory holding {split}.csv or {split}.csv.gz, "
                             f"got the file {data_dir}; pass its parent directory")
        if not data_dir.is_dir():
            raise FileNotFoundError(f"{source} points to {data_dir}, which does not exist. Give the directory "
                                    f"that holds the AG_NEWS files, or unset it to use the cache.")
        found = _find(data_dir, split)
        if found is None:
            raise FileNotFoundError(
                f"{source} points to {data_dir}, which holds no {split}.csv or {split}.csv.gz. "
                f"Put the AG_NEWS files there, or unset it to use the cache (downloading if needed).")
        read_ag_news_classes(data_dir)
        return read_ag_news_csv(found, on_bad_rows=on_bad_rows)

    cache = Path(cache_dir).expanduser() if cache_dir is not None else default_cache_dir()
    cache = cache / "ag_news"
    found = _find(cache, split)
    if found is None:
        by_hand = (f"place {split}.csv (or {split}.csv.gz) in {cache} by hand, or pass root= "
                   f"(or set TEXTPIPE_DATA) to a directory that holds it")
        if not download:
            raise FileNotFoundError(f"AG_NEWS {split} split not found in {cache} and download=False: "
                                    f"{by_hand}, or pass download=True.")
        urls = AG_NEWS_URLS if urls is None else urls
        if split not in urls:
            raise ValueError(f"urls must map {split!r} to (url, md5), got keys {sorted(urls)}")
        url, md5 = urls[split]
        # Keep the URL's compression in the name so the parser knows how to open it.
        name = f"{split}.csv.gz" if urlparse(url).path.endswith(".gz") else f"{split}.csv"
        try:
            found = download_file(url, cache / name, md5=md5, progress=progress)
        except DownloadError as e:
            raise DownloadError(f"{e}\nOffline? {by_hand}.") from e
    return read_ag_news_csv(found, on_bad_rows=on_bad_rows)


def _find(directory: Path, split: str) -> Path | None:
    """`directory/{split}.csv[.gz]`, or None; a directory of that name or an unreadable one is an error."""
    for name in (f"{split}.csv", f"{split}.csv.gz"):
        path = directory / name
        try:
            if path.is_file():
                return path
            if path.is_dir():
                raise IsADirectoryError(f"{path} is a directory, expected the AG_NEWS {split} split as a CSV "
                                        f"file (.csv or .csv.gz)")
        except PermissionError:
            raise PermissionError(f"permission denied: cannot look into {directory}; check its "
                                  f"permissions") from None
    return None
