"""torchtext's ``torchtext.functional``: ``to_tensor``, ``truncate``, ``add_token``, ``str_to_int`` (spec §5).

Same results as torchtext for every input it accepted, with errors that name the bad element. Integers may
be Python or numpy integers (``np.int64`` ids from a corpus are ids, not an error); ``bool`` is refused.
As in torchtext, each function can be compiled: ``torch.jit.script(truncate)`` works, and so do scripted
modules that call these functions. Under TorchScript each runs its ``_script_*`` twin (torchtext's logic, with
``dtype`` honoured); in Python it runs the checked ``_eager_*`` body, which TorchScript never compiles.

Run the tests: python3 -m pytest -q tests/test_transforms.py
"""
from __future__ import annotations

import numbers
from typing import Any, List, Optional, Union

import torch
from torch.nn.utils.rnn import pad_sequence

__all__ = ["to_tensor", "truncate", "add_token", "str_to_int"]

_EXPECTED = "a list of ints or a list of lists of ints"


def _int_types_ok(types: set[type]) -> bool:
    """True if every type is an integer type and none is bool (one check per type, not per item).

    numpy's integer scalars register as ``numbers.Integral``; ``numpy.bool_`` does not.
    """
    return all(issubclass(t, numbers.Integral) and not issubclass(t, bool) for t in types)


def _is_int_list(row: object) -> bool:
    return isinstance(row, list) and _int_types_ok(set(map(type, row)))


def _is_str_list(row: object) -> bool:
    return isinstance(row, list) and all(issubclass(t, str) for t in set(map(type, row)))


def _bad_row(input: list, ok, expected: str) -> TypeError:
    i = next(i for i, row in enumerate(input) if not ok(row))
    return TypeError(f"input must be {expected}, but input[{i}] is {input[i]!r:.60} ({type(input[i]).__name__})")


def to_tensor(input: Any, padding_value: Optional[Union[int, float]] = None,
              dtype: torch.dtype = torch.long) -> torch.Tensor:
    """Turn ``List[int]`` or ``List[List[int]]`` into a tensor, right-padding rows when asked.

    Args:
        input: A list of ints (1-D result) or a list of lists of ints (2-D result, batch first). Python
            ints and numpy integers are accepted; ``bool`` and floats are not.
        padding_value: Pads ragged rows up to the longest; ``None`` requires equal row lengths.
        dtype: The result's dtype (also for a flat list, where torchtext ignored it).

    Returns:
        ``(N,)`` for a flat list, ``(B, T)`` for a list of lists.

    Raises:
        TypeError: For anything but a list of ints or a list of lists of ints (the bad element is named).
        ValueError: For ragged rows with ``padding_value=None``.

    Example:
        >>> to_tensor([[1, 2], [3]], padding_value=0)
        tensor([[1, 2],
                [3, 0]])
    """
    if torch.jit.is_scripting():
        return _script_to_tensor(input, padding_value, dtype)
    return _eager_to_tensor(input, padding_value, dtype)


@torch.jit.unused
def _eager_to_tensor(input: Any, padding_value: Optional[Union[int, float]], dtype: torch.dtype) -> torch.Tensor:
    if not isinstance(input, list):
        raise TypeError(f"input must be {_EXPECTED}, got {type(input).__name__}; convert with list(...) first")
    types = set(map(type, input))
    if _int_types_ok(types):
        return torch.tensor(input, dtype=dtype) if input else torch.empty(0, dtype=dtype)
    if not all(_is_int_list(row) for row in input):
        raise _bad_row(input, _is_int_list, _EXPECTED)
    if padding_value is None:
        lengths = {len(row) for row in input}
        if len(lengths) > 1:
            raise ValueError(f"input rows have different lengths {sorted(lengths)}; pass padding_value "
                             f"(for example padding_value=vocab['<pad>']) to pad them")
        return torch.tensor(input, dtype=dtype).reshape(len(input), lengths.pop())
    rows = [torch.tensor(row, dtype=dtype) for row in input]
    return pad_sequence(rows, batch_first=True, padding_value=float(padding_value)).to(dtype)


def _check_sequences(input, name: str = "input") -> bool:
    """Returns True for a batch (list of lists), False for one sequence; raises TypeError otherwise.

    A sequence is a list of str or a list of ints, a batch a list of such lists (torchtext's four cases).
    """
    expected = "a list of str or ints, or a list of such lists"
    if not isinstance(input, list):
        raise TypeError(f"{name} must be {expected}, got {type(input).__name__}")
    if _is_str_list(input) or _is_int_list(input):
        return False
    ok = lambda row: _is_str_list(row) or _is_int_list(row)  # noqa: E731
    if all(ok(row) for row in input):
        return True
    raise _bad_row(input, ok, expected)


def truncate(input: Any, max_seq_len: int) -> Any:
    """Cut a sequence, or each sequence of a batch, to at most ``max_seq_len`` items.

    Args:
        input: ``List[str]``, ``List[int]``, or a list of such lists.
        max_seq_len: Maximum length kept (Python slicing: ``seq[:max_seq_len]``).

    Returns:
        New list(s); the input is not changed.

    Raises:
        TypeError: For any other input type.

    Example:
        >>> truncate([[1, 2, 3], [4]], 2)
        [[1, 2], [4]]
    """
    if torch.jit.is_scripting():
        return _script_truncate(input, max_seq_len)
    return _eager_truncate(input, max_seq_len)


@torch.jit.unused
def _eager_truncate(input: Any, max_seq_len: int) -> Any:
    if _check_sequences(input):
        return [row[:max_seq_len] for row in input]
    return input[:max_seq_len]


def add_token(input: Any, token_id: Any, begin: bool = True) -> Any:
    """Add ``token_id`` at the start (``begin=True``) or end of a sequence or of each sequence of a batch.

    Args:
        input: ``List[str]``, ``List[int]``, or a list of such lists.
        token_id: An int for id sequences, a str for token sequences.
        begin: Prepend (default) or append.

    Returns:
        New list(s); the input is not changed.

    Raises:
        TypeError: For another input type, or a ``token_id`` whose kind (int/str) does not match the
            sequences'.

    Example:
        >>> add_token([["a", "b"], ["c"]], "<bos>")
        [['<bos>', 'a', 'b'], ['<bos>', 'c']]
    """
    if torch.jit.is_scripting():
        return _script_add_token(input, token_id, begin)
    return _eager_add_token(input, token_id, begin)


@torch.jit.unused
def _eager_add_token(input: Any, token_id: Any, begin: bool) -> Any:
    batch = _check_sequences(input)
    rows = input if batch else [input]
    str_rows = any(_is_str_list(r) and r for r in rows)
    int_rows = any(_is_int_list(r) and r for r in rows)
    token_is_str, token_is_int = isinstance(token_id, str), _int_types_ok({type(token_id)})
    if not (token_is_str or token_is_int) or (str_rows and not token_is_str) or (int_rows and not token_is_int):
        kind = "str" if str_rows else "int" if int_rows else "int or str"
        raise TypeError(f"token_id must be {kind} to match the sequences, got {type(token_id).__name__} "
                        f"({token_id!r})")
    out = [[token_id, *row] if begin else [*row, token_id] for row in rows]
    return out if batch else out[0]


def str_to_int(input: Any) -> Any:
    """Convert numeric strings to ints: ``List[str]`` or ``List[List[str]]``.

    Raises:
        TypeError: For another input type.
        ValueError: For a string that is not an integer (``int()``'s error, naming the position).

    Example:
        >>> str_to_int([["1", "2"], ["3"]])
        [[1, 2], [3]]
    """
    if torch.jit.is_scripting():
        return _script_str_to_int(input)
    return _eager_str_to_int(input)


@torch.jit.unused
def _eager_str_to_int(input: Any) -> Any:
    expected = "a list of str or a list of lists of str"
    if not isinstance(input, list):
        raise TypeError(f"input must be {expected}, got {type(input).__name__}")
    batch = not _is_str_list(input)
    if batch and not all(_is_str_list(row) for row in input):
        raise _bad_row(input, _is_str_list, expected)
    out = []
    for i, row in enumerate(input if batch else [input]):
        try:
            out.append([int(s) for s in row])
        except ValueError as e:
            where = f"input[{i}]" if batch else "input"
            raise ValueError(f"{where} holds a string that is not an integer: {e}") from None
    return out if batch else out[0]


# --- TorchScript twins (what the functions above run under torch.jit.script; torchtext's logic, dtype honoured)

def _script_to_tensor(input: Any, padding_value: Optional[Union[int, float]], dtype: torch.dtype) -> torch.Tensor:
    if torch.jit.isinstance(input, List[int]):
        return torch.tensor(input, dtype=dtype)
    if torch.jit.isinstance(input, List[List[int]]):
        if padding_value is None:
            return torch.tensor(input, dtype=dtype)
        rows = [torch.tensor(ids, dtype=dtype) for ids in input]
        return pad_sequence(rows, batch_first=True, padding_value=float(padding_value)).to(dtype)
    raise TypeError("input must be a list of ints or a list of lists of ints")


def _script_truncate(input: Any, max_seq_len: int) -> Any:
    if torch.jit.isinstance(input, List[int]):
        return input[:max_seq_len]
    if torch.jit.isinstance(input, List[str]):
        return input[:max_seq_len]
    if torch.jit.isinstance(input, List[List[int]]):
        out_ids: List[List[int]] = [ids[:max_seq_len] for ids in input]
        return out_ids
    if torch.jit.isinstance(input, List[List[str]]):
        out_str: List[List[str]] = [ids[:max_seq_len] for ids in input]
        return out_str
    raise TypeError("input must be a list of str or ints, or a list of such lists")


def _script_add_token(input: Any, token_id: Any, begin: bool) -> Any:
    if torch.jit.isinstance(input, List[int]) and torch.jit.isinstance(token_id, int):
        return [token_id] + input if begin else input + [token_id]
    if torch.jit.isinstance(input, List[str]) and torch.jit.isinstance(token_id, str):
        return [token_id] + input if begin else input + [token_id]
    if torch.jit.isinstance(input, List[List[int]]) and torch.jit.isinstance(token_id, int):
        out_ids: List[List[int]] = [[token_id] + ids if begin else ids + [token_id] for ids in input]
        return out_ids
    if torch.jit.isinstance(input, List[List[str]]) and torch.jit.isinstance(token_id, str):
        out_str: List[List[str]] = [[token_id] + ids if begin else ids + [token_id] for ids in input]
        return out_str
    raise TypeError("input must be a list of str or ints, or a list of such lists, with a token_id of the same kind")


def _script_str_to_int(input: Any) -> Any:
    if torch.jit.isinstance(input, List[str]):
        out: List[int] = [int(s) for s in input]
        return out
    if torch.jit.isinstance(input, List[List[str]]):
        out_rows: List[List[int]] = [[int(s) for s in row] for row in input]
        return out_rows
    raise TypeError("input must be a list of str or a list of lists of str")
