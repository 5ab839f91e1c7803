"""The ``basic_english`` tokenizer, token-for-token identical to torchtext 0.18, and ``get_tokenizer``.

torchtext lower-cases, applies twelve regex substitutions one after another and calls ``str.split()``
(spec §1). textpipe gets the same output from C-level ``str`` methods: ``lower``, two ``replace`` calls
that must run first (``"`` deletion can create a ``<br />``), then plain one-character replacements,
then ``split``. ``tests/test_tokenizer.py`` proves the equivalence against the literal algorithm.

Run the tests: python3 -m pytest -q tests/test_tokenizer.py
"""
from __future__ import annotations

import os
import stat
from collections.abc import Callable, Sequence

__all__ = ["basic_english", "basic_english_batch", "get_tokenizer", "register_tokenizer",
           "tokenizer_name", "TokenizerTypeError"]

# subtle: the order in _normalize matters. '"' is deleted before '<br />' is matched
# ('a<br "/>b' -> ['a', 'b']), and ';' ':' become spaces only after it ('a<br;/>b' -> ['a<br', '/>b']).
# The other rewrites add spaces next to a character that stays, so they can neither create nor destroy
# a '<br />'. torchtext's "'" -> " '  " (two spaces after) splits exactly like " ' ".

# Joins texts in basic_english_batch. It must not be whitespace, must lower-case to itself and must be
# neither cased nor case-ignorable, so that the final-sigma rule of str.lower sees a word boundary
# here exactly as it sees the end of a text ('AΣ\x00B'.lower() == 'aς\x00b').
SEP = "\x00"
_BATCH_CHUNK = 4096  # texts per joined string: big enough to amortise, small enough to stay in cache


def check_str(text: object, name: str = "text") -> None:
    if not isinstance(text, str):
        raise TypeError(f"{name} must be a str, got {type(text).__name__}; "
                        f"decode bytes first (b.decode('utf-8')) or pass str(x)")


def _normalize(text: str) -> str:
    """Lower-case and rewrite punctuation; the result split on whitespace gives the tokens."""
    # One chain of C-level calls: str.replace returns its input unchanged when there is no match.
    return (text.lower().replace('"', "").replace("<br />", " ")
            .replace("'", " ' ").replace(".", " . ").replace(",", " , ").replace("(", " ( ")
            .replace(")", " ) ").replace("!", " ! ").replace("?", " ? ").replace(";", " ").replace(":", " "))


def basic_english(text: str) -> list[str]:
    """Tokenize one text exactly like torchtext's ``get_tokenizer("basic_english")``.

    Args:
        text: Any ``str``; every Unicode code point, lone surrogates included, is accepted.

    Returns:
        The tokens: never empty strings, never containing a whitespace character.

    Raises:
        TypeError: If ``text`` is not a ``str`` (torchtext raised AttributeError for ``None``).

    Example:
        >>> basic_english("It's 3.14, (approx.)<br />Done!")
        ['it', "'", 's', '3', '.', '14', ',', '(', 'approx', '.', ')', 'done', '!']
    """
    check_str(text)
    return _normalize(text).split()


def basic_english_batch(texts: Sequence[str]) -> list[list[str]]:
    """Tokenize many texts; the same output as ``[basic_english(t) for t in texts]``.

    Texts are joined with a NUL separator and normalized as one string, which replaces thousands of
    small C calls with a few large ones (a few percent faster than the loop; most of the time goes into
    creating the token strings). A chunk whose texts already contain NUL is done text by text.

    Args:
        texts: A sequence (list, tuple, ...) of ``str``.

    Returns:
        One token list per text, in order.

    Raises:
        TypeError: If ``texts`` is a bare ``str`` or holds a non-``str`` item (its position is named).

    Example:
        >>> basic_english_batch(["Hello, World!", "ΟΔΟΣ"])
        [['hello', ',', 'world', '!'], ['οδος']]
    """
    if isinstance(texts, str):
        raise TypeError("texts must be a sequence of str, got a single str; "
                        "call basic_english(text) or pass [text]")
    texts = list(texts)
    for i, text in enumerate(texts):
        if not isinstance(text, str):
            check_str(text, name=f"texts[{i}]")
    out: list[list[str]] = []
    for start in range(0, len(texts), _BATCH_CHUNK):
        chunk = texts[start:start + _BATCH_CHUNK]
        joined = SEP.join(chunk)
        if joined.count(SEP) != len(chunk) - 1:
            out.extend(_normalize(t).split() for t in chunk)  # a text holds NUL: no batching
            continue
        out.extend(part.split() for part in _normalize(joined).split(SEP))
    return out


def split_whitespace(text: str) -> list[str]:
    """``str.split`` with torchtext's ``get_tokenizer(None)`` semantics and a clear type error."""
    check_str(text)
    return text.split()


class TokenizerTypeError(TypeError, ValueError):
    """A tokenizer argument of the wrong type; also a ``ValueError`` (torchtext code may catch either)."""


_BUILTIN = {"basic_english": basic_english, "split": split_whitespace, "whitespace": split_whitespace}
_TOKENIZERS: dict[str, Callable[[str], list[str]]] = dict(_BUILTIN)
# hf:FILE loaded by get_tokenizer -> the file's stamp when it was read: a changed file is read again
_HF_STAMPS: dict[str, tuple | None] = {}


def register_tokenizer(name: str, fn: Callable[[str], list[str]], *, overwrite: bool = False) -> None:
    """Give a tokenizer function a name, so a ``Vocab`` built with it can be saved and loaded.

    A vocabulary file records its tokenizer by name; the program that loads it registers the same
    function under the same name first. Registering the same function twice is a no-op.

    Args:
        name: A non-empty name without whitespace, e.g. ``"my_project.wordpiece"``.
        fn: A callable ``str -> list[str]``; a module-level function if vocabularies travel to worker
            processes (it is pickled by reference).
        overwrite: Replace a different function already registered under ``name`` (never allowed for
            the built-in names).

    Raises:
        TypeError: If ``name`` is not a ``str`` or ``fn`` is not callable.
        ValueError: If ``name`` is empty or holds whitespace, is a built-in name, or is taken by
            another function and ``overwrite`` is false.

    Example:
        >>> register_tokenizer("example.chars", list)
        >>> get_tokenizer("example.chars")("ab")
        ['a', 'b']
    """
    if not isinstance(name, str):
        raise TypeError(f"name must be a str, got {type(name).__name__} ({name!r})")
    if not name or name != name.strip() or any(c.isspace() for c in name):
        raise ValueError(f"name must be a non-empty name without whitespace, got {name!r}")
    if not callable(fn):
        raise TypeError(f"fn must be a callable str -> list[str], got {type(fn).__name__}")
    old = _TOKENIZERS.get(name)
    if old is fn:
        return
    if name in _BUILTIN:
        raise ValueError(f"{name!r} is a built-in tokenizer name and cannot be re-registered; choose "
                         f"another name")
    if old is not None and not overwrite:
        raise ValueError(f"tokenizer name {name!r} is already registered for {old!r}; pass "
                         f"overwrite=True to replace it, or choose another name")
    _TOKENIZERS[name] = fn
    _HF_STAMPS.pop(name, None)  # registered (a checkpoint's saved tokenizer): kept, whatever the file does


def tokenizer_name(fn: Callable[[str], list[str]]) -> str | None:
    """The registered name of ``fn`` (``"split"`` for ``str.split``-like built-ins), or ``None``."""
    for name, registered in _TOKENIZERS.items():
        if registered is fn:
            return name
    return None


def describe_tokenizer(fn: Callable) -> str:
    """``'name'`` for a registered tokenizer, else the function's qualified name (for messages)."""
    name = tokenizer_name(fn)
    return repr(name) if name else getattr(fn, "__qualname__", None) or repr(fn)


def check_tokens(tokens: object, fn: Callable, text: str) -> list[str]:
    """A custom tokenizer's output, checked: a list (or tuple, returned as a list) of ``str``.

    Raises:
        TypeError: Naming the tokenizer, the bad item and its position (nothing is coerced).
    """
    if isinstance(tokens, tuple):
        tokens = list(tokens)
    if not isinstance(tokens, list):
        raise TypeError(f"tokenizer {describe_tokenizer(fn)} returned {type(tokens).__name__} for "
                        f"{text[:40]!r}; expected a list of str tokens")
    if not all(issubclass(t, str) for t in set(map(type, tokens))):
        pos = next(i for i, t in enumerate(tokens) if not isinstance(t, str))
        raise TypeError(f"tokenizer {describe_tokenizer(fn)} returned an item of type {type(tokens[pos]).__name__} "
                        f"({tokens[pos]!r}) at position {pos} for {text[:40]!r}; expected a list of str "
                        f"tokens (convert with str() inside the tokenizer)")
    return tokens


def resolve_tokenizer(tokenizer: str | Callable[[str], list[str]] | None) -> tuple[str | None, Callable]:
    """``(name or None, function)`` for a name, a callable or ``None`` (``"split"``, as in ``get_tokenizer``)."""
    if tokenizer is None:
        return "split", split_whitespace
    if isinstance(tokenizer, str):
        return tokenizer, get_tokenizer(tokenizer)
    if callable(tokenizer):
        return tokenizer_name(tokenizer), tokenizer
    raise TokenizerTypeError(f"tokenizer must be a registered name (str), None or a callable "
                             f"str -> list[str], got {type(tokenizer).__name__} ({tokenizer!r})")


def _file_stamp(path: str) -> tuple | None:
    """`(size, mtime_ns, inode, ctime_ns)` of a file, None for anything else (a model directory or name)."""
    try:
        st = os.stat(path)
    except OSError:
        return None
    return (st.st_size, st.st_mtime_ns, st.st_ino, st.st_ctime_ns) if stat.S_ISREG(st.st_mode) else None


def get_tokenizer(tokenizer: str | Callable[[str], list[str]] | None,
                  language: str = "en") -> Callable[[str], list[str]]:
    """Return a tokenizer function, mirroring ``torchtext.data.utils.get_tokenizer``.

    Args:
        tokenizer: ``"basic_english"``; ``None``, ``"split"`` or ``"whitespace"`` for plain ``str.split()``
            (no lower-casing); ``"hf:tokenizer.json"`` (a Hugging Face ``tokenizers`` file) or ``"hf:DIR"``
            (a pretrained model's tokenizer; see ``textpipe.text.subword``); a name given to
            ``register_tokenizer``; or a callable, returned unchanged.
        language: Only ``"en"`` for ``"basic_english"``, as in torchtext; ignored otherwise.

    Returns:
        A function ``str -> list[str]``.

    Raises:
        ValueError: For an unknown name (the message lists the known names), or a ``language``
            other than ``"en"`` with ``"basic_english"``.
        TokenizerTypeError: If ``tokenizer`` is neither a str, ``None`` nor callable (a ``TypeError``
            and a ``ValueError``).

    Example:
        >>> get_tokenizer(None)("A b,  c")
        ['A', 'b,', 'c']
    """
    name = tokenizer  # torchtext's parameter name, kept so keyword calls still work
    if name is None:
        return split_whitespace
    if callable(name):
        return name
    if not isinstance(name, str):
        raise TokenizerTypeError(f"tokenizer must be a str, None or a callable, got {type(name).__name__}")
    if name == "basic_english" and language != "en":
        raise ValueError(f"basic_english is only available for language='en', got {language!r}")
    if name in _HF_STAMPS and _HF_STAMPS[name] != (stamp := _file_stamp(name[3:])) and stamp is not None:
        del _TOKENIZERS[name]  # the tokenizer file changed (retrained at the same path): read it again
    try:
        return _TOKENIZERS[name]
    except KeyError:
        if name.startswith("hf:"):  # a Hugging Face tokenizer, loaded once per file version (needs the hf extra)
            from textpipe.text.subword import load_hf_tokenizer

            stamp = _file_stamp(name[3:])
            fn = _TOKENIZERS[name] = load_hf_tokenizer(name)
            _HF_STAMPS[name] = stamp
            return fn
        known = ", ".join(repr(k) for k in [*_TOKENIZERS, None])
        raise ValueError(f"unknown tokenizer {name!r}; known tokenizers: {known}, hf:tokenizer.json, hf:MODEL_DIR, "
                         f"or pass a callable str -> list[str] (spacy/moses are not bundled; "
                         f"register your own with textpipe.text.tokenizer.register_tokenizer)") from None
