"""textpipe.data.utils and textpipe.data.functional against torchtext 0.18's documented examples.

Run: python3 -m pytest -q tests/test_data_utils.py
"""
import pytest

from textpipe.text import tokenizer
from textpipe.data import functional as F
from textpipe.data.utils import get_tokenizer, interleave_keys, ngrams_iterator


def test_get_tokenizer_is_textpipes_own():
    assert get_tokenizer is tokenizer.get_tokenizer
    assert get_tokenizer("basic_english")("Hello, World!") == ["hello", ",", "world", "!"]


@pytest.mark.parametrize("tokens, n, expected", [
    (["here", "we", "are"], 2, ["here", "we", "are", "here we", "we are"]),
    (["here", "we", "are"], 3, ["here", "we", "are", "here we", "we are", "here we are"]),
    (["a", "b"], 1, ["a", "b"]),
    (["a"], 3, ["a"]),
    ([], 2, []),
    (("x", "y"), 2, ["x", "y", "x y"]),
])
def test_ngrams_iterator(tokens, n, expected):
    assert list(ngrams_iterator(tokens, n)) == expected


@pytest.mark.parametrize("tokens, n, error, match", [
    ("here we are", 2, TypeError, "got a str; tokenize it first"),
    (iter(["a"]), 2, TypeError, "list or tuple"),
    (["a"], 0, ValueError, "ngrams must be >= 1"),
    (["a"], 2.0, TypeError, "ngrams must be an int"),
])
def test_ngrams_iterator_errors(tokens, n, error, match):
    with pytest.raises(error, match=match):
        ngrams_iterator(tokens, n)  # raised at the call, not at the first next()


def test_interleave_keys():
    assert interleave_keys(3, 5) == 27 and interleave_keys(0, 0) == 0
    assert interleave_keys(1, 0) == 2 and interleave_keys(0, 1) == 1


def test_data_package_reexports_like_torchtext_data():
    from textpipe.data import get_tokenizer as g, to_map_style_dataset as t
    assert g is get_tokenizer and t is F.to_map_style_dataset
    with pytest.raises(AttributeError):
        __import__("textpipe.data", fromlist=["x"]).bleu_score


def test_simple_space_split():
    out = F.simple_space_split(["Sentencepiece encode as pieces", "example to try!"])
    assert list(out) == [["Sentencepiece", "encode", "as", "pieces"], ["example", "to", "try!"]]
    with pytest.raises(TypeError, match="str lines, got bytes at position 1"):
        list(F.simple_space_split(["a", b"b"]))


def test_custom_replace():
    f = F.custom_replace([(r"S", "s"), (r"\s+", " ")])
    assert list(f(["Sentencepiece encode  aS  pieces", "exampleS to   try!"])) == \
        ["sentencepiece encode as pieces", "examples to try!"]
    with pytest.raises(ValueError, match="invalid regex '\\('"):
        F.custom_replace([("(", "x")])
    with pytest.raises(ValueError, match="pairs"):
        F.custom_replace(["abc"])


def test_numericalize_tokens_from_iterator():
    vocab = {"Sentencepiece": 0, "encode": 1, "as": 2, "pieces": 3}
    ids = F.numericalize_tokens_from_iterator(vocab, F.simple_space_split(["Sentencepiece as pieces", "as pieces"]))
    assert [list(i) for i in ids] == [[0, 2, 3], [2, 3]]
    ids = F.numericalize_tokens_from_iterator(vocab, [["as", "encode", "as"]], removed_tokens=["as"])
    assert [list(i) for i in ids] == [[1]]


def test_to_map_style_dataset_pickles():
    import pickle
    ds = F.to_map_style_dataset(x for x in [(1, "a"), (2, "b")])
    assert len(ds) == 2 and ds[0] == (1, "a")
    assert pickle.loads(pickle.dumps(ds))[1] == (2, "b")  # torchtext's local class could not be pickled
    with pytest.raises(TypeError, match="must be iterable"):
        F.to_map_style_dataset(3)
