"""The logic of ``vocab()``, ``build_vocab_from_iterator`` and ``build_vocab_from_texts``: specials,
``max_tokens``, torchtext's order. ``vocab.py`` keeps the public functions (which build the ``Vocab``).
"""
from __future__ import annotations

import operator
from collections.abc import Mapping

from textpipe._vocab_errors import DuplicateTokenError, MaxTokensError, _check_int, _check_token

__all__ = ["specials_list", "check_max_tokens", "ordered"]


def specials_list(specials: object) -> list[str]:
    if specials is None:
        return []
    if isinstance(specials, (str, bytes)):
        raise TypeError(f"specials must be a list of str tokens, got a single {type(specials).__name__} "
                        f"{specials!r}; wrap it in a list: specials=[{specials!r}]")
    specials = list(specials)
    for i, token in enumerate(specials):
        _check_token(token, f"specials[{i}]")
    if len(set(specials)) != len(specials):
        dup = next(t for t in specials if specials.count(t) > 1)
        raise DuplicateTokenError(f"specials must be unique, but {dup!r} is given more than once: "
                                  f"{specials!r}")
    return specials


def check_max_tokens(max_tokens: object, specials: list[str]) -> int | None:
    if max_tokens is None:
        return None
    max_tokens = _check_int(max_tokens, "max_tokens")
    if len(specials) >= max_tokens:
        raise MaxTokensError(f"max_tokens must be greater than len(specials) = {len(specials)}, got "
                             f"{max_tokens}: the vocab would be entirely special tokens")
    return max_tokens


def ordered(counter: Mapping[str, int]) -> list[tuple[str, int]]:
    """``(token, count)`` by count descending, then token ascending: torchtext's order."""
    ordered = sorted(counter.items(), key=operator.itemgetter(0))
    ordered.sort(key=operator.itemgetter(1), reverse=True)  # stable: ties stay in token order
    return ordered
