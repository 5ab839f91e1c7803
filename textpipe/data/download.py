"""Download a file once: streamed, checksummed, renamed atomically, guarded by a file lock.

The file at `dest` only ever appears complete: bytes go to a temporary file beside it
(`textpipe.core.fileio.atomic_write`), which replaces `dest` after the MD5 matches; the temp files of killed
downloads are swept on the next call. A `FileLock` on `dest + ".lock"` makes concurrent processes
(distributed ranks) download once; the others wait, then find the file.
Tests: python3 -m pytest -q tests/test_download.py
"""
from __future__ import annotations

import contextlib
import hashlib
import http.client
import os
import urllib.error
import urllib.request
from pathlib import Path

from filelock import FileLock

from textpipe.core.progress import progress as progress_bar
from textpipe.core.fileio import WriteError, atomic_write, describe_os_error, sweep_stale_temps

__all__ = ["DownloadError", "default_cache_dir", "download_file", "md5_file", "stream_url"]

_CHUNK = 1 << 20  # 1 MiB per read: few syscalls, little memory


class DownloadError(OSError):
    """A download failed (network, HTTP status, short body or checksum); nothing partial was kept."""


def default_cache_dir() -> Path:
    """Returns the cache root: $TEXTPIPE_CACHE, else $XDG_CACHE_HOME/textpipe, else ~/.cache/textpipe.

    Example:
        >>> os.environ["TEXTPIPE_CACHE"] = "/tmp/tp"  # doctest: +SKIP
        >>> default_cache_dir()  # doctest: +SKIP
        PosixPath('/tmp/tp')
    """
    if os.environ.get("TEXTPIPE_CACHE"):
        return Path(os.environ["TEXTPIPE_CACHE"]).expanduser()
    xdg = os.environ.get("XDG_CACHE_HOME")
    base = Path(xdg).expanduser() if xdg else Path.home() / ".cache"
    return base / "textpipe"


def md5_file(path: str | os.PathLike) -> str:
    """Returns the hex MD5 of a file, read in chunks.

    Example:
        >>> md5_file("empty.txt")  # doctest: +SKIP
        'd41d8cd98f00b204e9800998ecf8427e'
    """
    h = hashlib.md5()
    with open(path, "rb") as f:
        while chunk := f.read(_CHUNK):
            h.update(chunk)
    return h.hexdigest()


def download_file(url: str, dest: str | os.PathLike, *, md5: str, timeout: float = 60.0,
                  progress: bool = True) -> Path:
    """Downloads `url` to `dest` unless `dest` already exists, verifying its MD5.

    Only one process downloads: the others block on `dest + ".lock"` and then find the file. On any
    failure (HTTP error, connection dropped, checksum mismatch, KeyboardInterrupt) the temporary
    file is removed, `dest` is left untouched, and the next call starts clean.

    subtle: an existing `dest` is trusted without re-hashing. It can only have come from a verified
    download (the rename is atomic) or been placed there by hand on purpose.

    Args:
        url: http(s) URL to fetch.
        dest: final path of the file; its directory is created if needed.
        md5: expected hex MD5 of the downloaded bytes.
        timeout: seconds to wait for the connection and for each read.
        progress: show a tqdm progress bar on stderr.

    Returns:
        `Path(dest)`.

    Raises:
        DownloadError: the download failed or the checksum did not match (the message says which).

    Example:
        >>> download_file("http://127.0.0.1:8000/train.csv", "cache/train.csv",  # doctest: +SKIP
        ...               md5="b1a00f826fdfbd249f79597b59e1dc12")
        PosixPath('cache/train.csv')
        >>> sorted(os.listdir("cache"))  # doctest: +SKIP
        ['train.csv', 'train.csv.lock']
    """
    if not isinstance(md5, str) or len(md5) != 32:
        raise ValueError(f"md5 must be a 32-character hex string, got {md5!r}")
    dest = Path(dest)
    try:
        dest.parent.mkdir(parents=True, exist_ok=True)
    except OSError as e:
        raise WriteError(e.errno, describe_os_error(e, dest.parent, action="create the directory")) from e
    try:
        lock = FileLock(str(dest) + ".lock")
        lock.acquire()
    except OSError as e:  # a read-only or foreign cache directory
        raise WriteError(e.errno, describe_os_error(e, Path(str(dest) + ".lock"), action="create the lock file")) from e
    try:
        # Under the lock nobody else downloads `dest`: temps of dead writers can go, also the old
        # `.NAME.XXXXXXXX.part` names of textpipe 0.1.0, which carried no PID.
        sweep_stale_temps(dest)
        for part in dest.parent.glob(f".{dest.name}.*.part"):
            with contextlib.suppress(OSError):
                part.unlink()
        if dest.is_dir():
            raise IsADirectoryError(f"{dest} is a directory, so the download cannot be stored there; remove it "
                                    "or choose another cache directory")
        if dest.exists():  # another process finished while we waited for the lock
            return dest
        _fetch(url, dest, md5=md5.lower(), timeout=timeout, progress=progress)
    finally:
        lock.release()
    return dest


class _Abort(Exception):
    """Carries a DownloadError out of `atomic_write`, which would report any OSError as a write error."""

    def __init__(self, error: DownloadError):
        super().__init__(str(error))
        self.error = error


def _fetch(url: str, dest: Path, *, md5: str, timeout: float, progress: bool) -> None:
    """Streams `url` into a temp file beside `dest`, checks the MD5, then renames it into place.

    On any failure (KeyboardInterrupt included) `atomic_write` removes the temp file; a write error
    (disk full, permission) is a `WriteError` naming `dest`, a network or checksum failure a `DownloadError`.
    """
    try:
        with atomic_write(dest, mode="wb") as f:
            try:
                got_md5, n_bytes = stream_url(url, f, timeout=timeout, progress=progress, desc=dest.name)
            except DownloadError as e:
                raise _Abort(e) from None
            if got_md5 != md5:
                raise _Abort(DownloadError(
                    f"checksum mismatch for {url}: expected MD5 {md5}, got {got_md5} ({n_bytes} bytes); "
                    f"the downloaded file was removed and {dest} was not written. If the server's file "
                    f"changed on purpose, pass the new md5; otherwise retry."))
    except _Abort as abort:
        raise abort.error from abort.error.__cause__  # the network error, as _stream raised it


def stream_url(url: str, f, *, timeout: float, progress: bool, desc: str, hasher=None) -> tuple[str, int]:
    """Copies the body of `url` into `f`; returns (hex digest, byte count); `hasher`: a hashlib object (md5).

    Raises:
        DownloadError: a network failure (HTTP status, unreachable, cut short).
        OSError: writing to `f` failed (disk full, ...): not a network error, so not a DownloadError.
    """
    h = hasher if hasher is not None else hashlib.md5()
    n = 0
    total = None
    try:
        resp = urllib.request.urlopen(url, timeout=timeout)
    except urllib.error.HTTPError as e:
        raise DownloadError(f"download of {url} failed: HTTP {e.code} {e.reason}") from e
    except urllib.error.URLError as e:
        raise DownloadError(f"could not reach {url}: {e.reason}") from e
    except ValueError as e:  # "unknown url type": a relative path that does not exist, say
        raise DownloadError(f"{url!r} is neither an existing file nor a URL (http, https, ftp, file): {e}") from e
    except (http.client.HTTPException, OSError) as e:
        raise DownloadError(f"could not reach {url}: {type(e).__name__}: {e}") from e
    with resp:
        length = resp.headers.get("Content-Length")
        total = int(length) if length and length.isdigit() else None
        with progress_bar(total=total, unit="B", unit_scale=True, unit_divisor=1024, desc=desc,
                  disable=not progress, leave=False) as bar:
            while True:
                try:
                    # subtle: HTTPResponse.read(amt) returns b"" (no IncompleteRead) when the
                    # server closes early, so the byte count is checked against Content-Length below.
                    chunk = resp.read(_CHUNK)
                except (http.client.HTTPException, OSError) as e:  # IncompleteRead, reset, timeout
                    raise DownloadError(
                        f"download of {url} was interrupted after {n} bytes: {type(e).__name__}: {e}; "
                        f"the partial file was removed") from e
                if not chunk:
                    break
                h.update(chunk)
                f.write(chunk)  # outside the network handler: a full disk is not a network error
                n += len(chunk)
                bar.update(len(chunk))
    if total is not None and n != total:
        raise DownloadError(
            f"download of {url} was cut short: got {n} of {total} bytes (connection dropped?); "
            f"the partial file was removed")
    return h.hexdigest(), n
