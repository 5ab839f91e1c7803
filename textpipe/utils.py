"""torchtext's ``torchtext.utils``: ``download_from_url``, ``extract_archive``, ``get_asset_local_path``, ``validate_file``.

The same signatures and return values as torchtext 0.18, with three guarantees it did not give: a download
or an extracted file only ever appears complete (streamed into a temporary file beside it, renamed into place
after the hash matched), a bad hash leaves nothing behind, and an archive member that would land outside the
target directory (absolute path, ``..``, a link pointing out, a device file) is refused before anything is
extracted. Errors name the file and say what to do.

    from textpipe.utils import download_from_url, extract_archive
    path = download_from_url("https://host/validation.tar.gz", root=".data")   # '/abs/.data/validation.tar.gz'
    files = extract_archive(path)                                              # ['/abs/.data/val.de', ...]

Run the tests: python3 -m pytest -q tests/test_utils.py
"""
from __future__ import annotations

import gzip
import hashlib
import os
import shutil
import tarfile
import tempfile
import urllib.error
import urllib.parse
import urllib.request
import zipfile
from typing import IO, Callable

from textpipe.data.download import DownloadError, default_cache_dir, stream_url

__all__ = ["download_from_url", "extract_archive", "get_asset_local_path", "validate_file", "reporthook",
           "HashMismatchError", "ArchiveError", "UnsafeArchiveError", "UnsupportedArchiveError"]

_CHUNK = 1 << 20  # 1 MiB per read
_HASHES = {"sha256": hashlib.sha256, "md5": hashlib.md5}
_TAR_SUFFIXES = (".tar.gz", ".tgz", ".tar", ".tar.bz2", ".tbz2", ".tar.xz", ".txz")
_SUPPORTED = ".zip, .tar, .tar.gz, .tgz, .tar.bz2, .tar.xz, or .gz (one gzip-compressed file)"


class HashMismatchError(DownloadError, RuntimeError):
    """A file's hash is not the expected one. A ``RuntimeError`` as in torchtext, and an ``OSError`` (DownloadError)."""


class ArchiveError(ValueError):
    """An archive could not be read (truncated or not the format its name says); nothing partial was kept."""


class UnsafeArchiveError(ArchiveError):
    """An archive member would be written outside the target directory; nothing was extracted."""


class UnsupportedArchiveError(NotImplementedError, ValueError):
    """The archive's name has no supported suffix (torchtext raised ``NotImplementedError``)."""


def _new_hash(hash_type: str):
    if hash_type not in _HASHES:
        raise ValueError(f"hash_type must be one of {sorted(_HASHES)}, got {hash_type!r}")
    return _HASHES[hash_type]()


def validate_file(file_obj: IO[bytes], hash_value: str, hash_type: str = "sha256") -> bool:
    """True if the bytes read from ``file_obj`` (to its end) have the hex digest ``hash_value``.

    Raises:
        ValueError: ``hash_type`` is neither ``"sha256"`` nor ``"md5"``.

    Example:
        >>> import io
        >>> validate_file(io.BytesIO(b""), "d41d8cd98f00b204e9800998ecf8427e", "md5")
        True
    """
    h = _new_hash(hash_type)
    while chunk := file_obj.read(_CHUNK):
        h.update(chunk)
    return h.hexdigest() == hash_value.lower()


def _check_hash(path: str, hash_value: str, hash_type: str) -> None:
    with open(path, "rb") as f:
        if not validate_file(f, hash_value, hash_type):
            raise HashMismatchError(
                f"{path} exists but its {hash_type} is not {hash_value}; delete it (or pass overwrite=True) "
                f"to download it again")


def reporthook(t) -> Callable[..., None]:
    """Adapt a ``tqdm`` bar to ``urllib.request.urlretrieve``'s ``reporthook(blocks, block_size, total)``."""
    last = [0]

    def inner(b: int = 1, bsize: int = 1, tsize: int | None = None) -> None:
        if tsize is not None:
            t.total = tsize
        t.update((b - last[0]) * bsize)
        last[0] = b

    return inner


def download_from_url(url: str, path: str | os.PathLike | None = None, root: str | os.PathLike = ".data",
                      overwrite: bool = False, hash_value: str | None = None, hash_type: str = "sha256", *,
                      timeout: float = 60.0, progress: bool = True) -> str:
    """Download ``url`` to ``path`` (default ``root/<file name of the URL>``) unless it exists; return the path.

    An existing file is returned as it is (after checking ``hash_value`` when given) unless ``overwrite``.
    Otherwise the body is streamed into a temporary file beside ``path`` and renamed into place once the hash
    matched, so ``path`` never holds a partial or unverified download; concurrent callers may each download,
    and the last rename wins with the same bytes. An interrupted download starts again from the beginning
    (torchtext did not resume either).

    Args:
        url: An http(s), ftp or file URL.
        path: Where to store the file; its directory is created.
        root: The directory used when ``path`` is None.
        overwrite: Download again even if ``path`` exists.
        hash_value: Expected hex digest of the file; None skips the check.
        hash_type: ``"sha256"`` or ``"md5"``.
        timeout: Seconds to wait for the connection and for each read.
        progress: Show a progress bar on stderr.

    Returns:
        The absolute path of the file, as a str.

    Raises:
        DownloadError: The server could not be reached, answered an error status, or the body was cut short.
        HashMismatchError: The file (downloaded or already there) does not have ``hash_value``; a download
            with the wrong hash is removed.
        ValueError: ``hash_type`` is not supported, or no file name can be taken from ``url``.

    Example:
        >>> download_from_url("http://127.0.0.1:8000/validation.tar.gz", root="/tmp/data")  # doctest: +SKIP
        '/tmp/data/validation.tar.gz'
    """
    expected = None if hash_value is None else hash_value.lower()
    _new_hash(hash_type)  # reject an unknown hash_type before any network access
    if path is None:
        filename = os.path.basename(urllib.parse.urlsplit(url).path)
        if not filename:
            raise ValueError(f"cannot take a file name from the URL {url!r}; pass path=... to say where to store it")
        path = os.path.join(os.path.abspath(root), filename)
    path = os.path.abspath(path)
    if os.path.isdir(path):
        raise IsADirectoryError(f"{path} is a directory, so {url} cannot be downloaded there; pass another path")
    if os.path.exists(path) and not overwrite:
        if expected:
            _check_hash(path, expected, hash_type)
        return path
    directory = os.path.dirname(path)
    try:
        os.makedirs(directory, exist_ok=True)
    except OSError as e:
        raise OSError(e.errno, f"cannot create the download directory {directory}: {e.strerror}") from e

    def write(f: IO[bytes]) -> None:
        got, _ = stream_url(url, f, hasher=_new_hash(hash_type), timeout=timeout, progress=progress,
                            desc=os.path.basename(path))
        if expected and got != expected:
            raise HashMismatchError(
                f"the {hash_type} of {url} is {got}, expected {expected}; the download was removed and {path} "
                f"was not written. If the file changed on purpose, pass its new hash_value; otherwise retry.")

    _write_atomically(path, write)
    return path


def _write_atomically(dest: str, write: Callable[[IO[bytes]], None], mode: int = 0o644) -> None:
    """Call ``write(f)`` on a temporary file beside ``dest``, then rename it to ``dest``; on any error remove it.

    subtle: mkstemp creates the file 0600; ``mode`` (0644, as textpipe.fileio writes) keeps a shared cache readable.
    """
    directory = os.path.dirname(dest) or "."
    fd, tmp = tempfile.mkstemp(dir=directory, prefix=f".{os.path.basename(dest)}.", suffix=".part")
    try:
        with os.fdopen(fd, "wb") as f:
            write(f)
        os.chmod(tmp, mode)
        os.replace(tmp, dest)
    except BaseException:  # KeyboardInterrupt too: never leave the temporary file behind
        try:
            os.unlink(tmp)
        except FileNotFoundError:
            pass
        raise


def get_asset_local_path(asset_path: str, overwrite: bool = False) -> str:
    """Return ``asset_path`` if it is a local file, else download it once into textpipe's cache and return that path.

    The cache is ``default_cache_dir() / "assets"`` ($TEXTPIPE_CACHE, else ~/.cache/textpipe).

    Example:
        >>> get_asset_local_path("/home/user/file.txt")  # doctest: +SKIP
        '/home/user/file.txt'
    """
    if os.path.exists(asset_path):
        return asset_path
    return download_from_url(asset_path, root=default_cache_dir() / "assets", overwrite=overwrite)


def extract_archive(from_path: str | os.PathLike, to_path: str | os.PathLike | None = None,
                    overwrite: bool = False) -> list[str]:
    """Extract a .zip, .tar[.gz|.bz2|.xz]/.tgz or .gz file; return the paths of its files, in archive order.

    A file that already exists is kept (and still listed) unless ``overwrite``. Each file is written to a
    temporary name and renamed, so a killed extraction never leaves a truncated file that a later call would
    keep. Every member is checked before anything is written: absolute names, ``..`` components, links whose
    target is absolute or contains ``..``, and device or FIFO entries are refused.

    Args:
        from_path: The archive; its suffix says its format (as in torchtext).
        to_path: The target directory (default: the archive's directory). For a ``.gz`` the file is written
            there as the archive's name without ``.gz`` (torchtext always wrote it beside the archive).
        overwrite: Replace files that already exist.

    Returns:
        ``os.path.join(to_path, member_name)`` for each regular file, as torchtext returned them.

    Raises:
        FileNotFoundError: ``from_path`` does not exist.
        UnsupportedArchiveError: The suffix is none of the supported ones (a ``NotImplementedError``).
        UnsafeArchiveError: A member would land outside ``to_path``; nothing was extracted.
        ArchiveError: The archive is damaged or not in the format its name says.

    Example:
        >>> extract_archive(".data/validation.tar.gz")  # doctest: +SKIP
        ['.data/val.de', '.data/val.en']
    """
    from_path = os.fspath(from_path)
    to_path = os.path.dirname(from_path) if to_path is None else os.fspath(to_path)
    if not os.path.isfile(from_path):
        raise FileNotFoundError(f"{from_path}: no such archive file")
    name = from_path.lower()
    try:
        if name.endswith(_TAR_SUFFIXES):
            return _extract_tar(from_path, to_path, overwrite)
        if name.endswith(".zip"):
            return _extract_zip(from_path, to_path, overwrite)
        if name.endswith(".gz"):
            return _extract_gz(from_path, to_path, overwrite)
    except (tarfile.TarError, zipfile.BadZipFile, gzip.BadGzipFile, EOFError, zipfile.LargeZipFile, KeyError) as e:
        detail = " ".join(str(e).split())  # tarfile's message spans lines: keep the error on one
        raise ArchiveError(f"{from_path} is damaged or not the archive its name says ({type(e).__name__}: {detail}); "
                           f"delete it and download it again") from e
    raise UnsupportedArchiveError(f"{from_path}: cannot extract it: the name must end in {_SUPPORTED}")


def _unsafe_name(name: str) -> str | None:
    """Why a member name (or link target) could reach outside the target directory, or None if it cannot."""
    if name.startswith(("/", "\\")) or (len(name) > 1 and name[1] == ":"):
        return "an absolute path"
    if ".." in name.replace("\\", "/").split("/"):
        return "a '..' component"
    return None


def _refuse(archive: str, member: str, why: str, to_path: str) -> UnsafeArchiveError:
    return UnsafeArchiveError(f"refusing to extract {archive}: member {member!r} {why}, so it could be written "
                              f"outside {to_path or '.'}; nothing was extracted. Extract it by hand only if you "
                              f"trust its source.")


def _extract_tar(from_path: str, to_path: str, overwrite: bool) -> list[str]:
    with tarfile.open(from_path, "r:*") as tar:
        members = tar.getmembers()  # reads the whole index: a truncated archive fails here, before any write
        for m in members:  # check everything first, so a refused archive writes nothing
            why = _unsafe_name(m.name)
            if why is None and (m.issym() or m.islnk()):
                target_why = _unsafe_name(m.linkname)
                why = None if target_why is None else f"is a link to {m.linkname!r}, {target_why}"
            elif why is not None:
                why = f"has {why}"
            if why is None and not (m.isfile() or m.isdir() or m.issym() or m.islnk()):
                why = "is a device or FIFO entry"
            if why is not None:
                raise _refuse(from_path, m.name, why, to_path)
        files = []
        for m in members:
            dest = os.path.join(to_path, m.name)
            if m.isdir():
                os.makedirs(dest, exist_ok=True)
                continue
            if m.issym():
                if overwrite or not os.path.lexists(dest):
                    os.makedirs(os.path.dirname(dest) or ".", exist_ok=True)
                    if os.path.lexists(dest):
                        os.unlink(dest)
                    os.symlink(m.linkname, dest)
                continue
            files.append(dest)  # a regular file, or a hard link (written as a copy of its target)
            if os.path.exists(dest) and not overwrite:
                continue
            os.makedirs(os.path.dirname(dest) or ".", exist_ok=True)
            src = tar.extractfile(m)
            _write_atomically(dest, lambda f: shutil.copyfileobj(src, f, _CHUNK), mode=(m.mode & 0o755) | 0o600)
    return files


def _extract_zip(from_path: str, to_path: str, overwrite: bool) -> list[str]:
    with zipfile.ZipFile(from_path) as zf:
        names = zf.namelist()
        for name in names:
            why = _unsafe_name(name)
            if why is not None:
                raise _refuse(from_path, name, f"has {why}", to_path)
        files = []
        for name in names:
            dest = os.path.join(to_path, name)
            if name.endswith("/"):
                os.makedirs(dest, exist_ok=True)
                continue
            files.append(dest)
            if os.path.exists(dest) and not overwrite:
                continue
            os.makedirs(os.path.dirname(dest) or ".", exist_ok=True)
            with zf.open(name) as src:  # a CRC mismatch raises BadZipFile at the end: the temp file is removed
                _write_atomically(dest, lambda f: shutil.copyfileobj(src, f, _CHUNK))
    return files


def _extract_gz(from_path: str, to_path: str, overwrite: bool) -> list[str]:
    dest = os.path.join(to_path, os.path.basename(from_path)[:-3])
    if os.path.exists(dest) and not overwrite:
        return [dest]
    if to_path:
        os.makedirs(to_path, exist_ok=True)
    with gzip.open(from_path, "rb") as src:
        _write_atomically(dest, lambda f: shutil.copyfileobj(src, f, _CHUNK))
    return [dest]
