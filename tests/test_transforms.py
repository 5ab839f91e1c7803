"""Spec §5-§7 examples for to_tensor / ToTensor / PadTransform / VocabTransform.

Run: python3 -m pytest -q tests/test_transforms.py
"""
import pytest
import torch

from textpipe.functional import to_tensor
from textpipe.transforms import PadTransform, ToTensor, VocabTransform
from textpipe.vocab import TokenNotFoundError, Vocab


@pytest.mark.parametrize("data, kwargs, expected, dtype", [
    ([1, 2, 3], {}, [1, 2, 3], torch.int64),
    ([1, 2, 3], {"dtype": torch.int32}, [1, 2, 3], torch.int32),  # torchtext ignored dtype here
    ([[1, 2], [3, 4]], {"dtype": torch.int32}, [[1, 2], [3, 4]], torch.int32),
    ([[1, 2], [3]], {"padding_value": 0}, [[1, 2], [3, 0]], torch.int64),
    ([[1], [2, 3, 4]], {"padding_value": -1, "dtype": torch.float}, [[1, -1, -1], [2, 3, 4]], torch.float),
    ([[1, 2], []], {"padding_value": 9}, [[1, 2], [9, 9]], torch.int64),
])
def test_to_tensor_examples(data, kwargs, expected, dtype):
    out = to_tensor(data, **kwargs)
    assert out.dtype == dtype and out.tolist() == expected


def test_to_tensor_empty_inputs():
    assert to_tensor([]).shape == (0,) and to_tensor([]).dtype == torch.int64
    assert to_tensor([[]]).shape == (1, 0) and to_tensor([[]]).dtype == torch.int64


def test_to_tensor_ragged_without_padding():
    with pytest.raises(ValueError, match=r"different lengths \[1, 2\]; pass padding_value"):
        to_tensor([[1, 2], [3]])


@pytest.mark.parametrize("bad, found", [([1.5], "input\\[0\\] is 1.5"), ((1, 2), "got tuple"),
                                        (torch.tensor([1]), "got Tensor"), ([1, [2]], "input\\[0\\]")])
def test_to_tensor_type_errors(bad, found):
    with pytest.raises(TypeError, match=found):
        to_tensor(bad)


def test_to_tensor_module():
    assert ToTensor(padding_value=1)([[5], [6, 7]]).tolist() == [[5, 1], [6, 7]]


@pytest.mark.parametrize("max_length, pad, data, expected", [
    (5, 0, [1, 2, 3], [1, 2, 3, 0, 0]),
    (2, 0, [1, 2, 3], [1, 2, 3]),
    (4, 1, [[1, 2], [3, 4]], [[1, 2, 1, 1], [3, 4, 1, 1]]),
])
def test_pad_transform(max_length, pad, data, expected):
    out = PadTransform(max_length, pad)(torch.tensor(data))
    assert out.tolist() == expected and out.dtype == torch.int64


def test_pad_transform_empty_and_value_cast():
    assert PadTransform(3, 7)(torch.tensor([])).tolist() == [7, 7, 7]
    assert PadTransform(3, 0.5)(torch.tensor([1])).tolist() == [1, 0, 0]
    assert PadTransform(3, 0.5)(torch.tensor([1.0])).tolist() == [1.0, 0.5, 0.5]


def test_vocab_transform():
    vt = VocabTransform(Vocab(["a", "b", "c"]))
    assert vt(["a", "c"]) == [0, 2]
    assert vt([["a", "b"], ["a", "b", "c"]]) == [[0, 1], [0, 1, 2]]
    assert vt([]) == [] and vt([[]]) == [[]]
    for bad in ("abc", ["a", ["b"]]):
        with pytest.raises(TypeError, match="list of str or a list of lists of str"):
            vt(bad)
    with pytest.raises(TokenNotFoundError, match="token 'zz'"):
        vt(["a", "zz"])
    v = Vocab(["a", "b", "c"], default_index=3)
    assert VocabTransform(v)(["a", "zz"]) == [0, 3]


def test_vocab_transform_requires_a_vocab():
    with pytest.raises(TypeError, match="vocab must be a textpipe.Vocab, got dict"):
        VocabTransform({"a": 0})
