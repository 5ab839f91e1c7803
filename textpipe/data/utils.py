"""torchtext's ``torchtext.data.utils``: ``get_tokenizer``, ``ngrams_iterator``, ``interleave_keys``.

``get_tokenizer`` is ``textpipe.text.tokenizer.get_tokenizer`` itself (no copy); ``ngrams_iterator`` yields what
torchtext's did, in the same order (every token, then every bigram, then every trigram, ...).

Run the tests: python3 -m pytest -q tests/test_data_utils.py
"""
from __future__ import annotations

from collections.abc import Iterator, Sequence

from textpipe.text.tokenizer import get_tokenizer

__all__ = ["get_tokenizer", "ngrams_iterator", "interleave_keys"]


def ngrams_iterator(token_list: Sequence[str], ngrams: int) -> Iterator[str]:
    """Yield the tokens, then their n-grams for n = 2..ngrams, each joined by one space.

    Args:
        token_list: The tokens (a list or tuple of str; a generator would be consumed by the first pass).
        ngrams: The largest n; 1 yields only the tokens.

    Raises:
        TypeError: ``token_list`` is a bare str (it would be split into characters) or not a sequence,
            or ``ngrams`` is not an int.
        ValueError: ``ngrams < 1``.

    Example:
        >>> list(ngrams_iterator(["here", "we", "are"], 2))
        ['here', 'we', 'are', 'here we', 'we are']
    """
    if isinstance(token_list, str):
        raise TypeError("token_list must be a list of tokens, got a str; tokenize it first, "
                        "e.g. ngrams_iterator(tokenizer(text), 2)")
    if not isinstance(token_list, Sequence):
        raise TypeError(f"token_list must be a list or tuple of tokens, got {type(token_list).__name__}; "
                        f"wrap it in list(...)")
    if isinstance(ngrams, bool) or not isinstance(ngrams, int):
        raise TypeError(f"ngrams must be an int, got {type(ngrams).__name__} ({ngrams!r})")
    if ngrams < 1:
        raise ValueError(f"ngrams must be >= 1, got {ngrams}")
    return _ngrams(token_list, ngrams)


def _ngrams(token_list: Sequence[str], ngrams: int) -> Iterator[str]:
    yield from token_list
    for n in range(2, ngrams + 1):
        for gram in zip(*(token_list[i:] for i in range(n))):
            yield " ".join(gram)


def interleave_keys(a: int, b: int) -> int:
    """Interleave the bits of two 16-bit sort keys into one (torchtext's key for two-field bucketing).

    Example:
        >>> interleave_keys(3, 5)
        27
    """
    bits = zip(format(a, "016b"), format(b, "016b"))
    return int("".join(x for pair in bits for x in pair), base=2)
