"""torchtext's ``torchtext.data.functional`` for the classic pipeline.

``to_map_style_dataset``, ``simple_space_split``, ``custom_replace``, ``numericalize_tokens_from_iterator``:
the same outputs as torchtext's. The sentencepiece helpers (``generate_sp_model``, ``load_sp_model``,
``sentencepiece_numericalizer``, ``sentencepiece_tokenizer``) are thin wrappers over the ``sentencepiece``
package, which textpipe does not install (torchtext bundled a C++ copy): without it they raise an
``ImportError`` saying what to install. ``filter_wikipedia_xml`` is not provided.

Run the tests: python3 -m pytest -q tests/test_data_functional.py
"""
from __future__ import annotations

import io
import os
import re
from collections.abc import Callable, Container, Iterable, Iterator, Mapping
from typing import Any

from torch.utils.data import Dataset

__all__ = ["to_map_style_dataset", "MapStyleDataset", "simple_space_split", "custom_replace",
           "numericalize_tokens_from_iterator", "generate_sp_model", "load_sp_model", "sentencepiece_numericalizer",
           "sentencepiece_tokenizer"]


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


# --- sentencepiece (optional: `pip install sentencepiece`)

def _sentencepiece(caller: str):
    try:
        import sentencepiece
    except ImportError:
        raise ImportError(f"{caller} needs the sentencepiece package, which textpipe does not install (torchtext "
                          f"bundled a copy): pip install sentencepiece") from None
    return sentencepiece


def generate_sp_model(filename: str | os.PathLike, vocab_size: int = 20000, model_type: str = "unigram",
                      model_prefix: str = "m_user") -> None:
    """Train a SentencePiece model on the text file ``filename``; writes ``{model_prefix}.model`` and ``.vocab``.

    Raises:
        ImportError: The ``sentencepiece`` package is not installed.
        FileNotFoundError: ``filename`` does not exist.
        RuntimeError: SentencePiece could not train on it (its message, with the file named).
    """
    spm = _sentencepiece("generate_sp_model")
    if not os.path.isfile(filename):
        raise FileNotFoundError(f"{filename}: no such text file to train a SentencePiece model on")
    try:
        spm.SentencePieceTrainer.train(input=os.fspath(filename), vocab_size=vocab_size, model_type=model_type,
                                       model_prefix=os.fspath(model_prefix))
    except RuntimeError as e:  # e.g. "Vocabulary size too high": say which file
        raise RuntimeError(f"SentencePiece could not train on {filename}: {e}") from e


def load_sp_model(spm: str | os.PathLike | io.BufferedIOBase) -> Any:
    """Load a SentencePiece model from a path or a binary file object; returns a ``SentencePieceProcessor``.

    Its ``EncodeAsIds``/``EncodeAsPieces``/``GetPieceSize`` are the methods torchtext's model had.

    Raises:
        TypeError: ``spm`` is neither a path nor a binary file (torchtext's message, checked first).
        ImportError: The ``sentencepiece`` package is not installed.
        FileNotFoundError: The path does not exist.
    """
    if not isinstance(spm, (str, os.PathLike, io.BufferedIOBase)):
        raise TypeError(f"Unsupported type for spm argument: {type(spm).__name__}. Supported types are: str, "
                        f"io.BufferedReader (a model file opened with 'rb'), os.PathLike")
    sentencepiece = _sentencepiece("load_sp_model")
    if isinstance(spm, io.BufferedIOBase):
        return sentencepiece.SentencePieceProcessor(model_proto=spm.read())
    if not os.path.isfile(spm):
        raise FileNotFoundError(f"{spm}: no such SentencePiece model file (make one with generate_sp_model)")
    return sentencepiece.SentencePieceProcessor(model_file=os.fspath(spm))


def sentencepiece_numericalizer(sp_model: Any) -> Callable[[Iterable[str]], Iterator[list[int]]]:
    """Return a transform that yields ``sp_model.EncodeAsIds(line)`` for each line."""
    def _numericalize(txt_iter: Iterable[str]) -> Iterator[list[int]]:
        for line in txt_iter:
            yield sp_model.EncodeAsIds(line)
    return _numericalize


def sentencepiece_tokenizer(sp_model: Any) -> Callable[[Iterable[str]], Iterator[list[str]]]:
    """Return a transform that yields ``sp_model.EncodeAsPieces(line)`` for each line."""
    def _tokenize(txt_iter: Iterable[str]) -> Iterator[list[str]]:
        for line in txt_iter:
            yield sp_model.EncodeAsPieces(line)
    return _tokenize
