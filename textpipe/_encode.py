"""The corpus fast path behind ``Vocab.encode_flat``: texts -> (flat int64 ids, offsets).

Texts go in chunks joined with NUL. Python's own ``str`` methods lower-case the chunk (exactly
``str.lower``, final sigma included), delete ``"`` and remove ``<br />``; what is left of
``basic_english`` is a per-byte rule on the UTF-8 bytes (whitespace, ``;`` and ``:`` separate tokens;
each of ``'.,()!?`` is a token of its own), which numpy applies to the whole chunk at once. pyarrow
then looks the tokens up without creating a Python object per token. Chunks it cannot take (lone
surrogates, a text containing NUL) and machines without pyarrow use the pure-Python path. Both give
exactly ``[vocab.encode(t) for t in texts]``, as ``tests/test_vocab.py`` checks.
"""
from __future__ import annotations

import re
from concurrent.futures import ThreadPoolExecutor
from itertools import repeat

import numpy as np

from textpipe.tokenizer import _SEP, _check_str, _normalize, basic_english

_CHUNK = 8192  # texts per chunk: amortises the per-call cost and the lookup-table build

# Non-ASCII Python whitespace. Mapped to " " after the '<br />' step it cannot change str.split(), and
# afterwards every byte >= 0x80 of the UTF-8 text belongs to a word.
_OTHER_SPACE = re.compile("[\x85\xa0\u1680\u2000-\u200a\u2028\u2029\u202f\u205f\u3000]")
# What each byte is once lower-casing, '"' and '<br />' are done: 0 separates tokens (the ASCII part of
# the spec's whitespace set, ';', ':' and our NUL), 1 is part of a word, 2 is a token of its own.
_SEPARATORS, _SINGLES = b"\t\n\x0b\x0c\r\x1c\x1d\x1e\x1f ;:\x00", b"'.,()!?"
_CLASS = bytes(0 if i in _SEPARATORS else 2 if i in _SINGLES else 1 for i in range(256))  # for translate
_INT32_BYTES = 2**31 - 1  # larger chunks need int64 offsets (pyarrow large_string)
_OOV = -1  # marks out-of-vocabulary tokens until the default index is known (real ids are >= 0)


def _arrow():
    try:
        import pyarrow as pa
        import pyarrow.compute as pc
    except ImportError:  # optional: the pure-Python path gives the same output
        return None
    return pa, pc


def _tables(vocab):
    """(pyarrow value set or None, stoi with the separator) for ``vocab``, built once per token set."""
    if vocab._cache is None or vocab._cache[0] is not vocab._itos or vocab._cache[1] != len(vocab._itos):
        arrow, value_set = _arrow(), None
        if arrow is not None:
            try:
                value_set = arrow[0].array(vocab._itos, arrow[0].string())
            except UnicodeEncodeError:  # a lone-surrogate token: use the Python path
                value_set = None
        stoi = dict(vocab._stoi)
        stoi[_SEP] = -2  # subtle: the joined texts never contain NUL, so a NUL token is our separator
        vocab._cache = (vocab._itos, len(vocab._itos), value_set, stoi)
    return vocab._cache[2], vocab._cache[3]


def _prefers_python(n_texts: int, vocab_size: int) -> bool:
    """Small chunks are faster as dict lookups: each pyarrow lookup call first builds a hash table of
    the whole vocabulary (about 75 ns a token), which a few hundred texts do not pay back."""
    return n_texts < max(128, vocab_size // 50)


def byte_tokens(joined: str):
    """basic_english's byte rule on NUL-joined texts: ``(utf8, starts, ends, tokens per text)`` or ``None``.

    After lower-casing and the '"' and '<br />' steps, every byte of the UTF-8 text either separates
    tokens, belongs to a word, or is a one-byte token; ``starts``/``ends`` are each token's first and last
    byte. ``None`` where the rule cannot be used (lone surrogates have no UTF-8 form).
    """
    text = joined.lower().replace('"', "").replace("<br />", " ")  # the order of tokenizer._normalize
    if not text.isascii():
        text = _OTHER_SPACE.sub(" ", text)
    try:
        data = text.encode("utf-8")
    except UnicodeEncodeError:  # lone surrogates cannot be UTF-8
        return None
    cls = np.frombuffer(data.translate(_CLASS), np.uint8)  # bytes.translate: one fast C pass
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


def _chunk_bytes(chunk: list[str], value_set) -> tuple[np.ndarray, np.ndarray] | None:
    pa, pc = _arrow()
    joined = _SEP.join(chunk)
    if joined.count(_SEP) != len(chunk) - 1:
        return None  # some text contains NUL
    split = byte_tokens(joined)
    if split is None:
        return None
    data, starts, ends, lengths = split
    # the kept bytes are the tokens back to back, so their offsets are the running token lengths
    large = len(data) > _INT32_BYTES
    offsets = np.zeros(len(starts) + 1, np.int64 if large else np.int32)
    np.cumsum(ends - starts + 1, out=offsets[1:])
    kind = pa.LargeStringArray if large else pa.StringArray
    packed = data.translate(None, _SEPARATORS)  # the token bytes, back to back
    tokens = kind.from_buffers(len(starts), pa.py_buffer(offsets), pa.py_buffer(packed))
    ids = pc.fill_null(pc.index_in(tokens, value_set=value_set.cast(tokens.type)), _OOV)
    return ids.to_numpy(zero_copy_only=False).astype(np.int64), lengths


def _chunk_python(chunk: list[str], stoi: dict[str, int], stoi_sep: dict[str, int]):
    joined = f" {_SEP} ".join(chunk)
    if joined.count(_SEP) != len(chunk) - 1:  # some text contains NUL: one text at a time
        per_text = [[stoi.get(t, _OOV) for t in _normalize(text).split()] for text in chunk]
        lengths = np.fromiter(map(len, per_text), np.int64, count=len(chunk))
        return np.array([i for ids in per_text for i in ids], np.int64), lengths
    tokens = _normalize(joined).split()
    ids = np.fromiter(map(stoi_sep.get, tokens, repeat(_OOV)), np.int64, count=len(tokens))
    seps = np.flatnonzero(ids == -2)
    ends = np.append(seps, len(ids))
    lengths = ends - np.concatenate(([0], seps + 1))
    return ids[ids != -2], lengths


def encode_flat(vocab, texts, *, num_workers: int = 1) -> tuple[np.ndarray, np.ndarray]:
    """See ``Vocab.encode_flat``."""
    if isinstance(texts, (str, bytes)):
        raise TypeError("texts must be a sequence of str, got a single "
                        f"{type(texts).__name__}; use vocab.encode(text) or pass [text]")
    texts = list(texts)
    if not all(type(t) is str for t in texts):
        for pos, t in enumerate(texts):
            _check_str(t, name=f"texts[{pos}]")  # raises for a non-str item
        texts = [str(t) for t in texts]  # str subclasses: plain str for the byte path
    if isinstance(num_workers, bool) or not isinstance(num_workers, int) or num_workers < 1:
        raise ValueError(f"num_workers must be an int >= 1, got {num_workers!r}")
    value_set, stoi_sep = _tables(vocab)

    def encode_chunk(chunk: list[str]) -> tuple[np.ndarray, np.ndarray]:
        fast = value_set is not None and not _prefers_python(len(chunk), len(vocab))
        out = _chunk_bytes(chunk, value_set) if fast else None
        return out if out is not None else _chunk_python(chunk, vocab._stoi, stoi_sep)

    chunks = [texts[i:i + _CHUNK] for i in range(0, len(texts), _CHUNK)]
    if num_workers > 1 and len(chunks) > 1:
        # numpy's and pyarrow's kernels release the GIL, so threads run them in parallel, no copies
        with ThreadPoolExecutor(max_workers=num_workers) as pool:
            results = list(pool.map(encode_chunk, chunks))
    else:
        results = [encode_chunk(c) for c in chunks]
    ids = np.concatenate([r[0] for r in results]) if results else np.zeros(0, np.int64)
    offsets = np.zeros(len(texts) + 1, np.int64)
    if results:
        np.cumsum(np.concatenate([r[1] for r in results]), out=offsets[1:])
    oov = ids == _OOV
    if oov.any():
        default = vocab.get_default_index()
        if default is None:
            pos = int(np.argmax(oov))
            row = int(np.searchsorted(offsets, pos, side="right")) - 1
            token = basic_english(texts[row])[pos - offsets[row]]
            from textpipe.vocab import TokenNotFoundError  # subtle: vocab imports this module
            raise TokenNotFoundError(
                f"token {token!r} (in texts[{row}]) is not in the vocabulary and no default index "
                f"is set; call vocab.set_default_index(vocab['<unk>'])")
        ids[oov] = default
    return ids, offsets
