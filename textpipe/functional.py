"""``to_tensor``: torchtext's ``torchtext.functional.to_tensor`` (spec §5), with clear errors.

Run the tests: python3 -m pytest -q tests/test_transforms.py
"""
from __future__ import annotations

import torch
from torch.nn.utils.rnn import pad_sequence

__all__ = ["to_tensor"]


def _is_int(x: object) -> bool:
    return isinstance(x, int) and not isinstance(x, bool)


def to_tensor(input, padding_value: int | float | None = None, dtype: torch.dtype = torch.long) -> torch.Tensor:
    """Turn ``List[int]`` or ``List[List[int]]`` into a tensor, right-padding rows when asked.

    Args:
        input: A list of ints (1-D result) or a list of lists of ints (2-D result, batch first).
        padding_value: Pads ragged rows up to the longest; ``None`` requires equal row lengths.
        dtype: The result's dtype (also for a flat list, where torchtext ignored it).

    Returns:
        ``(N,)`` for a flat list, ``(B, T)`` for a list of lists.

    Raises:
        TypeError: For anything but a list of ints or a list of lists of ints.
        ValueError: For ragged rows with ``padding_value=None``.

    Example:
        >>> to_tensor([[1, 2], [3]], padding_value=0)
        tensor([[1, 2],
                [3, 0]])
    """
    if not isinstance(input, list):
        raise TypeError(f"input must be a list of ints or a list of lists of ints, got "
                        f"{type(input).__name__}; convert with list(...) first")
    if all(_is_int(x) for x in input):
        return torch.tensor(input, dtype=dtype) if input else torch.empty(0, dtype=dtype)
    for i, row in enumerate(input):
        if not (isinstance(row, list) and all(_is_int(x) for x in row)):
            raise TypeError(f"input must be a list of ints or a list of lists of ints, but input[{i}] "
                            f"is {row!r} ({type(row).__name__})")
    if padding_value is None:
        lengths = {len(row) for row in input}
        if len(lengths) > 1:
            raise ValueError(f"input rows have different lengths {sorted(lengths)}; pass padding_value "
                             f"(for example padding_value=vocab['<pad>']) to pad them")
        return torch.tensor(input, dtype=dtype).reshape(len(input), lengths.pop())
    rows = [torch.tensor(row, dtype=dtype) for row in input]
    return pad_sequence(rows, batch_first=True, padding_value=float(padding_value)).to(dtype)
