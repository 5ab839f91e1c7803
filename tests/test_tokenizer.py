"""Tokenizer tests: the fast basic_english against torchtext's literal 12-step algorithm, batch vs
per-text, token properties and get_tokenizer. The spec's literal examples are in test_spec_examples.py.

Run: python3 -m pytest -q tests/test_tokenizer.py      (HYPOTHESIS_PROFILE=ci for derandomized runs)
"""
import re

import pytest
from hypothesis import example, given
from hypothesis import strategies as st

from textpipe.text import tokenizer
from textpipe.text.tokenizer import basic_english, basic_english_batch, get_tokenizer

# torchtext 0.18 data/utils.py, _basic_english_normalize: the reference, transcribed literally.
_PATTERNS = [r"\'", r"\"", r"\.", r"<br \/>", r",", r"\(", r"\)", r"\!", r"\?", r"\;", r"\:", r"\s+"]
_REPLACEMENTS = [" '  ", "", " . ", " ", " , ", " ( ", " ) ", " ! ", " ? ", " ", " ", " "]
_COMPILED = list(zip([re.compile(p) for p in _PATTERNS], _REPLACEMENTS))


def literal_basic_english(line: str) -> list[str]:
    line = line.lower()
    for pattern, replacement in _COMPILED:
        line = pattern.sub(replacement, line)
    return line.split()


WHITESPACE = "".join(c for c in map(chr, range(0x110000)) if c.isspace())
# Characters that meet the rewrites, the separator, or the final-sigma rule of str.lower:
# case-ignorable ones (' . : soft hyphen, combining marks, modifier letters) and cased ones.
ADVERSARIAL = list('<br />"\'.;:,()!?Bbr') + list(WHITESPACE) + [
    "Σ", "σ", "ς", "İ", "A", "a", "\x00", "\xad", "\u0301", "\u0345", "\u02b0", "\u200b", "\u037e",
    "K", "\u212a", "ẞ", "ǅ", "\ud800", "😀"]

adversarial_text = st.text(alphabet=st.sampled_from(ADVERSARIAL), max_size=40)
# st.characters() leaves out lone surrogates unless the category Cs is asked for by name
with_surrogates = st.characters(categories=["Cs", "Lu", "Ll", "Lt", "Lm", "Mn", "Zs", "Zl", "Zp", "Cc",
                                            "Cf", "Po", "Ps", "Pe", "Nl", "So"])
any_text = st.one_of(st.text(), adversarial_text, st.text(alphabet=with_surrogates, max_size=30))


@given(any_text)
@example('a<br "/>b')
@example("ΑΣ'.Β")
@example("<br\u2000/>")
@example("a<br;/>b<br:/>c<br\t/>d")
def test_fast_tokenizer_equals_literal_algorithm(text):
    assert basic_english(text) == literal_basic_english(text)


@given(st.lists(any_text, max_size=12))
@example(["AΣ", "B"])
@example(["Σ", "'Β"])
@example(["ΑΣ\xad", "\u0301Β", "x\x00y", "Σ"])
@example(["<br", " />", '"', "/>"])
@example([])
@example([""])
def test_batch_equals_per_text(texts):
    assert basic_english_batch(texts) == [basic_english(t) for t in texts]


def test_batch_across_chunk_boundaries(monkeypatch):
    monkeypatch.setattr(tokenizer, "_BATCH_CHUNK", 2)
    texts = ["AΣ", "B", "x\x00y", "ΟΔΟΣ", "It's", ""]
    assert basic_english_batch(texts) == [literal_basic_english(t) for t in texts]


@given(any_text)
def test_tokens_are_never_empty_and_never_hold_whitespace(text):
    for token in basic_english(text):
        assert token
        assert not any(c in WHITESPACE for c in token)
        assert not set(token) & set("\";:")


def test_whitespace_is_the_29_code_points_of_the_spec():
    assert len(WHITESPACE) == 29
    assert all(re.fullmatch(r"\s", c) for c in WHITESPACE)


def test_batch_type_errors():
    with pytest.raises(TypeError, match="got a single str"):
        basic_english_batch("one text")
    with pytest.raises(TypeError, match=r"texts\[1\] must be a str, got NoneType"):
        basic_english_batch(["ok", None])


def test_batch_accepts_any_sequence():
    assert basic_english_batch(("A b", "C")) == [["a", "b"], ["c"]]


@pytest.mark.parametrize("name", [None, "split", "whitespace"])
def test_split_tokenizers(name):
    split = get_tokenizer(name)
    assert split("A b,  c") == ["A", "b,", "c"]
    with pytest.raises(TypeError, match="must be a str, got bytes"):
        split(b"a b")


def test_get_tokenizer_passes_callables_through():
    def mine(text):
        return list(text)
    assert get_tokenizer(mine) is mine


def test_get_tokenizer_unknown_name_lists_known_names():
    with pytest.raises(ValueError, match=r"unknown tokenizer 'spacy'; known tokenizers: "
                                         r"'basic_english', 'split', 'whitespace'(, '[^']+')*, None"):
        get_tokenizer("spacy")


def test_get_tokenizer_wrong_type():
    with pytest.raises(TypeError, match="tokenizer must be a str, None or a callable, got int"):
        get_tokenizer(3)
    with pytest.raises(ValueError, match="got int"):  # torchtext-style `except ValueError` catches it too
        get_tokenizer(1)


def test_get_tokenizer_keywords_as_in_torchtext():
    assert get_tokenizer(tokenizer="basic_english", language="en") is basic_english


def test_get_tokenizer_language():
    assert get_tokenizer("basic_english", language="en") is basic_english
    with pytest.raises(ValueError, match="only available for language='en', got 'de'"):
        get_tokenizer("basic_english", language="de")
