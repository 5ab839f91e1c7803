"""torchtext's ``torchtext.transforms`` for the classic pipeline, as ``nn.Module``s (spec §5-§7).

``ToTensor``, ``PadTransform``, ``VocabTransform``, ``Truncate``, ``AddToken``, ``LabelToIndex``,
``StrToIntTransform`` and ``Sequential``. Each is a thin module around a function of
``textpipe.functional``, so it composes in ``Sequential``/``nn.Sequential`` as torchtext's did.
``torch.jit.script`` works for ``ToTensor``, ``PadTransform``, ``Truncate``, ``AddToken``,
``StrToIntTransform`` and a ``Sequential`` of them; ``VocabTransform`` and ``LabelToIndex`` hold a
plain-Python ``Vocab`` and run eagerly only.

Run the tests: python3 -m pytest -q tests/test_transforms.py
"""
from __future__ import annotations

from typing import Any, List, Optional

import torch
import torch.nn.functional as F
from torch import nn

from textpipe import functional
from textpipe.text.vocabulary import Vocab

__all__ = ["ToTensor", "PadTransform", "VocabTransform", "Truncate", "AddToken", "LabelToIndex",
           "StrToIntTransform", "Sequential", "TransformArgumentError", "TransformTypeError"]


class TransformArgumentError(ValueError, AssertionError):
    """A bad constructor argument where torchtext used ``assert``: ``except AssertionError`` still catches it."""


class TransformTypeError(TypeError, AssertionError):
    """An argument of the wrong type where torchtext used ``assert isinstance(...)``."""


# Eager bodies hidden from the TorchScript compiler (it emits only the is_scripting() branch).
@torch.jit.unused
def _eager_to_tensor(input: Any, padding_value: Optional[float], dtype: torch.dtype) -> torch.Tensor:
    return functional.to_tensor(input, padding_value=padding_value, dtype=dtype)


@torch.jit.unused
def _eager_truncate(input: Any, max_seq_len: int) -> Any:
    return functional.truncate(input, max_seq_len)


@torch.jit.unused
def _eager_add_token(input: Any, token: Any, begin: bool) -> Any:
    return functional.add_token(input, token, begin=begin)


@torch.jit.unused
def _eager_str_to_int(input: Any) -> Any:
    return functional.str_to_int(input)


class ToTensor(nn.Module):
    """``to_tensor`` as a module.

    Example:
        >>> ToTensor(padding_value=1)([[5], [6, 7]])
        tensor([[5, 1],
                [6, 7]])
    """

    def __init__(self, padding_value: int | float | None = None, dtype: torch.dtype = torch.long) -> None:
        super().__init__()
        self.padding_value, self.dtype = padding_value, dtype
        self._padding: Optional[float] = None if padding_value is None else float(padding_value)

    def forward(self, input: Any) -> torch.Tensor:
        if torch.jit.is_scripting():
            return functional._script_to_tensor(input, self._padding, self.dtype)
        return _eager_to_tensor(input, self.padding_value, self.dtype)


class PadTransform(nn.Module):
    """Right-pad the last dimension up to ``max_length`` with ``pad_value``; never truncate.

    ``pad_value`` is cast to the input's dtype (0.5 pads a long tensor with 0, as in torchtext).

    Example:
        >>> PadTransform(5, 0)(torch.tensor([1, 2, 3]))
        tensor([1, 2, 3, 0, 0])
    """

    def __init__(self, max_length: int, pad_value: int | float) -> None:
        super().__init__()
        if isinstance(max_length, bool) or not isinstance(max_length, int) or max_length < 0:
            raise ValueError(f"max_length must be an int >= 0, got {max_length!r}")
        self.max_length, self.pad_value = max_length, float(pad_value)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        if not torch.jit.is_scripting() and not isinstance(x, torch.Tensor):
            _not_a_tensor(x)
        missing = self.max_length - x.size(-1)
        return F.pad(x, (0, missing), value=self.pad_value) if missing > 0 else x


@torch.jit.unused
def _not_a_tensor(x: Any) -> None:
    raise TypeError(f"PadTransform expects a tensor, got {type(x).__name__}; use torch.tensor(x) or ToTensor() first")


class Truncate(nn.Module):
    """Cut a sequence (or each sequence of a batch) of str or ids to ``max_seq_len``.

    Example:
        >>> Truncate(2)(["a", "b", "c"])
        ['a', 'b']
    """

    def __init__(self, max_seq_len: int) -> None:
        super().__init__()
        self.max_seq_len = max_seq_len

    def forward(self, input: Any) -> Any:
        if torch.jit.is_scripting():
            return functional._script_truncate(input, self.max_seq_len)
        return _eager_truncate(input, self.max_seq_len)


class AddToken(nn.Module):
    """Add ``token`` (an id or a str) at the start (``begin=True``) or end of each sequence.

    Example:
        >>> AddToken(0, begin=False)([[5, 6], [7]])
        [[5, 6, 0], [7, 0]]
    """

    def __init__(self, token: int | str, begin: bool = True) -> None:
        super().__init__()
        self.token, self.begin = token, begin

    def forward(self, input: Any) -> Any:
        if torch.jit.is_scripting():
            return functional._script_add_token(input, self.token, self.begin)
        return _eager_add_token(input, self.token, self.begin)


class StrToIntTransform(nn.Module):
    """``str_to_int`` as a module: ``["1", "2"] -> [1, 2]`` (also for a batch).

    Example:
        >>> StrToIntTransform()([["1"], ["2", "3"]])
        [[1], [2, 3]]
    """

    def forward(self, input: Any) -> Any:
        if torch.jit.is_scripting():
            return functional._script_str_to_int(input)
        return _eager_str_to_int(input)


class VocabTransform(nn.Module):
    """Map tokens to ids with a ``textpipe.Vocab``: ``List[str]`` or ``List[List[str]]``.

    Example:
        >>> VocabTransform(Vocab(["a", "b", "c"]))([["a", "b"], ["c"]])
        [[0, 1], [2]]
    """

    def __init__(self, vocab: Vocab) -> None:
        super().__init__()
        if not isinstance(vocab, Vocab):
            raise TransformTypeError(f"vocab must be a textpipe.Vocab, got {type(vocab).__name__}; build one with "
                                     f"textpipe.text.vocabulary.vocab(...) or build_vocab_from_iterator(...)")
        self.vocab = vocab

    def forward(self, input: list) -> list:
        if isinstance(input, list) and all(isinstance(t, str) for t in input):
            return self.vocab.lookup_indices(input)
        if isinstance(input, list) and all(isinstance(r, list) and all(isinstance(t, str) for t in r)
                                           for r in input):
            return [self.vocab.lookup_indices(row) for row in input]
        raise TypeError(f"input must be a list of str or a list of lists of str, got "
                        f"{type(input).__name__} {input!r:.60}")


class LabelToIndex(nn.Module):
    """Map label names to ids ``0..C-1``, in the given order (or sorted with ``sort_names=True``).

    Args:
        label_names: The unique label names; or
        label_path: A UTF-8 file with one label name per line (blank lines ignored). Give exactly one.
        sort_names: Sort the names first.

    Raises:
        TransformArgumentError: Neither or both of ``label_names``/``label_path``, or duplicate names
            (also a ``ValueError``, and an ``AssertionError`` as torchtext's ``assert`` was).

    Example:
        >>> t = LabelToIndex(["World", "Sports"])
        >>> t(["Sports", "World"]), t("World"), t.label_names
        ([1, 0], 0, ['World', 'Sports'])
    """

    def __init__(self, label_names: Optional[List[str]] = None, label_path: Optional[str] = None,
                 sort_names: bool = False) -> None:
        super().__init__()
        if not label_names and not label_path:
            raise TransformArgumentError("LabelToIndex needs label_names (a list of names) or label_path (a file "
                                         "with one name per line), got neither")
        if label_names and label_path:
            raise TransformArgumentError("label_names and label_path are mutually exclusive; pass only one")
        if label_path:
            with open(label_path, encoding="utf-8") as f:
                label_names = [line.strip() for line in f if line.strip()]
        names = sorted(label_names) if sort_names else list(label_names)
        duplicates = sorted({n for n in names if names.count(n) > 1})
        if duplicates:
            raise TransformArgumentError(f"label names must be unique, got duplicates {duplicates}"
                                         + (f" in {label_path}" if label_path else ""))
        self._label_vocab = Vocab(names)
        self._label_names = self._label_vocab.get_itos()

    def forward(self, input: Any) -> Any:
        if isinstance(input, str):
            return self._label_vocab[input]
        if isinstance(input, list) and all(isinstance(t, str) for t in input):
            return self._label_vocab.lookup_indices(input)
        raise TypeError(f"input must be a label name (str) or a list of them, got {type(input).__name__}")

    @property
    def label_names(self) -> List[str]:
        return self._label_names


class Sequential(nn.Sequential):
    """A chain of text transforms: each module's output is the next one's input (torchtext's ``Sequential``).

    Example:
        >>> Sequential(Truncate(2), AddToken(0), ToTensor())([5, 6, 7])
        tensor([0, 5, 6])
    """

    def forward(self, input: Any) -> Any:
        for module in self:
            input = module(input)
        return input
