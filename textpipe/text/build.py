"""torchtext's constructors ``vocab()`` and ``build_vocab_from_iterator``, and ``build_vocab_from_texts``: specials,
``max_tokens``, torchtext's order. Public as ``textpipe.text.<name>`` and ``textpipe.vocab.<name>``.
"""
from __future__ import annotations

import operator
from collections import Counter
from collections.abc import Callable, Iterable, Mapping, Sequence

from textpipe.core.specials import SPECIALS
from textpipe.text import _count
from textpipe.text import _store as store
from textpipe.text.errors import (DuplicateTokenError, MaxTokensError, all_str, check_int, check_token,
                                    check_workers)

__all__ = ["vocab", "build_vocab_from_iterator", "build_vocab_from_texts", "specials_list", "check_max_tokens",
           "ordered"]


def specials_list(specials: object) -> list[str]:
    if specials is None:
        return []
    if isinstance(specials, (str, bytes)):
        raise TypeError(f"specials must be a list of str tokens, got a single {type(specials).__name__} "
                        f"{specials!r}; wrap it in a list: specials=[{specials!r}]")
    specials = list(specials)
    for i, token in enumerate(specials):
        check_token(token, f"specials[{i}]")
    if len(set(specials)) != len(specials):
        dup = next(t for t in specials if specials.count(t) > 1)
        raise DuplicateTokenError(f"specials must be unique, but {dup!r} is given more than once: "
                                  f"{specials!r}")
    return specials


def check_max_tokens(max_tokens: object, specials: list[str]) -> int | None:
    if max_tokens is None:
        return None
    max_tokens = check_int(max_tokens, "max_tokens")
    if len(specials) >= max_tokens:
        raise MaxTokensError(f"max_tokens must be greater than len(specials) = {len(specials)}, got "
                             f"{max_tokens}: the vocab would be entirely special tokens")
    return max_tokens


def ordered(counter: Mapping[str, int]) -> list[tuple[str, int]]:
    """``(token, count)`` by count descending, then token ascending: torchtext's order."""
    ordered = sorted(counter.items(), key=operator.itemgetter(0))
    ordered.sort(key=operator.itemgetter(1), reverse=True)  # stable: ties stay in token order
    return ordered


def vocab(ordered_dict: Mapping[str, int], min_freq: int = 1, specials: Sequence[str] | None = None,
          special_first: bool = True, *, tokenizer: str | Callable | None = "basic_english"):
    """torchtext's ``vocab()``: keep tokens with count >= ``min_freq`` in the mapping's own order.

    No sorting happens (a plain ``Counter`` gives first-seen order). Specials skip ``min_freq`` and go
    first (or last); a special's own count is ignored. The caller's mapping is never changed.
    ``tokenizer`` is the resulting ``Vocab``'s (see ``Vocab``).

    Example:
        >>> from collections import OrderedDict
        >>> vocab(OrderedDict(b=3, a=3, c=1, d=2), specials=["<unk>"]).get_itos()
        ['<unk>', 'b', 'a', 'c', 'd']
    """
    if not isinstance(ordered_dict, Mapping) and not hasattr(ordered_dict, "items"):
        raise TypeError(f"ordered_dict must be a mapping token -> count, got "
                        f"{type(ordered_dict).__name__}; for a most_common() list pass "
                        f"OrderedDict(counter.most_common())")
    min_freq = check_int(min_freq, "min_freq")
    specials = specials_list(specials)
    skip = set(specials)
    items = list(ordered_dict.items())
    if not all_str(t for t, _ in items):
        check_token(next(t for t, _ in items if not isinstance(t, str)), "every key of ordered_dict")
    tokens = [t for t, freq in items if freq >= min_freq and t not in skip]
    tokens = specials + tokens if special_first else tokens + specials
    from textpipe.text.vocabulary import Vocab
    return Vocab(tokens, tokenizer=tokenizer)


def build_vocab_from_iterator(iterator: Iterable[Iterable[str]], min_freq: int = 1,
                              specials: Sequence[str] | None = None, special_first: bool = True,
                              max_tokens: int | None = None):
    """torchtext's ``build_vocab_from_iterator``: count, sort by (-count, token), cut, then ``vocab()``.

    Each item is an iterable of tokens (a bare ``str`` item counts its characters, as in torchtext).
    ``max_tokens`` keeps the first ``max_tokens - len(specials)`` sorted entries *before* ``min_freq``
    and specials are applied, so the result can be shorter than ``max_tokens`` (spec §3). The result's
    tokenizer is ``basic_english``; for raw texts and another tokenizer use ``build_vocab_from_texts``.

    Example:
        >>> build_vocab_from_iterator([["b", "a"], ["a"]], specials=["<unk>"]).get_itos()
        ['<unk>', 'a', 'b']
    """
    specials = specials_list(specials)
    max_tokens = check_max_tokens(max_tokens, specials)
    counter: Counter = Counter()
    update = counter.update
    for tokens in iterator:  # one C-level count per item; faster than chaining the items
        update(tokens)
    if not all_str(counter):
        check_token(next(t for t in counter if not isinstance(t, str)), "every token yielded by iterator")
    pairs = ordered(counter)
    if max_tokens is not None:
        pairs = pairs[:max_tokens - len(specials)]
    return vocab(dict(pairs), min_freq=min_freq, specials=specials, special_first=special_first)


def build_vocab_from_texts(text_chunks: Iterable[Sequence[str]], *,
                           tokenizer: str | Callable[[str], list[str]] | None = "basic_english",
                           min_freq: int = 1, specials: Sequence[str] | None = SPECIALS,
                           max_tokens: int | None = None, num_workers: int = 2):
    """The vocabulary of raw texts, streamed: the same result as ``build_vocab_from_iterator`` over their tokens.

    Chunks are tokenized and counted as they arrive (``basic_english`` and ``split`` by their byte rules,
    counts per chunk by pyarrow in ``num_workers`` threads, a few chunks in flight) and
    the counts merged, so memory grows with the number of distinct tokens, not with the corpus.

    Args:
        text_chunks: An iterable of chunks, each a list (or tuple) of ``str`` texts, e.g. the texts of
            ``textpipe.data.table.iter_table``'s batches.
        tokenizer: As for ``Vocab``; the result's tokenizer.
        min_freq, specials, max_tokens: As for ``build_vocab_from_iterator`` (torchtext order, the
            ``max_tokens`` cut before ``min_freq``). Specials go first; the default index is unset.
        num_workers: Threads counting chunks (an int >= 1).

    Returns:
        The ``Vocab``, equal to ``build_vocab_from_iterator((tokenize(t) for chunk in text_chunks for t in
        chunk), min_freq, specials, max_tokens=max_tokens)`` with ``tokenizer`` attached.

    Example:
        >>> build_vocab_from_texts([["The cat.", "the dog"], ["A cat"]]).get_itos()
        ['<pad>', '<unk>', 'cat', 'the', '.', 'a', 'dog']
    """
    specials = specials_list(specials)
    max_tokens = check_max_tokens(max_tokens, specials)
    min_freq = check_int(min_freq, "min_freq")
    num_workers = check_workers(num_workers)
    from textpipe.text.vocabulary import Vocab
    probe = Vocab([], tokenizer=tokenizer)  # resolves and checks the tokenizer once
    data, offsets, counts = _count.count_tokens(text_chunks, rule=probe._rule, tokenize=probe.tokenize,
                                                num_workers=num_workers, ordered=ordered)
    if max_tokens is not None and max_tokens - len(specials) < len(counts):  # the cut comes before min_freq
        cut = max_tokens - len(specials)
        data, offsets, counts = data[:int(offsets[cut])], offsets[:cut + 1], counts[:cut]
    keep = counts >= min_freq
    del counts
    for special in specials:  # specials skip min_freq and go first (as vocab() does)
        keep[store.find(data, offsets, special)] = False
    parts = [store.encode_tokens(specials), store.select(data, offsets, keep)]
    del data, offsets, keep
    data, offsets = store.concat(parts)
    del parts
    return Vocab._from_store(data, offsets, tokenizer=tokenizer)


for _fn in (vocab, build_vocab_from_iterator, build_vocab_from_texts):
    _fn.__module__ = "textpipe.vocab"  # where torchtext users import them from
