"""The ``textpipe-vocab 2`` text format used by ``Vocab.save`` / ``Vocab.load`` (version 1 is still read).

    textpipe-vocab 2
    tokenizer basic_english  (a registered tokenizer name)
    default_index 1          (or: default_index none)
    size 4
    sha256 9f86d0...         SHA-256 of every other line of the file (bytes, each with its "\\n")
    <pad>
    <unk>
    new\\x20york              one token per line, id = line number - 6
    caf\\u00e9-ok             (only characters that would be invisible or ambiguous are escaped)

Version 1 has no ``tokenizer`` and ``sha256`` lines (tokens from line 4) and means ``basic_english``.
Escapes: ``\\\\`` for a backslash; ``\\xHH``, ``\\uHHHH``, ``\\UHHHHHHHH`` for every whitespace or
non-printable code point (space, tab, newline, NUL, ZWSP, BOM, lone surrogates...). Every other character
is written as itself in UTF-8, so any token string, including ``""``, round-trips. Files are written
atomically (``textpipe.core.fileio.atomic_write``): a failed save keeps the previous file.
"""
from __future__ import annotations

import errno
import hashlib
import re
from pathlib import Path

import numpy as np

from textpipe.text._store import decode_all, encode_tokens, token_at
from textpipe.core.fileio import atomic_write, describe_os_error
from textpipe.text.tokenizer import get_tokenizer

MAGIC, VERSION = "textpipe-vocab", 2
_UNESCAPE = re.compile(r"\\(?:(\\)|x([0-9a-fA-F]{2})|u([0-9a-fA-F]{4})|U([0-9a-fA-F]{8})|(.?))", re.S)
_HEADER = {1: ("default_index", "size"), 2: ("tokenizer", "default_index", "size", "sha256")}


def _escape_char(c: str) -> str:
    if c == "\\":
        return "\\\\"
    n = ord(c)
    return f"\\x{n:02x}" if n < 0x100 else f"\\u{n:04x}" if n < 0x10000 else f"\\U{n:08x}"


def escape(token: str) -> str:
    r"""One line of the file for ``token``: ``escape('a b\\') == 'a\\x20b\\\\'``."""
    # subtle: no printable character but " " is whitespace (checked over all of Unicode), so this C-speed test
    # is `not any(c.isspace() or c == "\\" ...)` on a printable token
    if token.isprintable() and " " not in token and "\\" not in token:
        return token
    return "".join(_escape_char(c) if c == "\\" or c.isspace() or not c.isprintable() else c
                   for c in token)


def unescape(line: str, lineno: int) -> str:
    """Invert ``escape``; a malformed escape raises ``ValueError`` naming ``lineno``."""
    def one(m: re.Match) -> str:
        if m.group(1):
            return "\\"
        hexdigits = m.group(2) or m.group(3) or m.group(4)
        if hexdigits is None or int(hexdigits, 16) > 0x10FFFF:
            raise ValueError(f"line {lineno}: bad escape {m.group(0)!r} in {line!r}; expected \\\\, "
                             f"\\xHH, \\uHHHH or \\UHHHHHHHH (was the file edited by hand?)")
        return chr(int(hexdigits, 16))
    return _UNESCAPE.sub(one, line) if "\\" in line else line


def save(path: str | Path, itos: list[str], default_index: int | None, tokenizer: str) -> None:
    save_store(path, *encode_tokens(itos), default_index, tokenizer)


def save_store(path: str | Path, data: bytes, offsets: np.ndarray, default_index: int | None, tokenizer: str) -> None:
    """Write the tokens of a store (``_vocab_store``): the body is assembled in numpy; only the tokens that
    may need an escape (a byte that is not printable ASCII, a space or a backslash) are looked at in Python."""
    n = len(offsets) - 1
    default = "none" if default_index is None else str(default_index)
    head = "\n".join([f"{MAGIC} {VERSION}", f"tokenizer {tokenizer}", f"default_index {default}",
                      f"size {n}"]) + "\n"
    arr = np.frombuffer(data, np.uint8)
    newlines = offsets[1:] + np.arange(n)  # where each token's line ends in the body
    mask = np.ones(len(data) + n, bool)
    mask[newlines] = False
    body = np.empty(len(data) + n, np.uint8)
    body[mask], body[newlines] = arr, 10
    del mask
    odd = np.flatnonzero((arr < 0x21) | (arr > 0x7E) | (arr == 0x5C))  # bytes of tokens that may need escapes
    pieces, pos = [], 0
    for i in np.unique(np.searchsorted(offsets, odd, side="right") - 1).tolist():
        token = token_at(data, offsets, i)
        line = escape(token)
        if line != token:
            start = int(offsets[i]) + i
            pieces += [body[pos:start].tobytes(), line.encode("utf-8")]
            pos = int(newlines[i])
    body = body.tobytes() if not pieces else b"".join([*pieces, body[pos:].tobytes()])
    digest = hashlib.sha256(head.encode("utf-8"))
    digest.update(body)
    # subtle: every line break inside a token is escaped, so each "\n" of the body ends one token's line
    with atomic_write(path, mode="wb") as f:
        f.write(f"{head}sha256 {digest.hexdigest()}\n".encode("utf-8"))
        f.write(body)


def _field(lines: list[str], lineno: int, name: str, path) -> str:
    line = lines[lineno - 1] if lineno <= len(lines) else "<end of file>"
    key, _, value = line.partition(" ")
    if key != name or not value:
        raise ValueError(f"{path}: line {lineno}: expected '{name} <value>', found {line!r}")
    return value


def _read(path: Path) -> bytes:
    try:
        with open(path, "rb") as f:
            return f.read()
    except OSError as e:
        if e.errno == errno.ENOENT and path.parent.is_dir():
            message = f"vocab file {path} does not exist: check the path (save it with vocab.save(path))"
        else:
            message = describe_os_error(e, path, action="read the vocab file")
        raise type(e)(message) from None  # the same OSError subclass, with a message that says it all


def _decode(raw: bytes, path: Path) -> str:
    try:
        return raw.decode("utf-8")
    except UnicodeDecodeError as e:
        line = raw.count(b"\n", 0, e.start) + 1
        column = e.start - (raw.rfind(b"\n", 0, e.start) + 1) + 1
        raise ValueError(f"{path}: line {line}: not valid UTF-8 (byte 0x{raw[e.start]:02x} at column "
                         f"{column}); the file is damaged or not a textpipe vocab file") from None


def load(path: str | Path) -> tuple[list[str], int | None, str]:
    """``(itos, default_index, tokenizer name)`` of a version 1 or 2 file; every error names the file."""
    data, offsets, default_index, name = load_store(path)
    itos = decode_all(data, offsets)
    if len(set(itos)) != len(itos):  # rare: find the first duplicate for the message
        with open(path, "rb") as f:
            version = f.readline().split()[1].decode()
        seen: dict[str, int] = {}
        for lineno, token in enumerate(itos, start=len(_HEADER[int(version)]) + 2):
            if token in seen:
                raise ValueError(f"{path}: line {lineno}: duplicate token {token!r} (first on line "
                                 f"{seen[token]})")
            seen[token] = lineno
    return itos, default_index, name


def load_store(path: str | Path) -> tuple[bytes, np.ndarray, int | None, str]:
    """``(data, offsets, default_index, tokenizer name)`` of a version 1 or 2 file, as a token store (no Python
    object per token; lines holding a backslash are unescaped one by one). Duplicates are not checked here
    (the ``Vocab`` finds them with its lookup table, then ``load`` names them). Every error names the file."""
    path = Path(path)
    raw = _read(path)
    _decode(raw, path)  # only the check (and its message): the tokens stay bytes
    if not raw.endswith(b"\n"):
        raise ValueError(f"{path}: the file does not end with a newline; it is truncated or not a "
                         f"textpipe vocab (expected a first line '{MAGIC} {VERSION}')")
    starts = [0]  # byte offsets of the header lines
    while len(starts) < 6 and (end := raw.find(b"\n", starts[-1])) >= 0:
        starts.append(end + 1)
    lines = [raw[a:b - 1].decode("utf-8") for a, b in zip(starts, starts[1:])]
    magic, _, version = lines[0].partition(" ")
    if magic != MAGIC or version not in ("1", "2"):
        raise ValueError(f"{path}: line 1: expected the header '{MAGIC} {VERSION}' (or version 1), found "
                         f"{lines[0][:60]!r}; it is not a textpipe vocab file or from a newer textpipe")
    fields = _HEADER[int(version)]
    values = {name: _field(lines, n, name, path) for n, name in enumerate(fields, start=2)}
    first = len(fields) + 2  # line number of the first token
    try:
        default_index = None if values["default_index"] == "none" else int(values["default_index"])
        size = int(values["size"])
    except ValueError:
        raise ValueError(f"{path}: expected integers, found default_index {values['default_index']!r} "
                         f"and size {values['size']!r}") from None
    body_start = starts[first - 1] if len(starts) >= first else len(raw)
    body = np.frombuffer(raw, np.uint8)[body_start:]
    newlines = np.flatnonzero(body == 10)
    n = newlines.size
    if size != n:
        raise ValueError(f"{path}: line {fields.index('size') + 2} says size {size} but the file holds "
                         f"{n} token lines (lines {first}..{first + n - 1}); it is truncated or was edited")
    if "sha256" in values:
        h = hashlib.sha256(memoryview(raw)[:starts[first - 2]])
        h.update(memoryview(raw)[body_start:])
        digest = h.hexdigest()
        if values["sha256"] != digest:
            raise ValueError(f"{path}: checksum mismatch (line {first - 1} says sha256 "
                             f"{values['sha256'][:16]}..., the content hashes to {digest[:16]}...): the "
                             f"file was damaged or edited after it was written; re-create it with "
                             f"vocab.save(path)")
    keep = np.ones(body.size, bool)
    keep[newlines] = False
    data = body[keep].tobytes()
    del keep
    offsets = np.zeros(n + 1, np.int64)
    offsets[1:] = newlines - np.arange(n)
    escaped = np.unique(np.searchsorted(newlines, np.flatnonzero(body == 0x5C)))  # lines holding a backslash
    if escaped.size:
        pieces, sizes, pos = [], np.diff(offsets), 0
        try:
            for i in escaped.tolist():
                a, b = int(offsets[i]), int(offsets[i + 1])
                token = unescape(data[a:b].decode("utf-8"), first + i).encode("utf-8", "surrogatepass")
                pieces += [data[pos:a], token]
                sizes[i], pos = len(token), b
        except ValueError as e:
            raise ValueError(f"{path}: {e}") from None
        data = b"".join([*pieces, data[pos:]])
        np.cumsum(sizes, out=offsets[1:])
    name = values.get("tokenizer", "basic_english")
    try:
        get_tokenizer(name)
    except ValueError:
        raise ValueError(f"{path}: the vocabulary was built with the tokenizer {name!r}, which is not "
                         f"registered in this process; call textpipe.text.register_tokenizer({name!r}, fn) "
                         "with the same function before Vocab.load") from None
    return data, offsets, default_index, name
