"""Texts -> token byte spans (the byte rules of ``basic_english`` and ``split``) -> ids, in bounded chunks.

``basic_english``: Python's own ``str`` methods lower-case the NUL-joined chunk (exactly ``str.lower``,
final sigma included), delete ``"`` and remove ``<br />``; what is left is a per-byte rule on the UTF-8
bytes (whitespace, ``;`` and ``:`` separate tokens; each of ``'.,()!?`` is a token of its own), which numpy
applies to the whole chunk at once. ``split`` (``str.split``) is the same with whitespace alone. The tokens'
bytes are then looked up in the vocabulary's ``ByteTable``: only the chunk's own distinct tokens when
pyarrow is installed (``dictionary_encode``), so the cost does not depend on the vocabulary's size. A
chunk the byte rule cannot take (a lone surrogate, a text containing NUL) is halved until the odd text
out is tokenized on its own. Any other tokenizer goes text by text through ``Vocab.tokenize``. All paths
give exactly ``[vocab.encode(t) for t in texts]``, as ``tests/test_vocab.py`` checks.
"""
from __future__ import annotations

import re
from collections.abc import Callable
from concurrent.futures import ThreadPoolExecutor
from itertools import chain, repeat

import numpy as np

from textpipe.core.arrow import int_values
from textpipe.text._bytetable import OOV, ByteTable, keyable
from textpipe.text._store import encode_tokens
from textpipe.text.errors import TokenNotFoundError
from textpipe.text.tokenizer import SEP, basic_english, check_str, split_whitespace

__all__ = ["ByteRule", "BASIC", "SPLIT", "byte_rule_for", "byte_tokens", "encode_flat", "arrow"]

CHUNK_TEXTS = 8192  # texts per chunk: amortises the per-call cost
CHUNK_CHARS = 1 << 21  # characters per chunk: bounds the temporaries (a longer text is cut into pieces)
_DISTINCT_MIN = 1 << 16  # chunks with fewer tokens look every token up directly (measured faster)
_INT32_BYTES = 2**31 - 1  # larger chunks need int64 offsets (pyarrow large_string)
# Non-ASCII Python whitespace. Mapped to " " it cannot change str.split() (for basic_english: after the
# '<br />' step), and afterwards every byte >= 0x80 of the UTF-8 text belongs to a word.
_OTHER_SPACE = re.compile("[\x85\xa0\u1680\u2000-\u200a\u2028\u2029\u202f\u205f\u3000]")
_ASCII_SPACE = b"\t\n\x0b\x0c\r\x1c\x1d\x1e\x1f "


def arrow():
    """``(pyarrow, pyarrow.compute)``, or ``None`` without pyarrow (numpy alone gives the same ids)."""
    try:
        import pyarrow as pa
        import pyarrow.compute as pc
    except ImportError:
        return None
    return pa, pc


class ByteRule:
    """A tokenizer that is a per-byte rule once its ``str`` steps are done: separators, one-byte tokens."""

    def __init__(self, name: str, separators: bytes, singles: bytes, *, basic: bool) -> None:
        self.name, self.separators, self.basic = name, separators, basic
        # 0 separates tokens, 1 is part of a word, 2 is a token of its own (for bytes.translate)
        self.classes = bytes(0 if i in separators else 2 if i in singles else 1 for i in range(256))

    def normalize(self, joined: str) -> str:
        if self.basic:  # the order of tokenizer._normalize
            joined = joined.lower().replace('"', "").replace("<br />", " ")
        return joined if joined.isascii() else _OTHER_SPACE.sub(" ", joined)


BASIC = ByteRule("basic_english", _ASCII_SPACE + b";:\x00", b"'.,()!?", basic=True)
SPLIT = ByteRule("split", _ASCII_SPACE + b"\x00", b"", basic=False)
_RULES = {basic_english: BASIC, split_whitespace: SPLIT}


def byte_rule_for(fn: Callable) -> ByteRule | None:
    """The byte rule that gives exactly ``fn``'s tokens, or ``None`` (the generic path)."""
    return _RULES.get(fn)


def byte_tokens(joined: str, rule: ByteRule = BASIC):
    """``rule`` on NUL-joined texts: ``(utf8, starts, ends, tokens per text)``, or ``None`` where it cannot
    be used (lone surrogates have no UTF-8 form). ``starts``/``ends`` are each token's first/last byte."""
    try:
        data = rule.normalize(joined).encode("utf-8")
    except UnicodeEncodeError:
        return None
    cls = np.frombuffer(data.translate(rule.classes), np.uint8)  # bytes.translate: one fast C pass
    word, single = cls == 1, cls == 2
    first, last = single.copy(), single  # a token's first and last byte
    first[1:] |= word[1:] & ~word[:-1]
    first[:1] |= word[:1]
    last[:-1] |= word[:-1] & ~word[1:]
    last[-1:] |= word[-1:]
    starts, ends = np.flatnonzero(first), np.flatnonzero(last)
    nul = np.flatnonzero(np.frombuffer(data, np.uint8) == 0)  # where one text ends and the next begins
    counts = np.empty(nul.size + 2, np.int64)
    counts[0], counts[-1] = 0, starts.size
    counts[1:-1] = np.searchsorted(starts, nul)
    return data, starts, ends, np.diff(counts)


def token_array(data: bytes, starts: np.ndarray, sizes: np.ndarray, rule: ByteRule):
    """The tokens as a pyarrow string array, without a Python object per token."""
    pa, _ = arrow()
    large = len(data) > _INT32_BYTES
    offsets = np.zeros(len(starts) + 1, np.int64 if large else np.int32)
    np.cumsum(sizes, out=offsets[1:])
    packed = data.translate(None, rule.separators)  # the token bytes, back to back
    kind = pa.LargeStringArray if large else pa.StringArray
    return kind.from_buffers(len(starts), pa.py_buffer(offsets), pa.py_buffer(packed))


def _lookup_spans(table: ByteTable, data: bytes, starts, sizes, rule: ByteRule) -> np.ndarray:
    if starts.size < _DISTINCT_MIN or arrow() is None:
        return table.lookup(data, starts, sizes)
    encoded = token_array(data, starts, sizes, rule).dictionary_encode()
    distinct = encoded.dictionary
    width = np.int64 if len(data) > _INT32_BYTES else np.int32
    offsets = np.frombuffer(distinct.buffers()[1], width)[distinct.offset:distinct.offset + len(distinct) + 1]
    ddata = distinct.buffers()[2].to_pybytes()
    ids = table.lookup(ddata, offsets[:-1].astype(np.int64), np.diff(offsets).astype(np.int64))
    return ids[int_values(encoded.indices)]


def _cut_ok(text: str, p: int) -> bool:
    """Both rules may cut ``text`` at the ASCII space ``p``: it is not the space of a ``<br />`` (also not
    once ``"`` are deleted or ``R`` lower-cased) and the pieces tokenize as the whole does (a space is
    neither cased nor case-ignorable, so even the final-sigma rule sees the same context)."""
    return text[p - 1] not in 'rR"' and text[p + 1:p + 2] not in ("/", '"')


def _safe_cut(text: str, lo: int, hi: int) -> int | None:
    """A space in ``lo..hi`` where ``text`` may be cut, else the first one after ``hi``, else ``None``."""
    p = hi
    while (p := text.rfind(" ", lo, p)) > 0:
        if _cut_ok(text, p):
            return p
    p = hi - 1
    while (p := text.find(" ", p + 1, hi + 2 * (hi - lo))) > 0:
        if _cut_ok(text, p):
            return p
    return None


def pieces(texts: list[str], limit: int) -> tuple[list[str], np.ndarray | None]:
    """``texts`` with every text longer than ``limit`` cut into pieces; the index of each text's first piece."""
    if not texts or max(map(len, texts)) <= limit:
        return texts, None
    pieces, first = [], []
    for text in texts:
        first.append(len(pieces))
        start = 0
        while len(text) - start > limit:
            p = _safe_cut(text, start + limit // 2, start + limit)
            if p is None:
                break  # no safe place: the rest stays one piece
            pieces.append(text[start:p])
            start = p
        pieces.append(text[start:] if start else text)
    return pieces, np.array(first, np.int64)


def groups(texts: list[str], chars: np.ndarray) -> list[list[str]]:
    """Consecutive runs of at most ``CHUNK_TEXTS`` texts and (unless one text is longer) ``CHUNK_CHARS``."""
    cum = np.cumsum(chars)
    out, i, n = [], 0, len(texts)
    while i < n:
        before = int(cum[i - 1]) if i else 0
        j = min(i + CHUNK_TEXTS, int(np.searchsorted(cum, before + CHUNK_CHARS, side="right")))
        j = max(j, i + 1)
        out.append(texts[i:j])
        i = j
    return out


def encode_flat(texts: list[str], *, rule: ByteRule | None, tokenize: Callable[[str], list[str]],
                table: ByteTable, stoi: dict[str, int], num_workers: int) -> tuple[np.ndarray, np.ndarray]:
    """``(ids, offsets)`` of ``texts`` (``str`` only, checked by the caller); unknown tokens are ``OOV``.

    ``rule`` is the byte rule of the vocabulary's tokenizer or ``None``; ``tokenize`` the tokenizer itself
    (its output checked), used text by text where no byte rule applies.
    """

    def python_ids(tokens: list[str]) -> np.ndarray:
        return np.fromiter(map(stoi.get, tokens, repeat(OOV)), np.int64, count=len(tokens))

    def byte_group(group: list[str]) -> tuple[np.ndarray, np.ndarray]:
        joined = SEP.join(group)
        split = byte_tokens(joined, rule) if joined.count(SEP) == len(group) - 1 else None
        if split is not None:
            data, starts, ends, counts = split
            return _lookup_spans(table, data, starts, ends + 1 - starts, rule), counts
        if len(group) > 1:  # a text holds NUL or a lone surrogate: halve until it is alone
            a, b = byte_group(group[:len(group) // 2]), byte_group(group[len(group) // 2:])
            return np.concatenate([a[0], b[0]]), np.concatenate([a[1], b[1]])
        tokens = tokenize(group[0])
        return python_ids(tokens), np.array([len(tokens)], np.int64)

    def generic_group(group: list[str]) -> tuple[np.ndarray, np.ndarray]:
        token_lists = [tokenize(t) for t in group]
        lengths = np.fromiter(map(len, token_lists), np.int64, count=len(group))
        return python_ids(list(chain.from_iterable(token_lists))), lengths

    first = None
    if rule is not None:
        texts, first = pieces(texts, CHUNK_CHARS)
    parts = groups(texts, np.fromiter(map(len, texts), np.int64, count=len(texts)))
    encode_group = byte_group if rule is not None else generic_group
    if num_workers > 1 and len(parts) > 1 and rule is not None:
        # numpy's and pyarrow's kernels release the GIL, so threads run them in parallel, no copies
        with ThreadPoolExecutor(max_workers=num_workers) as pool:
            results = list(pool.map(encode_group, parts))
    else:  # (a Python tokenizer holds the GIL: threads would only contend)
        results = [encode_group(g) for g in parts]
    ids = np.concatenate([r[0] for r in results]) if results else np.zeros(0, np.int64)
    lengths = np.concatenate([r[1] for r in results]) if results else np.zeros(0, np.int64)
    if first is not None:  # pieces back to texts
        lengths = np.add.reduceat(lengths, first) if lengths.size else lengths
    offsets = np.zeros(lengths.size + 1, np.int64)
    np.cumsum(lengths, out=offsets[1:])
    return ids, offsets


class StoiGetter:
    """``stoi.get(token, default)`` over a ``Vocab``'s id lookup, without a dict (the text-by-text path)."""

    def __init__(self, lookup: Callable[[str], int | None]) -> None:
        self._id = lookup

    def get(self, token: str, default: int) -> int:
        i = self._id(token)
        return default if i is None else i


def checked_texts(texts) -> list[str]:
    """``texts`` as a list of plain ``str`` (TypeError for a single string or a non-``str`` item)."""
    if isinstance(texts, (str, bytes)):
        raise TypeError("texts must be a sequence of str, got a single "
                        f"{type(texts).__name__}; use vocab.encode(text) or pass [text]")
    texts = list(texts)
    if not all(type(t) is str for t in texts):
        for pos, t in enumerate(texts):
            check_str(t, name=f"texts[{pos}]")  # raises for a non-str item
        texts = [str(t) for t in texts]  # str subclasses: plain str for the byte path
    return texts


def fill_oov(ids: np.ndarray, offsets: np.ndarray, default: int | None, texts: list[str],
             tokenize: Callable[[str], list[str]]) -> np.ndarray:
    """``ids`` with OOV ids replaced by ``default``; TokenNotFoundError naming the first one without a default."""
    oov = ids == OOV
    if oov.any():
        if default is None:
            pos = int(np.argmax(oov))
            row = int(np.searchsorted(offsets, pos, side="right")) - 1
            token = tokenize(texts[row])[pos - offsets[row]]
            raise TokenNotFoundError(f"token {token!r} (in texts[{row}]) is not in the vocabulary and no default "
                                     "index is set; call vocab.set_default_index(vocab['<unk>'])")
        ids[oov] = default
    return ids


def lookup_many(table: ByteTable, extra: dict[str, int], tokens: list[str]) -> list[int]:
    """The id of each ``str`` token, -1 if OOV: one vectorized table lookup (``extra``: the unkeyable tokens)."""
    data, offsets = encode_tokens(tokens)
    ok = keyable(data, offsets)
    ids = np.full(len(tokens), OOV, np.int64)
    ids[ok] = table.lookup(data, offsets[:-1][ok], np.diff(offsets)[ok])
    out = ids.tolist()
    for pos in np.flatnonzero(~ok).tolist():
        out[pos] = extra.get(tokens[pos], -1)
    return out
