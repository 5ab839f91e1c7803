"""The on-disk corpus format: one shard file, or a manifest naming several. Read with one ``mmap``.

Shard file, version 2:

    bytes 0-15   b"textpipe-corpus\\n"
    bytes 16-23  little-endian uint64: length H of the JSON header
    bytes 24-    the JSON header (H bytes): format_version, n_rows, n_ids, data_start, arrays, sha256
    data_start-  the arrays ids (+ a guard of max(lengths) zeros), offsets, labels, each 64-byte aligned

``arrays[name] = [byte offset, count, dtype]``; ids are the smallest unsigned dtype for the vocabulary
(uint16 up to 65,536 ids, else uint32), offsets int64 (local to the shard), labels the smallest that holds
them. ``sha256[name]`` is the digest of that array's bytes. The header is written last, into a reserved
4 KiB slot, so a writer can stream the ids without knowing their number in advance.

Manifest (version 1): a JSON file ``{"format": "textpipe-corpus-manifest", "format_version": 1,
"n_rows", "n_ids", "shards": [{"file", "n_rows", "n_ids", "sha256"}]}``; shard files live beside it and
their names carry a build id, so a rebuild never overwrites the shards an older manifest names.
"""
from __future__ import annotations

import hashlib
import json
import mmap
import os
from pathlib import Path

import numpy as np

MAGIC = b"textpipe-corpus\n"
MANIFEST = "textpipe-corpus-manifest"
VERSION = 2
MANIFEST_VERSION = 1
ALIGN = 64
HEADER_SLOT = 4096  # bytes reserved for magic + length + JSON header; data starts here
ARRAYS = ("ids", "offsets", "labels")
ID_DTYPES = ("<u2", "<u4", "<i8")  # <i8: in-memory corpora with negative or huge ids
LABEL_DTYPES = ("|u1", "<u2", "<i8")
_DTYPES = {"ids": ID_DTYPES, "offsets": ("<i8",), "labels": LABEL_DTYPES}
_HASH_BLOCK = 1 << 22
_FIELD_MAX = 1 << 62  # offsets/counts above this are corrupt whatever the file size (then checked against it)


def smallest_dtype(lo: int, hi: int, choices: tuple[str, ...]) -> np.dtype:
    """The first of ``choices`` that holds every value in ``lo..hi``."""
    for name in choices:
        info = np.iinfo(np.dtype(name))
        if info.min <= lo and hi <= info.max:
            return np.dtype(name)
    raise ValueError(f"values {lo}..{hi} do not fit any of {choices}")


def id_dtype_for(vocab_size: int) -> np.dtype:
    """uint16 for vocabularies up to 65,536 ids, else uint32."""
    return smallest_dtype(0, max(int(vocab_size) - 1, 0), ID_DTYPES[:2])


def align(n: int) -> int:
    return -(-n // ALIGN) * ALIGN


def header_bytes(header: dict) -> bytes:
    blob = json.dumps(header, separators=(",", ":")).encode()
    if len(MAGIC) + 8 + len(blob) > HEADER_SLOT:
        raise ValueError(f"corpus header of {len(blob)} bytes does not fit the {HEADER_SLOT}-byte slot")
    return MAGIC + len(blob).to_bytes(8, "little") + blob


def _fix(path) -> str:
    return f"delete {path} and build it again (EncodedCorpus.save or CorpusWriter)"


def _bad(path, what: str) -> ValueError:
    return ValueError(f"{path}: corrupt corpus ({what}); {_fix(path)}")


def _nonneg_int(value, what: str, path, limit: int) -> int:
    if type(value) is not int or not 0 <= value <= limit:
        raise _bad(path, f"{what} must be an int in 0..{limit}, got {value!r}")
    return value


def read_header(f, path, size: int) -> dict:
    """Parse and bound-check a shard header; every field is checked against the file ``size``."""
    magic = f.read(len(MAGIC))
    if magic != MAGIC:
        raise ValueError(f"{path} is not a textpipe corpus file: expected it to start with {MAGIC!r}, "
                         f"found {magic[:16]!r}; {_fix(path)}")
    raw = f.read(8)
    if len(raw) < 8:
        raise ValueError(f"{path}: corrupt corpus header (file ends after {len(MAGIC) + len(raw)} bytes); {_fix(path)}")
    n = int.from_bytes(raw, "little")
    if n > size - len(MAGIC) - 8:
        raise ValueError(f"{path}: corrupt corpus header (header length {n} exceeds the file size "
                         f"{size}); {_fix(path)}")
    try:
        header = json.loads(f.read(n))
        version = header["format_version"]
    except (ValueError, KeyError, TypeError) as err:
        raise ValueError(f"{path}: corrupt corpus header ({err!r}); {_fix(path)}") from None
    if version != VERSION:
        raise ValueError(f"{path}: corpus format_version {version!r} is not supported (this textpipe reads "
                         f"version {VERSION}); {_fix(path)}")
    try:
        arrays, digests = header["arrays"], header["sha256"]
        n_rows = _nonneg_int(header["n_rows"], "n_rows", path, size)  # rows and ids take >= 1 byte each
        n_ids = _nonneg_int(header["n_ids"], "n_ids", path, size)
        max_length = _nonneg_int(header["max_length"], "max_length", path, size)
        out = {"n_rows": n_rows, "n_ids": n_ids, "max_length": max_length, "arrays": {}, "sha256": {}}
        for name in ARRAYS:
            offset, count, dtype = arrays[name]
            if dtype not in _DTYPES[name]:
                raise _bad(path, f"{name} dtype must be one of {_DTYPES[name]}, got {dtype!r}")
            item = np.dtype(dtype).itemsize
            offset = _nonneg_int(offset, f"{name} offset", path, _FIELD_MAX)
            count = _nonneg_int(count, f"{name} count", path, _FIELD_MAX)
            if offset + count * item > size:
                raise ValueError(f"{path}: corpus file is truncated: {name} needs bytes up to "
                                 f"{offset + count * item}, the file has {size}; {_fix(path)}")
            if not isinstance(digests[name], str):
                raise _bad(path, f"sha256 of {name} must be a hex string")
            out["arrays"][name] = (offset, count, np.dtype(dtype))
            out["sha256"][name] = digests[name]
    except (KeyError, TypeError, ValueError) as err:
        if isinstance(err, ValueError) and str(err).startswith(str(path)):
            raise
        raise ValueError(f"{path}: corrupt corpus header ({err!r}); {_fix(path)}") from None
    return out


def digest_range(fd: int, offset: int, nbytes: int) -> str:
    """sha256 of ``nbytes`` bytes at ``offset`` of the open file ``fd``, read with ``pread``.

    Read through the file (page cache), not the mapping, so verifying adds nothing to this process's RSS.
    """
    h, buf = hashlib.sha256(), bytearray(min(_HASH_BLOCK, max(nbytes, 1)))
    view = memoryview(buf)
    while nbytes > 0:
        got = os.preadv(fd, [view[:min(nbytes, len(buf))]], offset)
        if got <= 0:
            break
        h.update(view[:got])
        offset, nbytes = offset + got, nbytes - got
    return h.hexdigest()


def map_shard(path: Path, *, verify: bool = True) -> dict:
    """Open ``path`` once and map every array from that one file object.

    Returns ``{"source", "offsets", "labels", "n_rows", "n_ids", "sha256"}`` (arrays are read-only views of
    one ``mmap``, which stays open while any of them lives). A concurrent atomic replace of ``path`` cannot
    mix versions: everything comes from the inode opened here.
    """
    with open(path, "rb") as f:
        size = os.fstat(f.fileno()).st_size
        header = read_header(f, path, size)
        if verify:
            for name in ARRAYS:
                offset, count, dtype = header["arrays"][name]
                if digest_range(f.fileno(), offset, count * dtype.itemsize) != header["sha256"][name]:
                    raise _bad(path, f"sha256 of the {name} array does not match its header: the data "
                                     f"changed after it was written")
        mm = mmap.mmap(f.fileno(), 0, access=mmap.ACCESS_READ) if size else None
    arrays = {}
    for name in ARRAYS:
        offset, count, dtype = header["arrays"][name]
        arrays[name] = (np.frombuffer(mm, dtype=dtype, count=count, offset=offset) if count
                        else np.zeros(0, dtype))
    return {"source": arrays["ids"], "offsets": arrays["offsets"], "labels": arrays["labels"],
            "n_rows": header["n_rows"], "n_ids": header["n_ids"], "max_length": header["max_length"],
            "sha256": header["sha256"]}


def is_manifest(path: Path) -> bool:
    with open(path, "rb") as f:
        start = f.read(64).lstrip()
    return start.startswith(b"{") and MANIFEST.encode() in start


def read_manifest(path: Path) -> dict:
    size = path.stat().st_size
    if size > 1 << 30:
        raise ValueError(f"{path}: corrupt corpus manifest (implausible size {size} bytes); {_fix(path)}")
    try:
        manifest = json.loads(path.read_text(encoding="utf-8"))
        if manifest.get("format") != MANIFEST:
            raise ValueError(f"format is {manifest.get('format')!r}")
        if manifest.get("format_version") != MANIFEST_VERSION:
            raise ValueError(f"format_version {manifest.get('format_version')!r} is not supported, this "
                             f"textpipe reads version {MANIFEST_VERSION}")
        shards = [(str(s["file"]), int(s["n_rows"]), int(s["n_ids"]), dict(s["sha256"]))
                  for s in manifest["shards"]]
        if any(Path(name).name != name for name, *_ in shards):
            raise ValueError("shard file names must be plain names in the manifest's directory")
    except (ValueError, KeyError, TypeError, AttributeError) as err:
        raise ValueError(f"{path}: corrupt corpus manifest ({err}); {_fix(path)}") from None
    return {"shards": shards, "n_rows": manifest.get("n_rows"), "n_ids": manifest.get("n_ids")}
