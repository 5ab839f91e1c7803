"""torchtext-compatible ``nn.Module`` transforms (spec §5-§7): ``ToTensor``, ``PadTransform``,
``VocabTransform``. Each is a thin module around a plain function, so it composes in
``nn.Sequential`` as torchtext's did.

Run the tests: python3 -m pytest -q tests/test_transforms.py
"""
from __future__ import annotations

import torch
import torch.nn.functional as F
from torch import nn

from textpipe.functional import to_tensor
from textpipe.vocab import Vocab

__all__ = ["ToTensor", "PadTransform", "VocabTransform"]


class ToTensor(nn.Module):
    """``to_tensor`` as a module.

    Example:
        >>> ToTensor(padding_value=1)([[5], [6, 7]])
        tensor([[5, 1],
                [6, 7]])
    """

    def __init__(self, padding_value: int | None = None, dtype: torch.dtype = torch.long) -> None:
        super().__init__()
        self.padding_value, self.dtype = padding_value, dtype

    def forward(self, input) -> torch.Tensor:
        return to_tensor(input, padding_value=self.padding_value, dtype=self.dtype)


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
        if not isinstance(x, torch.Tensor):
            raise TypeError(f"PadTransform expects a tensor, got {type(x).__name__}; "
                            f"use torch.tensor(x) or ToTensor() first")
        missing = self.max_length - x.size(-1)
        return F.pad(x, (0, missing), value=self.pad_value) if missing > 0 else x


class VocabTransform(nn.Module):
    """Map tokens to ids with a ``textpipe.Vocab``: ``List[str]`` or ``List[List[str]]``.

    Example:
        >>> VocabTransform(Vocab(["a", "b", "c"]))([["a", "b"], ["c"]])
        [[0, 1], [2]]
    """

    def __init__(self, vocab: Vocab) -> None:
        super().__init__()
        if not isinstance(vocab, Vocab):
            raise TypeError(f"vocab must be a textpipe.Vocab, got {type(vocab).__name__}; build one with "
                            f"textpipe.vocab.vocab(...) or build_vocab_from_iterator(...)")
        self.vocab = vocab

    def forward(self, input: list) -> list:
        if isinstance(input, list) and all(isinstance(t, str) for t in input):
            return self.vocab.lookup_indices(input)
        if isinstance(input, list) and all(isinstance(r, list) and all(isinstance(t, str) for t in r)
                                           for r in input):
            return [self.vocab.lookup_indices(row) for row in input]
        raise TypeError(f"input must be a list of str or a list of lists of str, got "
                        f"{type(input).__name__} {input!r:.60}")
