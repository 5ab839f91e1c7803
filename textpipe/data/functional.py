"""torchtext's ``torchtext.data.functional`` for the classic pipeline.

``to_map_style_dataset``, ``simple_space_split``, ``custom_replace``, ``numericalize_tokens_from_iterator``:
the same outputs as torchtext's. The sentencepiece helpers and ``filter_wikipedia_xml`` are not provided
(see the README's list of differences).

Run the tests: python3 -m pytest -q tests/test_data_functional.py
"""
from __future__ import annotations

import re
from collections.abc import Callable, Container, Iterable, Iterator, Mapping

from torch.utils.data import Dataset

__all__ = ["to_map_style_dataset", "MapStyleDataset", "simple_space_split", "custom_replace",
           "numericalize_tokens_from_iterator"]


class MapStyleDataset(Dataset):
    """All items of an iterable, held in a list: ``len()`` and ``ds[i]`` (what ``to_map_style_dataset`` returns).

    A module-level class (torchtext's was local to the function), so the dataset pickles, and DataLoader
    workers started with ``spawn``/``forkserver`` can receive it.
    """

    def __init__(self, iter_data: Iterable) -> None:
        self._data = list(iter_data)

    def __len__(self) -> int:
        return len(self._data)

    def __getitem__(self, idx: int):
        return self._data[idx]


def to_map_style_dataset(iter_data: Iterable) -> MapStyleDataset:
    """Read an iterable (an ``AG_NEWS`` split, a list, an open file, a generator) into a map-style dataset.

    Raises:
        TypeError: ``iter_data`` is not iterable.

    Example:
        >>> ds = to_map_style_dataset(iter([(1, "a"), (2, "b")]))
        >>> len(ds), ds[1]
        (2, (2, 'b'))
    """
    try:
        iter(iter_data)
    except TypeError:
        raise TypeError(f"iter_data must be iterable (a dataset, list, file or generator), got "
                        f"{type(iter_data).__name__}") from None
    return MapStyleDataset(iter_data)


def simple_space_split(iterator: Iterable[str]) -> Iterator[list[str]]:
    """Yield ``line.split()`` for each line.

    Example:
        >>> list(simple_space_split(["Sentencepiece encode as pieces", "example to try!"]))
        [['Sentencepiece', 'encode', 'as', 'pieces'], ['example', 'to', 'try!']]
    """
    for i, line in enumerate(iterator):
        if not isinstance(line, str):
            raise TypeError(f"simple_space_split expects str lines, got {type(line).__name__} at position {i}")
        yield line.split()


def custom_replace(replace_pattern: Iterable[tuple[str, str]]) -> Callable[[Iterable[str]], Iterator[str]]:
    r"""Return a transform that applies each ``(regex, replacement)`` in order to every line of an iterator.

    Raises:
        ValueError: A pattern is not a ``(regex, replacement)`` pair, or the regex does not compile (the
            pattern is named).

    Example:
        >>> f = custom_replace([(r"S", "s"), (r"\s+", " ")])
        >>> list(f(["Sentencepiece encode  aS  pieces", "exampleS to   try!"]))
        ['sentencepiece encode as pieces', 'examples to try!']
    """
    patterns = []
    for item in replace_pattern:
        if not (isinstance(item, (tuple, list)) and len(item) == 2):
            raise ValueError(f"replace_pattern must hold (regex, replacement) pairs, got {item!r}")
        try:
            patterns.append((re.compile(item[0]), item[1]))
        except re.error as e:
            raise ValueError(f"invalid regex {item[0]!r} in replace_pattern: {e}") from None

    def _replace(txt_iter: Iterable[str]) -> Iterator[str]:
        for line in txt_iter:
            for pattern, replacement in patterns:
                line = pattern.sub(replacement, line)
            yield line

    return _replace


def numericalize_tokens_from_iterator(vocab: Mapping[str, int], iterator: Iterable[Iterable[str]],
                                      removed_tokens: Container[str] | None = None) -> Iterator[Iterator[int]]:
    """For each token list, yield an iterator of ``vocab[token]``, leaving out ``removed_tokens``.

    ``vocab`` is anything indexable by token: a ``Vocab`` or a plain dict.

    Example:
        >>> vocab = {"Sentencepiece": 0, "encode": 1, "as": 2, "pieces": 3}
        >>> ids = numericalize_tokens_from_iterator(vocab, simple_space_split(["Sentencepiece as pieces", "as pieces"]))
        >>> [list(i) for i in ids]
        [[0, 2, 3], [2, 3]]
    """
    for tokens in iterator:
        if removed_tokens is None:
            yield iter([vocab[token] for token in tokens])
        else:
            yield iter([vocab[token] for token in tokens if token not in removed_tokens])
