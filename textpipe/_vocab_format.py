"""The ``textpipe-vocab 1`` text format used by ``Vocab.save`` / ``Vocab.load``.

    textpipe-vocab 1
    default_index 1          (or: default_index none)
    size 4
    <pad>
    <unk>
    new\\x20york              one token per line, id = line number - 4
    caf\\u00e9-ok             (only characters that would be invisible or ambiguous are escaped)

Escapes: ``\\\\`` for a backslash; ``\\xHH``, ``\\uHHHH``, ``\\UHHHHHHHH`` for every whitespace or
non-printable code point (space, tab, newline, NUL, ZWSP, BOM, lone surrogates...). Every other character
is written as itself in UTF-8, so any token string, including ``""``, round-trips.
"""
from __future__ import annotations

import re
from pathlib import Path

MAGIC, VERSION = "textpipe-vocab", 1
_UNESCAPE = re.compile(r"\\(?:(\\)|x([0-9a-fA-F]{2})|u([0-9a-fA-F]{4})|U([0-9a-fA-F]{8})|(.?))", re.S)


def _escape_char(c: str) -> str:
    if c == "\\":
        return "\\\\"
    n = ord(c)
    return f"\\x{n:02x}" if n < 0x100 else f"\\u{n:04x}" if n < 0x10000 else f"\\U{n:08x}"


def escape(token: str) -> str:
    r"""One line of the file for ``token``: ``escape('a b\\') == 'a\\x20b\\\\'``."""
    if token.isprintable() and not any(c.isspace() or c == "\\" for c in token):
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


def save(path: str | Path, itos: list[str], default_index: int | None) -> None:
    default = "none" if default_index is None else str(default_index)
    lines = [f"{MAGIC} {VERSION}", f"default_index {default}", f"size {len(itos)}"]
    lines.extend(escape(t) for t in itos)
    # subtle: newline="" and "\n" joins; every other line break inside a token is escaped
    Path(path).write_text("\n".join(lines) + "\n", encoding="utf-8", newline="")


def _field(lines: list[str], lineno: int, name: str, path) -> str:
    line = lines[lineno - 1] if lineno <= len(lines) else "<end of file>"
    key, _, value = line.partition(" ")
    if key != name or not value:
        raise ValueError(f"{path}: line {lineno}: expected '{name} <value>', found {line!r}")
    return value


def load(path: str | Path) -> tuple[list[str], int | None]:
    with open(path, encoding="utf-8", newline="") as f:  # subtle: the default newline=None maps \r to \n
        text = f.read()
    if not text.endswith("\n"):
        raise ValueError(f"{path}: the file does not end with a newline; it is truncated or not a "
                         f"textpipe vocab (expected a first line '{MAGIC} {VERSION}')")
    lines = text[:-1].split("\n")
    if lines[0] != f"{MAGIC} {VERSION}":
        raise ValueError(f"{path}: line 1: expected the header '{MAGIC} {VERSION}', found "
                         f"{lines[0][:60]!r}; only version {VERSION} of this format is supported")
    default = _field(lines, 2, "default_index", path)
    size = _field(lines, 3, "size", path)
    try:
        default_index = None if default == "none" else int(default)
        size_n = int(size)
    except ValueError:
        raise ValueError(f"{path}: line 2 or 3: expected integers, found default_index {default!r} "
                         f"and size {size!r}") from None
    if size_n != len(lines) - 3:
        raise ValueError(f"{path}: line 3 says size {size_n} but the file holds {len(lines) - 3} "
                         f"token lines (lines 4..{len(lines)}); it is truncated or was edited")
    itos, seen = [], {}
    for lineno, line in enumerate(lines[3:], start=4):
        token = unescape(line, lineno)
        if token in seen:
            raise ValueError(f"{path}: line {lineno}: duplicate token {token!r} (first on line "
                             f"{seen[token]})")
        seen[token] = lineno
        itos.append(token)
    return itos, default_index
