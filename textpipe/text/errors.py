"""The vocabulary's exceptions (each also an instance of the class torchtext raised) and argument checks.

They are public as ``textpipe.text.<Name>`` and ``textpipe.vocab.<Name>``.
"""
from __future__ import annotations

import operator
from collections.abc import Iterable

__all__ = ["TokenNotFoundError", "IdOutOfRangeError", "DuplicateTokenError", "MaxTokensError"]


class TokenNotFoundError(KeyError, RuntimeError):
    """An out-of-vocabulary token with no default index. Also a ``RuntimeError``, as in torchtext."""

    def __str__(self) -> str:  # KeyError would print the message in quotes
        return str(self.args[0])


class IdOutOfRangeError(IndexError, RuntimeError):
    """An id outside ``0..len(vocab)-1``. Also a ``RuntimeError``, as in torchtext."""


class DuplicateTokenError(ValueError, RuntimeError):
    """A token given twice (itos, specials, insert/append). Also a ``RuntimeError``, as in torchtext."""


class MaxTokensError(ValueError, AssertionError):
    """``max_tokens <= len(specials)``. Also an ``AssertionError``, as torchtext's ``assert``."""


def check_token(token: object, name: str = "token") -> None:
    if not isinstance(token, str):
        raise TypeError(f"{name} must be a str, got {type(token).__name__} ({token!r}); "
                        f"decode bytes or convert the value with str() first")


def all_str(items: Iterable[object]) -> bool:
    """True if every item is a ``str`` (the check runs in C: one ``set(map(type, ...))``)."""
    return all(issubclass(t, str) for t in set(map(type, items)))


def check_int(value: object, name: str) -> int:
    if isinstance(value, str) or not hasattr(value, "__index__"):
        raise TypeError(f"{name} must be an int, got {type(value).__name__} ({value!r})")
    return operator.index(value)


def check_workers(value: object) -> int:
    """An int >= 1 (numpy ints too); bools and floats are refused."""
    if isinstance(value, bool) or isinstance(value, str) or not hasattr(value, "__index__"):
        raise TypeError(f"num_workers must be an int >= 1, got {type(value).__name__} ({value!r})")
    n = operator.index(value)
    if n < 1:
        raise ValueError(f"num_workers must be an int >= 1, got {n}")
    return n


for _cls in (TokenNotFoundError, IdOutOfRangeError, DuplicateTokenError, MaxTokensError):
    _cls.__module__ = "textpipe.vocab"  # where users import them from (and what tracebacks show)


def raise_duplicate(itos: list[str]) -> None:
    """DuplicateTokenError naming the first token that appears twice in ``itos`` and its two ids."""
    seen: dict[str, int] = {}
    for i, token in enumerate(itos):
        if seen.setdefault(token, i) != i:
            raise DuplicateTokenError(f"itos must hold unique tokens, but {token!r} is at ids "
                                      f"{seen[token]} and {i}; remove the duplicate")


def range_message(index: int, size: int) -> str:
    """What an ``IdOutOfRangeError`` says of ``index`` in a vocabulary of ``size`` tokens."""
    valid = f"0..{size - 1}" if size else "none, the vocabulary is empty"
    return f"id {index} is out of range for a vocabulary of size {size} (valid ids: {valid})"
