"""``Vocab`` (stoi/itos, encode/decode) and torchtext's two constructors with their exact ordering.

``vocab(mapping)`` keeps the mapping's iteration order; ``build_vocab_from_iterator`` sorts by count
descending, then token ascending (spec §2-§3). Unlike torchtext, nothing here mutates its input,
segfaults, or raises a misleading message. No torch; numpy (and pyarrow, if present) serve the corpus
fast path in ``textpipe/_encode.py``. Save/load lives in ``textpipe/_vocab_format.py``.

Run the tests: python3 -m pytest -q tests/test_vocab.py
"""
from __future__ import annotations

import operator
from collections import Counter
from collections.abc import Iterable, Iterator, Mapping, Sequence

from textpipe import _encode, _vocab_format
from textpipe.tokenizer import basic_english

__all__ = ["Vocab", "vocab", "build_vocab_from_iterator", "TokenNotFoundError", "IdOutOfRangeError"]


class TokenNotFoundError(KeyError, RuntimeError):
    """An out-of-vocabulary token with no default index. Also a ``RuntimeError``, as in torchtext."""

    def __str__(self) -> str:  # KeyError would print the message in quotes
        return str(self.args[0])


class IdOutOfRangeError(IndexError, RuntimeError):
    """An id outside ``0..len(vocab)-1``. Also a ``RuntimeError``, as in torchtext."""


def _check_token(token: object, name: str = "token") -> None:
    if not isinstance(token, str):
        raise TypeError(f"{name} must be a str, got {type(token).__name__} ({token!r}); "
                        f"decode bytes or convert the value with str() first")


def _all_str(items: Iterable[object]) -> bool:
    """True if every item is a ``str`` (the check runs in C: one ``set(map(type, ...))``)."""
    return all(issubclass(t, str) for t in set(map(type, items)))


def _check_int(value: object, name: str) -> int:
    if isinstance(value, str) or not hasattr(value, "__index__"):
        raise TypeError(f"{name} must be an int, got {type(value).__name__} ({value!r})")
    return operator.index(value)


class Vocab:
    """A token <-> id mapping: ``itos`` is a list of unique tokens, ids are their positions.

    Args:
        itos: The tokens in id order; must be unique ``str``.
        default_index: The id returned for out-of-vocabulary tokens; ``None`` (the default, as in
            torchtext) makes an OOV lookup raise ``TokenNotFoundError``.

    Example:
        >>> v = Vocab(["<pad>", "<unk>", "the", "cat"], default_index=1)
        >>> v.encode("The dog"), v.decode([2, 3])
        ([2, 1], ['the', 'cat'])
    """

    def __init__(self, itos: Iterable[str], *, default_index: int | None = None) -> None:
        if isinstance(itos, (str, bytes)) or isinstance(itos, Mapping):
            raise TypeError(f"itos must be a list of str tokens, got {type(itos).__name__}; "
                            f"use vocab(mapping) or build_vocab_from_iterator(...) to build from counts")
        self._itos: list[str] = list(itos)
        if not _all_str(self._itos):
            pos = next(i for i, t in enumerate(self._itos) if not isinstance(t, str))
            _check_token(self._itos[pos], f"itos[{pos}]")
        self._stoi: dict[str, int] = dict(zip(self._itos, range(len(self._itos))))
        if len(self._stoi) != len(self._itos):
            seen: dict[str, int] = {}
            for i, token in enumerate(self._itos):
                if seen.setdefault(token, i) != i:
                    raise ValueError(f"itos must hold unique tokens, but {token!r} is at ids "
                                     f"{seen[token]} and {i}; remove the duplicate")
        self._default: int | None = None
        self.set_default_index(default_index)

    # -- lookups -------------------------------------------------------------------------------------
    def __getitem__(self, token: str) -> int:
        """The id of ``token``, or the default index for an OOV token (error if none is set)."""
        if type(token) is not str:
            _check_token(token)
        i = self._stoi.get(token)
        return self._oov(token) if i is None else i

    def _oov(self, token: str) -> int:
        if self._default is None:
            raise TokenNotFoundError(
                f"token {token!r} is not in the vocabulary and no default index is set; "
                f"call vocab.set_default_index(vocab['<unk>'])")
        return self._default

    def __contains__(self, token: object) -> bool:
        """``True`` only for tokens in the vocabulary; the default index plays no part."""
        _check_token(token)
        return token in self._stoi

    def __len__(self) -> int:
        return len(self._itos)

    def __iter__(self) -> Iterator[str]:
        """Tokens in id order (torchtext raised ``TypeError`` here)."""
        return iter(self._itos)

    def __call__(self, tokens: Sequence[str]) -> list[int]:
        """The same as ``lookup_indices`` (torchtext's ``forward``)."""
        return self.lookup_indices(tokens)

    forward = __call__

    def lookup_indices(self, tokens: Sequence[str]) -> list[int]:
        """Ids of ``tokens`` (a list or tuple of ``str``); the first OOV raises if no default is set.

        Example:
            >>> Vocab(["a", "b"]).lookup_indices(["b", "a"])
            [1, 0]
        """
        if isinstance(tokens, (str, bytes)):
            raise TypeError(f"tokens must be a list of str, got {type(tokens).__name__} {tokens!r}; "
                            f"wrap one token in a list or use vocab.encode(text) to tokenize a text")
        if not isinstance(tokens, (list, tuple)):
            tokens = list(tokens)  # subtle: read twice below, so a generator must be materialized
        get = self._stoi.get
        ids = [get(t, -1) if isinstance(t, str) else None for t in tokens]
        for pos, (i, token) in enumerate(zip(ids, tokens)):
            if i is None:
                _check_token(token, f"tokens[{pos}]")
            elif i == -1:
                ids[pos] = self._oov(token)
        return ids

    def lookup_token(self, index: int) -> str:
        """The token with id ``index``; negative or too-large ids raise ``IdOutOfRangeError``."""
        index = _check_int(index, "index")
        if not 0 <= index < len(self._itos):
            raise IdOutOfRangeError(self._range_message(index))
        return self._itos[index]

    def _range_message(self, index: int) -> str:
        size = len(self._itos)
        valid = f"0..{size - 1}" if size else "none, the vocabulary is empty"
        return f"id {index} is out of range for a vocabulary of size {size} (valid ids: {valid})"

    def lookup_tokens(self, indices: Sequence[int]) -> list[str]:
        """Tokens for ``indices``; a bad id raises naming the id, its position and the vocab size."""
        itos, size = self._itos, len(self._itos)
        out = []
        for pos, index in enumerate(indices):
            index = _check_int(index, f"indices[{pos}]")
            if not 0 <= index < size:
                raise IdOutOfRangeError(f"{self._range_message(index)} at position {pos}")
            out.append(itos[index])
        return out

    # -- default index and growth ---------------------------------------------------------------------
    def set_default_index(self, index: int | None) -> None:
        """Set the id returned for OOV tokens (any int, as in torchtext) or ``None`` to unset it."""
        self._default = None if index is None else _check_int(index, "index")

    def get_default_index(self) -> int | None:
        """The default index, or ``None`` when unset (the state after construction)."""
        return self._default

    def insert_token(self, token: str, index: int) -> None:
        """Insert ``token`` at ``index`` (``0..len``), shifting later ids up; the default is not moved."""
        _check_token(token)
        index = _check_int(index, "index")
        if not 0 <= index <= len(self._itos):
            raise IdOutOfRangeError(f"index {index} is out of range for insert_token into a vocabulary "
                                    f"of size {len(self)} (valid: 0..{len(self)})")
        if token in self._stoi:
            raise ValueError(f"token {token!r} is already in the vocabulary with id {self._stoi[token]}")
        self._itos.insert(index, token)
        self._stoi = {t: i for i, t in enumerate(self._itos)}

    def append_token(self, token: str) -> None:
        """Add ``token`` with id ``len(vocab)``; an existing token raises ``ValueError``."""
        _check_token(token)
        if token in self._stoi:
            raise ValueError(f"token {token!r} is already in the vocabulary with id {self._stoi[token]}")
        self._stoi[token] = len(self._itos)
        self._itos.append(token)

    def get_stoi(self) -> dict[str, int]:
        """A new ``{token: id}`` dict in id order; changing it does not change the vocab."""
        return dict(self._stoi)

    def get_itos(self) -> list[str]:
        """A new list of the tokens in id order; changing it does not change the vocab."""
        return list(self._itos)

    # -- encoder / decoder ----------------------------------------------------------------------------
    def encode(self, text_or_tokens: str | Sequence[str]) -> list[int]:
        """Ids for a text (tokenized with ``basic_english``) or for an already tokenized list.

        Example:
            >>> Vocab(["<unk>", "hello", "!"], default_index=0).encode("Hello, world!")
            [1, 0, 0, 2]
        """
        if isinstance(text_or_tokens, str):
            return self.lookup_indices(basic_english(text_or_tokens))
        return self.lookup_indices(text_or_tokens)

    def decode(self, ids: Sequence[int]) -> list[str]:
        """Tokens for ``ids`` (``lookup_tokens``): ``decode(encode(t)) == basic_english(t)`` in-vocab."""
        return self.lookup_tokens(ids)

    def encode_batch(self, texts: Sequence[str], *, num_workers: int = 1) -> list[list[int]]:
        """``[encode(t) for t in texts]`` for many texts, via the ``encode_flat`` fast path."""
        ids, offsets = self.encode_flat(texts, num_workers=num_workers)
        flat, bounds = ids.tolist(), offsets.tolist()
        return [flat[a:b] for a, b in zip(bounds, bounds[1:])]

    def decode_batch(self, batch: Sequence[Sequence[int]]) -> list[list[str]]:
        """``[decode(ids) for ids in batch]``."""
        return [self.lookup_tokens(ids) for ids in batch]

    def encode_flat(self, texts: Sequence[str], *, num_workers: int = 1):
        """Tokenize and encode a whole corpus into one flat id array plus offsets (the fastest path).

        Args:
            texts: The texts (``str``), tokenized with ``basic_english``.
            num_workers: 1 = this thread only; 2+ = that many threads (the heavy kernels release
                the GIL when pyarrow is installed).

        Returns:
            ``(ids, offsets)``: int64 numpy arrays; text ``i`` is ``ids[offsets[i]:offsets[i+1]]``
            and ``len(offsets) == len(texts) + 1``.

        Example:
            >>> ids, offsets = Vocab(["<unk>", "a", "b"], default_index=0).encode_flat(["a b", "b c"])
            >>> ids.tolist(), offsets.tolist()
            ([1, 2, 2, 0], [0, 2, 4])
        """
        return _encode.encode_flat(self, texts, num_workers=num_workers)

    # -- equality, pickling, save/load ----------------------------------------------------------------
    def __eq__(self, other: object) -> bool:
        if not isinstance(other, Vocab):
            return NotImplemented
        return self._itos == other._itos and self._default == other._default

    __hash__ = None  # mutable

    def __repr__(self) -> str:
        return f"Vocab(size={len(self)}, default_index={self._default})"

    def __getstate__(self) -> dict:
        return {"itos": self._itos, "default_index": self._default}

    def __setstate__(self, state: dict) -> None:
        self._itos = list(state["itos"])
        self._stoi = {t: i for i, t in enumerate(self._itos)}
        self._default = state["default_index"]
        self._cache = None

    _cache = None  # built lazily by textpipe/_encode.py; dropped whenever the tokens change

    def save(self, path) -> None:
        """Write the vocab in the ``textpipe-vocab 1`` text format (see ``_vocab_format``)."""
        _vocab_format.save(path, self._itos, self._default)

    @classmethod
    def load(cls, path) -> "Vocab":
        """Read a file written by ``save``; a bad header or line raises naming the line number."""
        itos, default_index = _vocab_format.load(path)
        return cls(itos, default_index=default_index)


def vocab(ordered_dict: Mapping[str, int], min_freq: int = 1, specials: Sequence[str] | None = None,
          special_first: bool = True) -> Vocab:
    """torchtext's ``vocab()``: keep tokens with count >= ``min_freq`` in the mapping's own order.

    No sorting happens (a plain ``Counter`` gives first-seen order). Specials skip ``min_freq`` and go
    first (or last); a special's own count is ignored. The caller's mapping is never changed.

    Example:
        >>> from collections import OrderedDict
        >>> vocab(OrderedDict(b=3, a=3, c=1, d=2), specials=["<unk>"]).get_itos()
        ['<unk>', 'b', 'a', 'c', 'd']
    """
    if not isinstance(ordered_dict, Mapping) and not hasattr(ordered_dict, "items"):
        raise TypeError(f"ordered_dict must be a mapping token -> count, got "
                        f"{type(ordered_dict).__name__}; for a most_common() list pass "
                        f"OrderedDict(counter.most_common())")
    min_freq = _check_int(min_freq, "min_freq")
    specials = list(specials or [])
    for i, token in enumerate(specials):
        _check_token(token, f"specials[{i}]")
    skip = set(specials)
    items = list(ordered_dict.items())
    if not _all_str(t for t, _ in items):
        _check_token(next(t for t, _ in items if not isinstance(t, str)), "every key of ordered_dict")
    tokens = [t for t, freq in items if freq >= min_freq and t not in skip]
    tokens = specials + tokens if special_first else tokens + specials
    if len(skip) != len(specials):
        dup = next(t for t in specials if specials.count(t) > 1)
        raise ValueError(f"specials must be unique, but {dup!r} is given more than once: {specials!r}")
    return Vocab(tokens)


def build_vocab_from_iterator(iterator: Iterable[Iterable[str]], min_freq: int = 1,
                              specials: Sequence[str] | None = None, special_first: bool = True,
                              max_tokens: int | None = None) -> Vocab:
    """torchtext's ``build_vocab_from_iterator``: count, sort by (-count, token), cut, then ``vocab()``.

    Each item is an iterable of tokens (a bare ``str`` item counts its characters, as in torchtext).
    ``max_tokens`` keeps the first ``max_tokens - len(specials)`` sorted entries *before* ``min_freq``
    and specials are applied, so the result can be shorter than ``max_tokens`` (spec §3).

    Example:
        >>> build_vocab_from_iterator([["b", "a"], ["a"]], specials=["<unk>"]).get_itos()
        ['<unk>', 'a', 'b']
    """
    specials = list(specials or [])
    if max_tokens is not None:
        max_tokens = _check_int(max_tokens, "max_tokens")
        if len(specials) >= max_tokens:
            raise ValueError(f"max_tokens must be greater than len(specials) = {len(specials)}, got "
                             f"{max_tokens}: the vocab would be entirely special tokens")
    counter: Counter = Counter()
    update = counter.update
    for tokens in iterator:  # one C-level count per item; faster than chaining the items
        update(tokens)
    if not _all_str(counter):
        _check_token(next(t for t in counter if not isinstance(t, str)), "every token yielded by iterator")
    # by token ascending, then (stable) by count descending: the (-count, token) order of torchtext
    ordered = sorted(counter.items(), key=operator.itemgetter(0))
    ordered.sort(key=operator.itemgetter(1), reverse=True)
    if max_tokens is not None:
        ordered = ordered[:max_tokens - len(specials)]
    return vocab(dict(ordered), min_freq=min_freq, specials=specials, special_first=special_first)


def __getattr__(name: str):
    # torchtext.vocab also held the pretrained vectors; they live in textpipe.vectors (which imports torch,
    # so only on first use: the vocabulary itself stays torch-free).
    if name in ("Vectors", "GloVe", "FastText", "pretrained_aliases"):
        from textpipe import vectors
        return getattr(vectors, name)
    raise AttributeError(f"module 'textpipe.vocab' has no attribute {name!r}")
