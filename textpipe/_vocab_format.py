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
atomically (``textpipe.fileio.atomic_write``): a failed save keeps the previous file.
"""
from __future__ import annotations

import errno
import hashlib
import re
from pathlib import Path

from textpipe.fileio import atomic_write, describe_os_error

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


def _digest(lines: list[str]) -> str:
    return hashlib.sha256(("\n".join(lines) + "\n").encode("utf-8")).hexdigest()  # each line + "\n", one pass


def save(path: str | Path, itos: list[str], default_index: int | None, tokenizer: str) -> None:
    default = "none" if default_index is None else str(default_index)
    head = [f"{MAGIC} {VERSION}", f"tokenizer {tokenizer}", f"default_index {default}", f"size {len(itos)}"]
    body = [escape(t) for t in itos]
    lines = [*head, f"sha256 {_digest(head + body)}", *body]
    # subtle: atomic_write's text mode uses newline=""; every line break inside a token is escaped
    with atomic_write(path, mode="w") as f:
        f.write("\n".join(lines) + "\n")


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
    path = Path(path)
    text = _decode(_read(path), path)
    if not text.endswith("\n"):
        raise ValueError(f"{path}: the file does not end with a newline; it is truncated or not a "
                         f"textpipe vocab (expected a first line '{MAGIC} {VERSION}')")
    lines = text[:-1].split("\n")  # subtle: split on "\n" only; a "\r" inside a line is data
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
    if size != len(lines) - first + 1:
        raise ValueError(f"{path}: line {fields.index('size') + 2} says size {size} but the file holds "
                         f"{len(lines) - first + 1} token lines (lines {first}..{len(lines)}); it is "
                         f"truncated or was edited")
    if "sha256" in values:
        digest = _digest(lines[:first - 2] + lines[first - 1:])
        if values["sha256"] != digest:
            raise ValueError(f"{path}: checksum mismatch (line {first - 1} says sha256 "
                             f"{values['sha256'][:16]}..., the content hashes to {digest[:16]}...): the "
                             f"file was damaged or edited after it was written; re-create it with "
                             f"vocab.save(path)")
    try:
        itos = [unescape(line, lineno) for lineno, line in enumerate(lines[first - 1:], start=first)]
    except ValueError as e:
        raise ValueError(f"{path}: {e}") from None
    if len(set(itos)) != len(itos):  # rare: find the first duplicate for the message
        seen = {}
        for lineno, token in enumerate(itos, start=first):
            if token in seen:
                raise ValueError(f"{path}: line {lineno}: duplicate token {token!r} (first on line "
                                 f"{seen[token]})")
            seen[token] = lineno
    return itos, default_index, values.get("tokenizer", "basic_english")
