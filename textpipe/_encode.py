"""The corpus fast path behind ``Vocab.encode_flat``: texts -> (flat int64 ids, offsets).

Texts go in chunks. Each chunk is joined with NUL and normalized by Python's own ``str`` methods (so
lower-casing, final sigma included, is exactly ``str.lower``); pyarrow's C++ kernels then split it into
tokens and look them up without creating a Python object per token. Chunks that pyarrow cannot take
(lone surrogates, a text containing NUL) or machines without pyarrow use the pure-Python path. Both
give exactly ``[vocab.encode(t) for t in texts]``, as ``tests/test_vocab.py`` checks.
"""
from __future__ import annotations

import re
from concurrent.futures import ThreadPoolExecutor
from itertools import repeat

import numpy as np

from textpipe.tokenizer import _REPLACEMENTS, _SEP, _check_str, _normalize, basic_english

_CHUNK = 8192  # texts per chunk: amortises the per-call cost and the lookup-table build

# Python whitespace that pyarrow's ascii_split_whitespace (" \t\n\v\f\r") does not split on. Mapping it
# to " " after normalization cannot change str.split(), and so lets pyarrow split exactly like Python.
_OTHER_SPACE = re.compile("[\x1c-\x1f\x85\xa0\u1680\u2000-\u200a\u2028\u2029\u202f\u205f\u3000]")
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
                value_set = arrow[0].array(vocab._itos, arrow[0].large_string())
            except UnicodeEncodeError:  # a lone-surrogate token: use the Python path
                value_set = None
        stoi = dict(vocab._stoi)
        stoi[_SEP] = -2  # subtle: the joined texts never contain NUL, so a NUL token is our separator
        vocab._cache = (vocab._itos, len(vocab._itos), value_set, stoi)
    return vocab._cache[2], vocab._cache[3]


def _normalize_arrow(joined: str):
    """Normalize an all-ASCII chunk inside pyarrow (which releases the GIL): ASCII lower-casing and
    the same replacements, in the same order, as ``tokenizer._normalize``."""
    pa, pc = _arrow()
    arr = pc.ascii_lower(pa.array([joined], pa.large_string()))
    for old, new in _REPLACEMENTS:
        arr = pc.replace_substring(arr, old, new)
    return arr


def _chunk_arrow(chunk: list[str], value_set) -> tuple[np.ndarray, np.ndarray] | None:
    pa, pc = _arrow()
    joined = _SEP.join(chunk)
    if joined.count(_SEP) != len(chunk) - 1:
        return None  # some text contains NUL
    if joined.isascii() and not any(c in joined for c in "\x1c\x1d\x1e\x1f"):
        arr = _normalize_arrow(joined)  # ASCII: str.lower is plain A-Z -> a-z
    else:
        # subtle: str.lower (full Unicode, final sigma) must see the whole text, so Python does it
        joined = _OTHER_SPACE.sub(" ", _normalize(joined))
        try:
            arr = pa.array([joined], pa.large_string())
        except UnicodeEncodeError:  # lone surrogates cannot be UTF-8
            return None
    texts = pc.list_flatten(pc.split_pattern(arr, _SEP))  # one string per text
    lists = pc.ascii_split_whitespace(texts)
    tokens, parents = pc.list_flatten(lists), pc.list_parent_indices(lists)
    keep = pc.greater(pc.binary_length(tokens), 0)  # leading/trailing whitespace gives "" here
    tokens, parents = tokens.filter(keep), parents.filter(keep)
    ids = pc.fill_null(pc.index_in(tokens, value_set=value_set), _OOV)
    lengths = np.bincount(parents.to_numpy(zero_copy_only=False), minlength=len(chunk))
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
        pos = next(i for i, t in enumerate(texts) if not isinstance(t, str))
        _check_str(texts[pos], name=f"texts[{pos}]")
    if isinstance(num_workers, bool) or not isinstance(num_workers, int) or num_workers < 1:
        raise ValueError(f"num_workers must be an int >= 1, got {num_workers!r}")
    value_set, stoi_sep = _tables(vocab)

    def encode_chunk(chunk: list[str]) -> tuple[np.ndarray, np.ndarray]:
        out = _chunk_arrow(chunk, value_set) if value_set is not None else None
        return out if out is not None else _chunk_python(chunk, vocab._stoi, stoi_sep)

    chunks = [texts[i:i + _CHUNK] for i in range(0, len(texts), _CHUNK)]
    if num_workers > 1 and len(chunks) > 1:
        # pyarrow's kernels release the GIL, so threads run them in parallel with no copying
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
