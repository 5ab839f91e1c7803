"""Spec §5-§7 examples for to_tensor / ToTensor / PadTransform / VocabTransform.

Run: python3 -m pytest -q tests/test_transforms.py
"""
import pytest
import torch

import numpy as np

from textpipe.functional import add_token, str_to_int, to_tensor, truncate
from textpipe.transforms import (AddToken, LabelToIndex, PadTransform, Sequential, StrToIntTransform, ToTensor,
                                 TransformArgumentError, Truncate, VocabTransform)
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
                                        (torch.tensor([1]), "got Tensor"), ([1, [2]], "input\\[0\\]"),
                                        ([True, 1], "input\\[0\\] is True \\(bool\\)"),
                                        ([[1], [np.float64(2)]], "input\\[1\\]")])
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
    with pytest.raises(TypeError, match="vocab must be a textpipe.Vocab, got dict") as e:
        VocabTransform({"a": 0})
    assert isinstance(e.value, AssertionError)  # torchtext asserted: `except AssertionError` still catches it


def test_to_tensor_accepts_numpy_integers():  # issue 9: np.int64 ids were wrongly rejected
    assert to_tensor([np.int64(1), 2]).tolist() == [1, 2]
    assert to_tensor([[np.int32(3)], [np.uint8(1), 2]], padding_value=0).tolist() == [[3, 0], [1, 2]]
    assert to_tensor([np.int64(5)], dtype=torch.int32).dtype == torch.int32


@pytest.mark.parametrize("data, n, expected", [
    ([1, 2, 3], 2, [1, 2]), (["a", "b", "c"], 5, ["a", "b", "c"]),
    ([[1, 2, 3], [4]], 2, [[1, 2], [4]]), ([["a", "b"], []], 1, [["a"], []]), ([], 3, []),
])
def test_truncate(data, n, expected):
    assert truncate(data, n) == expected and Truncate(n)(data) == expected


@pytest.mark.parametrize("data, token, begin, expected", [
    ([1, 2], 0, True, [0, 1, 2]), (["a"], "<eos>", False, ["a", "<eos>"]),
    ([[1], [2, 3]], 9, False, [[1, 9], [2, 3, 9]]), ([["a"], ["b"]], "<bos>", True, [["<bos>", "a"], ["<bos>", "b"]]),
    ([], 4, True, [4]),
])
def test_add_token(data, token, begin, expected):
    assert add_token(data, token, begin=begin) == expected and AddToken(token, begin=begin)(data) == expected
    assert data != expected  # the input is not changed


@pytest.mark.parametrize("data, token", [([1, 2], "x"), (["a"], 0), ("abc", "x"), ([["a"], 1], "x")])
def test_add_token_type_errors(data, token):
    with pytest.raises(TypeError):
        add_token(data, token)


def test_str_to_int():
    assert str_to_int(["1", "22"]) == [1, 22] and StrToIntTransform()([["1"], ["2", "3"]]) == [[1], [2, 3]]
    with pytest.raises(ValueError, match="input\\[1\\] holds a string that is not an integer"):
        str_to_int([["1"], ["x"]])
    with pytest.raises(TypeError):
        str_to_int([1, 2])


def test_label_to_index(tmp_path):
    t = LabelToIndex(["World", "Sports"])
    assert t(["Sports", "World"]) == [1, 0] and t("World") == 0 and t.label_names == ["World", "Sports"]
    assert LabelToIndex(["b", "a"], sort_names=True).label_names == ["a", "b"]
    path = tmp_path / "labels.txt"
    path.write_text("neg\n\npos\n", encoding="utf-8")
    assert LabelToIndex(label_path=str(path))("pos") == 1
    with pytest.raises(RuntimeError, match="Sci"):  # unknown label: torchtext's RuntimeError class
        t("Sci")


@pytest.mark.parametrize("kwargs, match", [({}, "got neither"), ({"label_names": ["a"], "label_path": "x"},
                                                                   "mutually exclusive"),
                                           ({"label_names": ["a", "a"]}, "duplicates \\['a'\\]")])
def test_label_to_index_errors_are_assertion_errors_too(kwargs, match):
    with pytest.raises(TransformArgumentError, match=match) as e:
        LabelToIndex(**kwargs)
    assert isinstance(e.value, AssertionError) and isinstance(e.value, ValueError)


def test_sequential_pipeline():
    vocab = Vocab(["<pad>", "<bos>", "a", "b"])
    pipe = Sequential(VocabTransform(vocab), Truncate(2), AddToken(1), ToTensor(padding_value=0))
    assert pipe([["a", "b", "a"], ["b"]]).tolist() == [[1, 2, 3], [1, 3, 0]]


@pytest.mark.parametrize("module, data", [
    (ToTensor(padding_value=1), [[5], [6, 7]]), (ToTensor(dtype=torch.int32), [1, 2]),
    (PadTransform(4, 0), torch.tensor([1, 2])), (Truncate(2), [[1, 2, 3]]), (Truncate(1), ["a", "b"]),
    (AddToken("x"), ["a"]), (AddToken(0, begin=False), [[1], [2]]), (StrToIntTransform(), ["1", "22"]),
    (Sequential(Truncate(2), AddToken(0), ToTensor()), [5, 6, 7]),
])
def test_torchscript_matches_eager(module, data):
    import warnings
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")  # torch.jit.script is deprecated in recent torch
        scripted = torch.jit.script(module)
    eager, script = module(data), scripted(data)
    if isinstance(eager, torch.Tensor):
        assert torch.equal(eager, script) and eager.dtype == script.dtype
    else:
        assert eager == script
