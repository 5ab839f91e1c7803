"""``Vocab``: stoi/itos, ``encode``/``decode``, the tokenizer it was built with (a registered name or a callable)
and its own lookup tables (built lazily, dropped whenever its tokens change). Unlike torchtext, nothing here
mutates its input, segfaults, or raises a misleading message; each clearer error is still an instance of the
class torchtext raised. No torch: numpy (and pyarrow, if present) serve the bulk paths in ``_encode.py``;
the file format is ``_format.py``; torchtext's constructors are in ``build.py``. Tests: tests/test_vocab.py
"""
from __future__ import annotations

from collections.abc import Callable, Iterable, Iterator, Mapping, Sequence

import numpy as np

from textpipe.text import _encode
from textpipe.text import _format as _vocab_format
from textpipe.text import _store as store
from textpipe.text._bytetable import ByteTable, keyable
from textpipe.text._guard import check_tokenizer
from textpipe.text.errors import (DuplicateTokenError, IdOutOfRangeError, TokenNotFoundError, range_message,
                                  all_str, check_int, check_token, check_workers, raise_duplicate)
from textpipe.text.tokenizer import (basic_english, check_str, check_tokens, describe_tokenizer, resolve_tokenizer,
                                     tokenizer_name)

# Scalar lookups (one token at a time) after which a Vocab also keeps a {token: id} dict (see Vocab._id).
SCALAR_LOOKUPS_FOR_DICT = 1 << 16

__all__ = ["Vocab"]


class Vocab:
    """A token <-> id mapping: ``itos`` is a list of unique tokens, ids are their positions.

    Args:
        itos: The tokens in id order; must be unique ``str``.
        default_index: The id returned for out-of-vocabulary tokens; ``None`` (the default, as in
            torchtext) makes an OOV lookup raise ``TokenNotFoundError``.
        tokenizer: What ``encode``/``encode_flat``/``TextCollate`` split texts with: ``"basic_english"``
            (the default), ``"split"`` (``str.split``), a name given to ``register_tokenizer``, ``None``
            (``"split"``, as ``get_tokenizer(None)``), or any callable ``str -> list[str]`` (saving then
            needs a registered name).

    Example:
        >>> v = Vocab(["<pad>", "<unk>", "the", "cat"], default_index=1)
        >>> v.encode("The dog"), v.decode([2, 3])
        ([2, 1], ['the', 'cat'])
        >>> Vocab(["<unk>", "The"], default_index=0, tokenizer="split").encode("The dog")
        [1, 0]
    """

    def __init__(self, itos: Iterable[str], *, default_index: int | None = None,
                 tokenizer: str | Callable[[str], list[str]] | None = "basic_english") -> None:
        if isinstance(itos, (str, bytes)) or isinstance(itos, Mapping):
            raise TypeError(f"itos must be a list of str tokens, got {type(itos).__name__}; "
                            f"use vocab(mapping) or build_vocab_from_iterator(...) to build from counts")
        itos = list(itos)
        if not all_str(itos):
            pos = next(i for i, t in enumerate(itos) if not isinstance(t, str))
            check_token(itos[pos], f"itos[{pos}]")
        if len(set(itos)) != len(itos):
            raise_duplicate(itos)
        self._init(*store.encode_tokens(itos), default_index, tokenizer)

    @classmethod
    def _from_store(cls, data: bytes, offsets: np.ndarray, *, default_index: int | None = None,
                    tokenizer="basic_english") -> "Vocab":
        """A ``Vocab`` of the tokens ``data[offsets[i]:offsets[i+1]]`` (see ``_vocab_store``): no Python
        object per token is made. Raises ``DuplicateTokenError`` as the constructor does."""
        self = cls.__new__(cls)
        self._init(data, offsets, default_index, tokenizer)
        return self

    def _init(self, data: bytes, offsets: np.ndarray, default_index, tokenizer) -> None:
        if self._set_store(data, offsets):
            raise_duplicate(store.decode_all(data, offsets))
        self._default: int | None = None
        self.set_default_index(default_index)
        self._set_tokenizer(tokenizer)

    def _set_store(self, data: bytes, offsets: np.ndarray) -> bool:
        """Hold the tokens as one buffer + offsets and build their lookup table; True if two are equal."""
        self._data, self._off, self._tail = data, offsets, []  # _tail: tokens appended since (ids after)
        self._extra = store.extra_tokens(data, offsets)  # the few tokens the table cannot key
        self._tables = ByteTable(data, offsets, self._extra)
        self._dict, self._scalar = None, 0  # see _id
        self._packed = None  # see packed_tokens
        return self._tables.has_duplicates or len(self._extra) != int((~keyable(data, offsets)).sum())

    # -- tokenizer -------------------------------------------------------------------------------------
    def _set_tokenizer(self, tokenizer) -> None:
        name, fn = resolve_tokenizer(tokenizer)
        self._tokenizer_given = name if isinstance(tokenizer, str) else None
        self._tokenize_fn = fn
        self._rule = _encode.byte_rule_for(fn)  # None: the generic path, output checked

    @property
    def tokenizer_name(self) -> str | None:
        """The tokenizer's registered name (``"basic_english"``, ``"split"``, ...), ``None`` if it has none."""
        return self._tokenizer_given or tokenizer_name(self._tokenize_fn)

    @property
    def tokenizer(self) -> Callable[[str], list[str]]:
        """The tokenizer function."""
        return self._tokenize_fn

    def tokenize(self, text: str) -> list[str]:
        """The tokens of ``text`` by this vocabulary's tokenizer (a custom tokenizer's output is checked).

        Raises:
            TypeError: If ``text`` is not a ``str``, or the tokenizer returns anything but a list of ``str``.
        """
        check_str(text)
        tokens = self._tokenize_fn(text)
        return tokens if self._rule is not None else check_tokens(tokens, self._tokenize_fn, text)

    def _table(self) -> ByteTable:
        """The byte-key lookup table of all the tokens (appended tokens are folded in first: a new table)."""
        if self._tail:
            self._set_store(*store.concat([(self._data, self._off), store.encode_tokens(self._tail)]))
        return self._tables

    def _id(self, token: str) -> int | None:
        """The id of a ``str`` token, or ``None``.

        One lookup in the byte table costs ~1 us in Python against ~0.1 us in a dict, so code that looks
        tokens up one by one (a per-sample ``vocab(tokens)`` transform) gets a ``{token: id}`` dict after
        ``SCALAR_LOOKUPS_FOR_DICT`` such lookups; bulk paths (``encode_flat``, long lists) never build it."""
        d = self._dict
        if d is not None:
            return d.get(token)
        self._scalar += 1
        if self._scalar > SCALAR_LOOKUPS_FOR_DICT:
            itos = self.get_itos()
            self._dict = dict(zip(itos, range(len(itos))))
        i = self._tables.get(token)
        return self._extra.get(token) if i is None and self._tail else i

    def _token(self, index: int) -> str:
        n = len(self._off) - 1
        return store.token_at(self._data, self._off, index) if index < n else self._tail[index - n]

    # -- lookups -------------------------------------------------------------------------------------
    def __getitem__(self, token: str) -> int:
        """The id of ``token``, or the default index for an OOV token (error if none is set)."""
        if type(token) is not str:
            check_token(token)
        i = self._id(token)
        return self._oov(token) if i is None else i

    def _oov(self, token: str) -> int:
        if self._default is None:
            raise TokenNotFoundError(
                f"token {token!r} is not in the vocabulary and no default index is set; "
                f"call vocab.set_default_index(vocab['<unk>'])")
        return self._default

    def __contains__(self, token: object) -> bool:
        """``True`` only for tokens in the vocabulary; the default index plays no part."""
        check_token(token)
        return self._id(token) is not None

    def __len__(self) -> int:
        return len(self._off) - 1 + len(self._tail)

    def __iter__(self) -> Iterator[str]:
        """Tokens in id order (torchtext raised ``TypeError`` here)."""
        return iter(self.get_itos())

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
        ids = self._lookup_many(tokens)
        for pos, (i, token) in enumerate(zip(ids, tokens)):
            if i is None:
                check_token(token, f"tokens[{pos}]")
            elif i == -1:
                ids[pos] = self._oov(token)
        return ids

    def _lookup_many(self, tokens: Sequence) -> list:
        """Per token: its id, -1 if OOV, ``None`` if not a ``str``; one vectorized table lookup for long lists."""
        if len(tokens) < 256 or self._tail or self._dict is not None or not all_str(tokens):
            get = self._id
            return [(-1 if (i := get(t)) is None else i) if isinstance(t, str) else None for t in tokens]
        return _encode.lookup_many(self._tables, self._extra, tokens)

    def lookup_token(self, index: int) -> str:
        """The token with id ``index``; negative or too-large ids raise ``IdOutOfRangeError``."""
        index = check_int(index, "index")
        if not 0 <= index < len(self):
            raise IdOutOfRangeError(range_message(index, len(self)))
        return self._token(index)

    def lookup_tokens(self, indices: Sequence[int]) -> list[str]:
        """Tokens for ``indices``; a bad id raises naming the id, its position and the vocab size."""
        size, token = len(self), self._token
        out = []
        for pos, index in enumerate(indices):
            index = check_int(index, f"indices[{pos}]")
            if not 0 <= index < size:
                raise IdOutOfRangeError(f"{range_message(index, len(self))} at position {pos}")
            out.append(token(index))
        return out

    # -- default index and growth ---------------------------------------------------------------------
    def set_default_index(self, index: int | None) -> None:
        """Set the id returned for OOV tokens (any int, as in torchtext) or ``None`` to unset it."""
        self._default = None if index is None else check_int(index, "index")

    def get_default_index(self) -> int | None:
        """The default index, or ``None`` when unset (the state after construction)."""
        return self._default

    def insert_token(self, token: str, index: int) -> None:
        """Insert ``token`` at ``index`` (``0..len``), shifting later ids up; the default is not moved."""
        check_token(token)
        index = check_int(index, "index")
        if not 0 <= index <= len(self):
            raise IdOutOfRangeError(f"index {index} is out of range for insert_token into a vocabulary "
                                    f"of size {len(self)} (valid: 0..{len(self)})")
        if (old := self._id(token)) is not None:
            raise DuplicateTokenError(f"token {token!r} is already in the vocabulary with id {old}")
        itos = self.get_itos()
        itos.insert(index, token)
        self._set_store(*store.encode_tokens(itos))  # a new table: the tokens changed

    def append_token(self, token: str) -> None:
        """Add ``token`` with id ``len(vocab)``; an existing token raises ``ValueError``."""
        check_token(token)
        if (old := self._id(token)) is not None:
            raise DuplicateTokenError(f"token {token!r} is already in the vocabulary with id {old}")
        self._extra[token] = len(self)  # found by _id until _table() folds the appended tokens in
        if self._dict is not None:
            self._dict[token] = len(self)
        self._tail.append(token)

    def get_stoi(self) -> dict[str, int]:
        """A new ``{token: id}`` dict in id order, built on each call (the vocab holds one token buffer)."""
        itos = self.get_itos()
        return dict(zip(itos, range(len(itos))))

    def get_itos(self) -> list[str]:
        """A new list of the tokens in id order, built on each call (the vocab holds one token buffer)."""
        return store.decode_all(self._data, self._off) + self._tail

    def packed_tokens(self) -> tuple[str, np.ndarray]:
        """``("".join(get_itos()), int64 code-point length of each token)`` without a Python object per token
        (what a checkpoint's packed ``vocab_itos`` holds).

        Example:
            >>> text, lengths = Vocab(["<pad>", "é", ""]).packed_tokens()
            >>> text, lengths.tolist()
            ('<pad>é', [5, 1, 0])
        """
        self._table()  # appended tokens folded in (a new store: packed again)
        if self._packed is None:  # computed once per store: a run checkpoints its vocabulary every epoch
            self._packed = (self._data.decode("utf-8", "surrogatepass"),
                            np.diff(store.char_offsets(self._data, self._off)).astype(np.int64))
        text, lengths = self._packed
        return text, lengths.copy()

    # -- encoder / decoder ----------------------------------------------------------------------------
    def encode(self, text_or_tokens: str | Sequence[str]) -> list[int]:
        """Ids for a text (tokenized with this vocabulary's tokenizer) or for an already tokenized list.

        Example:
            >>> Vocab(["<unk>", "hello", "!"], default_index=0).encode("Hello, world!")
            [1, 0, 0, 2]
        """
        if isinstance(text_or_tokens, str):
            check_tokenizer(self)  # built without tokenizer= from tokens basic_english never makes: an error
            return self.lookup_indices(self.tokenize(text_or_tokens))
        return self.lookup_indices(text_or_tokens)

    def decode(self, ids: Sequence[int]) -> list[str]:
        """Tokens for ``ids`` (``lookup_tokens``): ``decode(encode(t)) == tokenize(t)`` in-vocab."""
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

        ``basic_english`` and ``split`` run as byte rules in numpy and each chunk's distinct tokens are
        looked up in this vocabulary's byte table, so the cost per token does not grow with the
        vocabulary; other tokenizers run text by text. Memory stays bounded: texts go in chunks of at
        most ~2M characters (a longer text is cut at a space that cannot change its tokens).

        Args:
            texts: The texts (``str``), tokenized with this vocabulary's tokenizer.
            num_workers: 1 = this thread only; 2+ = that many threads (the heavy kernels release
                the GIL; a custom Python tokenizer runs in this thread).

        Returns:
            ``(ids, offsets)``: int64 numpy arrays; text ``i`` is ``ids[offsets[i]:offsets[i+1]]``
            and ``len(offsets) == len(texts) + 1``.

        Raises:
            TypeError: If ``texts`` is a single ``str`` or holds a non-``str``, or ``num_workers`` is not
                an int (numpy ints are fine; ``bool`` is not).
            ValueError: If ``num_workers < 1``.
            TokenNotFoundError: For an OOV token when no default index is set (it is named).

        Example:
            >>> ids, offsets = Vocab(["<unk>", "a", "b"], default_index=0).encode_flat(["a b", "b c"])
            >>> ids.tolist(), offsets.tolist()
            ([1, 2, 2, 0], [0, 2, 4])
        """
        texts, _ = _encode.checked_texts(texts), check_tokenizer(self)
        ids, offsets = _encode.encode_flat(texts, rule=self._rule, tokenize=self.tokenize, table=self._table(),
                                           stoi=_encode.StoiGetter(self._id), num_workers=check_workers(num_workers))
        return _encode.fill_oov(ids, offsets, self._default, texts, self.tokenize), offsets

    # -- equality, pickling, save/load ----------------------------------------------------------------
    def __eq__(self, other: object) -> bool:
        if not isinstance(other, Vocab):
            return NotImplemented
        self._table(), other._table()  # appended tokens folded in
        return (self._data == other._data and np.array_equal(self._off, other._off)
                and self._default == other._default and self._tokenize_fn is other._tokenize_fn)

    __hash__ = None  # mutable

    def __repr__(self) -> str:
        name = self.tokenizer_name or self._tokenize_fn
        extra = "" if self._tokenize_fn is basic_english else f", tokenizer={name!r}"
        return f"Vocab(size={len(self)}, default_index={self._default}{extra})"

    def __getstate__(self) -> dict:
        self._table()  # appended tokens folded in
        state = {"tokens_utf8": self._data, "offsets": self._off.tobytes(), "default_index": self._default,
                 "tokenizer": self.tokenizer_name}
        if self._rule is None:  # a custom function travels by reference (workers may lack the registry)
            state["tokenizer_fn"] = self._tokenize_fn
        return state

    def __setstate__(self, state: dict) -> None:
        if "itos" in state:  # pickles from before the token buffer
            self._set_store(*store.encode_tokens(list(state["itos"])))
        else:
            self._set_store(state["tokens_utf8"], np.frombuffer(state["offsets"], np.int64).copy())
        self._default = state["default_index"]
        name = state.get("tokenizer", "basic_english")  # pickles from before tokenizers were recorded
        self._set_tokenizer(state.get("tokenizer_fn") or name)
        self._tokenizer_given = name

    def save(self, path) -> None:
        """Write the vocab atomically in the ``textpipe-vocab 2`` text format (see ``_vocab_format``).

        Raises:
            ValueError: If the tokenizer is a callable with no registered name (register it with
                ``textpipe.text.tokenizer.register_tokenizer(name, fn)`` first).
            WriteError: Disk full, permission denied, a directory in the way (the old file is kept).
        """
        name = self.tokenizer_name
        if name is None:
            raise ValueError(f"cannot save a vocabulary whose tokenizer {describe_tokenizer(self._tokenize_fn)} has "
                             f"no registered name: call textpipe.text.tokenizer.register_tokenizer('my_name', fn) "
                             f"before saving, and again before Vocab.load in the program that reads it")
        self._table()  # appended tokens folded in
        _vocab_format.save_store(path, self._data, self._off, self._default, name)

    @classmethod
    def load(cls, path) -> "Vocab":
        """Read a file written by ``save`` (format 1 files use ``basic_english``).

        Raises:
            FileNotFoundError, PermissionError, IsADirectoryError: With a message naming the path.
            ValueError: A bad header or line (named), invalid UTF-8, a checksum mismatch, a truncated file,
                or a tokenizer name that is not registered in this process.
        """
        data, offsets, default_index, name = _vocab_format.load_store(path)  # the tokenizer name is checked
        self = cls.__new__(cls)
        if self._set_store(data, offsets):  # two equal tokens: name them and their lines
            _vocab_format.load(path)  # (the list path raises the file's own message)
        self._default = default_index
        self._set_tokenizer(name)
        return self
