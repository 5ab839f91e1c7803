"""Vocab tests: encode/decode properties, the encode_flat fast path against the plain per-text path,
the textpipe-vocab 1 file format, pickling and constructor errors. Spec examples: test_spec_examples.py.

Run: python3 -m pytest -q tests/test_vocab.py      (HYPOTHESIS_PROFILE=ci for derandomized runs)
"""
import hashlib
import pickle
import random

import numpy as np
import pytest
from hypothesis import example, given
from hypothesis import strategies as st

from textpipe.text import _encode
from textpipe.text.tokenizer import basic_english
from textpipe.vocab import TokenNotFoundError, Vocab, build_vocab_from_iterator

WHITESPACE = "".join(c for c in map(chr, range(0x110000)) if c.isspace())
ADVERSARIAL = list('<br />"\'.;:,()!?Bbr') + list(WHITESPACE) + [
    "Σ", "σ", "İ", "A", "a", "\x00", "\xad", "\u0301", "\u200b", "\ud800", "\udc00", "😀", "é"]
with_surrogates = st.characters(categories=["Cs", "Lu", "Ll", "Mn", "Zs", "Cc", "Cf", "Po", "So"])
any_text = st.one_of(st.text(max_size=60), st.text(alphabet=st.sampled_from(ADVERSARIAL), max_size=40),
                     st.text(alphabet=with_surrogates, max_size=20))
any_token = st.one_of(st.text(max_size=8), st.text(alphabet=with_surrogates, max_size=4))


def vocab_for(texts, *specials):
    return build_vocab_from_iterator(map(basic_english, texts), specials=list(specials))


@given(any_text)
def test_decode_encode_round_trips_in_vocabulary_text(text):
    v = vocab_for([text])
    assert v.decode(v.encode(text)) == basic_english(text)


@given(any_text, st.data())
def test_oov_positions_decode_to_unk(text, data):
    tokens = basic_english(text)
    known = data.draw(st.sets(st.sampled_from(tokens))) if tokens else set()
    v = Vocab(["<unk>", *sorted(known - {"<unk>"})], default_index=0)
    expected = [t if t in known and t != "<unk>" else "<unk>" for t in tokens]
    assert v.decode(v.encode(text)) == expected


@given(st.lists(any_text, max_size=8), st.integers(1, 2), st.booleans(), st.sampled_from([0, 10**9]),
       st.sampled_from([6, 1 << 20]))
@example(["AΣ", "B", "a\x00b", "x\ud800"], 2, True, 0, 1 << 20)
@example(["a<br;/>b<br:/>C<br\t/>d", "x\x1cy\u3000z", 'q<br "/>r', "It's 3.14!"], 1, True, 0, 6)
@example(['aa r bb "x" c/ d <br /> e <BR />f R g', "", "Σ Σ ΑΣ Σ"], 1, True, 0, 6)
@example([], 1, True, 0, 1 << 20)
def test_encode_flat_equals_per_text_encode(texts, num_workers, with_arrow, distinct_min, chunk_chars):
    v = vocab_for(texts[::2], "<pad>", "<unk>")  # half the texts: plenty of OOV tokens
    v.set_default_index(1)
    arrow = _encode.arrow
    with pytest.MonkeyPatch.context() as mp:
        mp.setattr(_encode, "CHUNK_TEXTS", 3)  # several chunks even for short lists
        mp.setattr(_encode, "CHUNK_CHARS", chunk_chars)  # 6: long texts are cut into pieces
        mp.setattr(_encode, "arrow", arrow if with_arrow else lambda: None)
        mp.setattr(_encode, "_DISTINCT_MIN", distinct_min)  # 0: each chunk's distinct tokens only
        ids, offsets = v.encode_flat(texts, num_workers=num_workers)
        batches = v.encode_batch(texts, num_workers=num_workers)
    assert ids.dtype == np.int64 and offsets.dtype == np.int64 and len(offsets) == len(texts) + 1
    assert [ids[a:b].tolist() for a, b in zip(offsets, offsets[1:])] == [v.encode(t) for t in texts]
    assert batches == [v.encode(t) for t in texts]


def test_encode_flat_large_string_branch(monkeypatch):
    texts = ["Hello, World!", "", "ΟΔΟΣ\u3000x;y:z", "It's 3.14 (approx.)"]
    v = vocab_for(texts[:2], "<unk>")
    v.set_default_index(0)
    monkeypatch.setattr(_encode, "_INT32_BYTES", 0)  # force int64 offsets
    monkeypatch.setattr(_encode, "_DISTINCT_MIN", 0)
    ids, offsets = v.encode_flat(texts)
    assert [ids[a:b].tolist() for a, b in zip(offsets, offsets[1:])] == [v.encode(t) for t in texts]


def test_encode_flat_oov_without_default_names_the_token():
    v = Vocab(["a", "b"])
    with pytest.raises(TokenNotFoundError, match=r"token 'zebra' \(in texts\[1\]\) is not in the vocabulary"):
        v.encode_flat(["a b", "b Zebra a"])


def test_encode_flat_input_errors():
    v = Vocab(["a"], default_index=0)
    with pytest.raises(TypeError, match="got a single str"):
        v.encode_flat("a b")
    with pytest.raises(TypeError, match=r"texts\[1\] must be a str, got int"):
        v.encode_flat(["a", 3])
    with pytest.raises(ValueError, match="num_workers must be an int >= 1, got 0"):
        v.encode_flat(["a"], num_workers=0)
    for bad in (True, 2.0, "2", None):
        with pytest.raises(TypeError, match="num_workers must be an int >= 1, got"):
            v.encode_flat(["a"], num_workers=bad)


def test_encode_flat_accepts_numpy_ints():
    v = Vocab(["<unk>", "a"], default_index=0)
    ids, offsets = v.encode_flat(["a b"] * 3, num_workers=np.int64(2))
    assert ids.tolist() == [1, 0] * 3 and offsets.tolist() == [0, 2, 4, 6]


def test_encode_flat_sees_tokens_added_later():
    v = Vocab(["<unk>", "a"], default_index=0)
    assert v.encode_flat(["a b"])[0].tolist() == [1, 0]
    v.append_token("b")
    assert v.encode_flat(["a b"])[0].tolist() == [1, 2]
    v.insert_token("c", 0)
    assert v.encode_flat(["c a b"])[0].tolist() == [0, 2, 3]


def test_encode_accepts_text_or_tokens_and_batches():
    v = Vocab(["<unk>", "hello", "!"], default_index=0)
    assert v.encode("Hello, world!") == [1, 0, 0, 2]
    assert v.encode(["Hello", "!"]) == [0, 2]
    assert v.decode_batch([[1, 2], []]) == [["hello", "!"], []]


@given(st.lists(st.lists(st.sampled_from("abcdefgAB_é9"), max_size=6), max_size=8), st.randoms())
def test_build_vocab_does_not_depend_on_line_order(lines, rnd):
    shuffled = lines[:]
    rnd.shuffle(shuffled)
    assert build_vocab_from_iterator(shuffled) == build_vocab_from_iterator(lines)


@given(st.sets(any_token, max_size=20), st.one_of(st.none(), st.integers(-5, 50)))
@example({"", " ", "\t", "a\nb", "\r", "\\", "\\x41", "\ud800\udc00", "😀", "\u2028", "\x85"}, 0)
def test_save_load_round_trips_any_tokens(tmp_path_factory, tokens, default):
    v = Vocab(sorted(tokens), default_index=default)
    path = tmp_path_factory.mktemp("vocab") / "vocab.txt"
    v.save(path)
    assert Vocab.load(path) == v


def test_saved_file_is_readable_text(tmp_path):
    Vocab(["<pad>", "new york", "café", ""], default_index=0).save(tmp_path / "v.txt")
    text = (tmp_path / "v.txt").read_text(encoding="utf-8")
    digest = hashlib.sha256("textpipe-vocab 2\ntokenizer basic_english\ndefault_index 0\nsize 4\n"
                            "<pad>\nnew\\x20york\ncafé\n\n".encode()).hexdigest()
    assert text == (f"textpipe-vocab 2\ntokenizer basic_english\ndefault_index 0\nsize 4\nsha256 {digest}\n"
                    "<pad>\nnew\\x20york\ncafé\n\n")


def test_version_1_files_load_as_basic_english(tmp_path):
    path = tmp_path / "v1.txt"
    path.write_text("textpipe-vocab 1\ndefault_index 0\nsize 2\n<unk>\nhello\n", encoding="utf-8")
    v = Vocab.load(path)
    assert v.get_itos() == ["<unk>", "hello"] and v.tokenizer_name == "basic_english"
    assert v.encode("HELLO there") == [1, 0]


@pytest.mark.parametrize("content, message", [
    ("torchtext-vocab 1\n", r"line 1: expected the header 'textpipe-vocab 2' \(or version 1\), found 'torchtext-vocab 1'"),
    ("textpipe-vocab 3\ndefault_index none\nsize 0\n", r"line 1: .* found 'textpipe-vocab 3'"),
    ("textpipe-vocab 1\nsize 0\n", r"line 2: expected 'default_index <value>', found 'size 0'"),
    ("textpipe-vocab 1\ndefault_index none\n", r"line 3: expected 'size <value>', found '<end of file>'"),
    ("textpipe-vocab 1\ndefault_index x\nsize 1\na\n", r"expected integers"),
    ("textpipe-vocab 1\ndefault_index none\nsize 3\na\nb\n", r"line 3 says size 3 but the file holds 2"),
    ("textpipe-vocab 1\ndefault_index none\nsize 2\na\nb\\q\n", r"line 5: bad escape '\\\\q'"),
    ("textpipe-vocab 1\ndefault_index none\nsize 2\na\nb\\\n", r"line 5: bad escape"),
    ("textpipe-vocab 1\ndefault_index none\nsize 3\na\nb\na\n", r"line 6: duplicate token 'a' \(first on line 4\)"),
    ("textpipe-vocab 1\ndefault_index none\nsize 1\na", r"does not end with a newline"),
])
def test_load_reports_malformed_files(tmp_path, content, message):
    path = tmp_path / "bad.txt"
    path.write_text(content, encoding="utf-8", newline="")
    with pytest.raises(ValueError, match=message):
        Vocab.load(path)


def test_pickle_is_small_and_keeps_working():
    v = Vocab(["<unk>", "a"], default_index=0)
    v.encode_flat(["a"])  # builds the lookup table, which must not be pickled
    w = pickle.loads(pickle.dumps(v))
    assert w == v and w.encode_flat(["a b"])[0].tolist() == [1, 0]
    assert len(pickle.dumps(v)) < 200


def test_equality():
    assert Vocab(["a"]) == Vocab(["a"])
    assert Vocab(["a"]) != Vocab(["a"], default_index=0)
    assert Vocab(["a", "b"]) != Vocab(["b", "a"])
    assert Vocab(["a"]) != ["a"]


def test_get_stoi_is_in_id_order():
    itos = [str(i) for i in range(60)]
    random.Random(0).shuffle(itos)
    assert list(Vocab(itos).get_stoi()) == itos


@pytest.mark.parametrize("itos, error, message", [
    ("abc", TypeError, "itos must be a list of str tokens, got str"),
    ({"a": 1}, TypeError, r"got dict; use vocab\(mapping\)"),
    (["a", 1], TypeError, r"itos\[1\] must be a str, got int"),
    (["a", "b", "a"], RuntimeError, "unique tokens, but 'a' is at ids 0 and 2"),  # and a ValueError
])
def test_constructor_errors(itos, error, message):
    with pytest.raises(error, match=message):
        Vocab(itos)


def test_repr():
    assert repr(Vocab(["a"], default_index=0)) == "Vocab(size=1, default_index=0)"




def test_encode_flat_accepts_str_subclasses():
    class Text(str):
        pass

    v = Vocab(["<pad>", "<unk>", "a"], default_index=1)
    ids, offsets = v.encode_flat([Text("a b"), Text("A")])
    assert ids.tolist() == [2, 1, 2] and offsets.tolist() == [0, 2, 3]


def test_escape_fast_path_matches_the_per_character_rule():
    # escape() skips the per-character scan for printable tokens without " " or "\\": the same rule only if
    # no other printable character is whitespace, checked here over every code point.
    import sys

    from textpipe.text._format import escape, unescape

    assert [hex(i) for i in range(sys.maxunicode + 1) if chr(i).isspace() and chr(i).isprintable()] == ["0x20"]
    for token in ["a b", "tab\there", "x\u3000y", "\u00a0", "back\\slash", "plain", "caf\u00e9", "\u200b"]:
        line = escape(token)
        needs_escape = not token.isprintable() or any(c.isspace() or c == "\\" for c in token)
        assert unescape(line, 1) == token and (line != token) == needs_escape


def test_packed_tokens_follow_appended_and_inserted_tokens():
    # packed_tokens is kept per token store: a token appended or inserted after a first call shows up
    from textpipe.vocab import Vocab

    v = Vocab(["<pad>", "a"])
    assert v.packed_tokens()[0] == "<pad>a"
    v.append_token("bé")
    text, lengths = v.packed_tokens()
    assert text == "<pad>abé" and lengths.tolist() == [5, 1, 2]
    lengths[0] = 99  # the caller's copy
    v.insert_token("z", 0)
    text, lengths = v.packed_tokens()
    assert text == "z<pad>abé" and lengths.tolist() == [1, 5, 1, 2]
