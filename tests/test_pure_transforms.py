"""MaskTransform, RegexTokenizer, and torch.jit.script of every torchtext-layout function and transform.

Run: python3 -m pytest -q tests/test_pure_transforms.py
"""
import io
import re
import warnings
from collections import OrderedDict
from unittest.mock import patch

import pytest
import torch
from hypothesis import given
from hypothesis import strategies as st

from textpipe import functional
from textpipe import transforms as T
from textpipe.vocab import build_vocab_from_iterator, vocab


def script(obj):
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")  # torch.jit.script is deprecated in recent torch
        return torch.jit.script(obj)


def roundtrip(scripted):
    """torch.jit.save then torch.jit.load: what a scripted pipeline is for."""
    buf = io.BytesIO()
    torch.jit.save(scripted, buf)
    buf.seek(0)
    return torch.jit.load(buf)


# --- the functions: torch.jit.script(functional.truncate) etc. (torchtext's were scriptable)

@pytest.mark.parametrize("fn, args, kwargs", [
    (functional.truncate, ([[1, 2], [1, 2, 3]],), {"max_seq_len": 2}),
    (functional.truncate, ([["a", "b", "c"]],), {"max_seq_len": 1}),
    (functional.truncate, (["a", "b", "c"],), {"max_seq_len": 2}),
    (functional.add_token, ([[1, 2], [3]],), {"token_id": 0}),
    (functional.add_token, ([1, 2],), {"token_id": 0, "begin": False}),
    (functional.add_token, ([["a"], ["b", "c"]],), {"token_id": "x", "begin": False}),
    (functional.add_token, (["a", "b"],), {"token_id": "x"}),
    (functional.str_to_int, ([["1", "2"], ["3"]],), {}),
    (functional.to_tensor, ([[1, 2], [1, 2, 3]],), {"padding_value": 0}),
    (functional.to_tensor, ([1, 2],), {"padding_value": 0}),
    (functional.to_tensor, ([[1], [2, 3]],), {"padding_value": 1.5, "dtype": torch.float}),
    (functional.to_tensor, ([[1, 2], [3, 4]],), {"dtype": torch.int32}),
])
def test_scripted_function_matches_eager(fn, args, kwargs):
    eager, scripted = fn(*args, **kwargs), script(fn)(*args, **kwargs)
    if isinstance(eager, torch.Tensor):
        assert torch.equal(eager, scripted) and eager.dtype == scripted.dtype
    else:
        assert eager == scripted


def test_scripted_function_rejects_other_input_types():
    with pytest.raises(Exception, match="input must be a list of str or ints"):
        script(functional.truncate)([1.5], 1)
    with pytest.raises(TypeError, match=r"input must be a list of str or ints, or a list of such lists, got str"):
        functional.truncate("test", 2)  # eager: torchtext's test_truncate_assert_raises


# --- VocabTransform / LabelToIndex: scripted from a snapshot of the Vocab

def test_vocab_transform_scripts_saves_and_loads():
    v = build_vocab_from_iterator([["a", "b", "b"]], specials=["<unk>"])
    v.set_default_index(v["<unk>"])
    eager = T.VocabTransform(v)
    scripted = roundtrip(script(eager))
    for data in (["b", "zz", "a"], [["a"], ["zz", "b"]]):  # (an empty list has no type TorchScript can infer)
        assert scripted(data) == eager(data)
    assert list(eager.children()) == [] and eager.vocab is v  # scripting left the eager module as it was


def test_scripted_vocab_transform_without_default_raises_runtime_error_naming_the_token():
    scripted = script(T.VocabTransform(vocab(OrderedDict([("a", 1)]))))
    with pytest.raises(RuntimeError, match=r"token 'zz' is not in the vocabulary and no default index is set"):
        scripted(["a", "zz"])


def test_scripting_takes_a_snapshot_of_the_vocab():
    v = vocab(OrderedDict([("a", 1)]))
    scripted = script(T.VocabTransform(v))
    v.append_token("b")
    assert T.VocabTransform(v)(["b"]) == [1]
    with pytest.raises(RuntimeError, match="'b' is not in the vocabulary"):
        scripted(["b"])


def test_label_to_index_scripts():
    eager = T.LabelToIndex(label_names=["test", "label", "indices"], sort_names=True)
    scripted = roundtrip(script(eager))
    assert scripted(["test", "label", "indices"]) == eager(["test", "label", "indices"]) == [2, 1, 0]
    assert scripted("indices") == 0
    with pytest.raises(RuntimeError):
        scripted(["OOV"])


def test_a_whole_pipeline_scripts_and_saves():
    v = build_vocab_from_iterator([["the", "cat", "sat"]], specials=["<pad>", "<unk>"])
    v.set_default_index(v["<unk>"])
    pipe = T.Sequential(T.VocabTransform(v), T.Truncate(3), T.AddToken(v["<unk>"], begin=False),
                        T.ToTensor(padding_value=v["<pad>"]), T.PadTransform(6, v["<pad>"]))
    batch = [["the", "cat", "sat", "down"], ["a"]]
    assert torch.equal(roundtrip(script(pipe))(batch), pipe(batch))


# --- MaskTransform (torchtext 0.18's tests' conditions, and torchtext's random draws)

TOKENS = torch.tensor([[6, 0, 1, 2, 3], [6, 0, 1, 4, 4]])  # [BOS]=6, [PAD]=4, [MASK]=5


def masked(transform, mask_mask_prob, rand_mask_prob, tokens=TOKENS):
    with patch("textpipe.transforms.MaskTransform.mask_mask_prob", mask_mask_prob), \
            patch("textpipe.transforms.MaskTransform.rand_mask_prob", rand_mask_prob):
        return transform(tokens)


def test_mask_prob_one_chooses_every_token_but_bos_and_pad():
    t = T.MaskTransform(6, 5, 6, 4, mask_bos=False, mask_prob=1.0)
    out, targets, mask = masked(t, 1.0, 0.0)
    assert out.tolist() == [[6, 5, 5, 5, 5], [6, 5, 5, 4, 4]]
    assert targets.tolist() == [0, 1, 2, 3, 0, 1] and mask.dtype == torch.int
    assert mask.tolist() == [[0, 1, 1, 1, 1], [0, 1, 1, 0, 0]]
    assert torch.equal(masked(t, 0.0, 0.0)[0], TOKENS)  # chosen, but kept
    out = masked(t, 0.0, 1.0)[0]
    assert out[:, 0].tolist() == [6, 6] and out[1, 3:].tolist() == [4, 4]
    assert int(out[mask.bool()].max()) < 6  # random ids are drawn below vocab_len


def test_mask_bos_lets_bos_be_chosen():
    t = T.MaskTransform(6, 5, 6, 4, mask_bos=True, mask_prob=1.0)
    assert masked(t, 1.0, 0.0)[0].tolist() == [[5, 5, 5, 5, 5], [5, 5, 5, 4, 4]]


def test_when_nothing_is_chosen_the_first_token_is():
    t = T.MaskTransform(6, 5, 6, 4, mask_prob=0.0)
    out, targets, mask = masked(t, 0.0, 1.0)
    assert out[0, 0] != 6 and int(out[0, 0]) in range(6) and targets.tolist() == [6]
    assert torch.equal(out[0, 1:], TOKENS[0, 1:]) and torch.equal(out[1], TOKENS[1])


def reference_mask(tokens, vocab_len, mask_idx, bos_idx, pad_idx, mask_bos, mask_prob, mmp=0.8, rmp=0.1):
    """torchtext 0.18's MaskTransform as its documented steps, one element at a time (slow and plain)."""
    B, T_ = tokens.shape
    n = int(T_ * mask_prob)
    mask = [[int(p < n) for p in torch.randperm(T_).tolist()] for _ in range(B)]
    tok = tokens.tolist()
    for i in range(B):
        for j in range(T_):
            if (tok[i][j] == bos_idx and not mask_bos) or tok[i][j] == pad_idx:
                mask[i][j] = 0
    if not any(map(any, mask)):
        mask[0][0] = 1
    probs = torch.rand_like(tokens, dtype=torch.float).tolist()
    rand = torch.randint_like(tokens, high=vocab_len).tolist()
    out = [row[:] for row in tok]
    for i in range(B):
        for j in range(T_):
            if mask[i][j] and probs[i][j] >= 1 - mmp:
                out[i][j] = mask_idx
            if mask[i][j] and probs[i][j] < rmp:
                out[i][j] = rand[i][j]
    targets = [tok[i][j] for i in range(B) for j in range(T_) if mask[i][j]]
    return out, targets, mask


@given(st.integers(1, 4), st.integers(1, 9), st.sampled_from([0.0, 0.15, 0.5, 1.0]), st.booleans(),
       st.integers(0, 2**31 - 1))
def test_mask_transform_draws_like_torchtext(B, T_, mask_prob, mask_bos, seed):
    tokens = torch.randint(0, 8, (B, T_), generator=torch.Generator().manual_seed(seed))
    transform = T.MaskTransform(8, 5, 6, 4, mask_bos=mask_bos, mask_prob=mask_prob)
    torch.manual_seed(seed)
    want = reference_mask(tokens, 8, 5, 6, 4, mask_bos, mask_prob)
    for t in (transform, script(transform)):
        torch.manual_seed(seed)
        out, targets, mask = t(tokens)
        assert (out.tolist(), targets.tolist(), mask.tolist()) == want


def test_scripted_mask_transform_pins_the_probabilities_at_scripting_time():
    t = T.MaskTransform(6, 5, 6, 4, mask_prob=1.0)
    with patch("textpipe.transforms.MaskTransform.mask_mask_prob", 1.0), \
            patch("textpipe.transforms.MaskTransform.rand_mask_prob", 0.0):
        scripted = roundtrip(script(t))
    assert scripted(TOKENS)[0].tolist() == [[6, 5, 5, 5, 5], [6, 5, 5, 4, 4]]
    assert T.MaskTransform.mask_mask_prob == 0.8 and "mask_mask_prob" not in vars(t)


@pytest.mark.parametrize("tokens, match", [
    (torch.tensor([1, 2, 3]), "2-D .* got a 1-D torch.int64 tensor; for one sequence use tokens.unsqueeze"),
    (torch.ones(2, 3), "got a 2-D torch.float32 tensor"),
    ([[1, 2]], "got list"),
])
def test_mask_transform_rejects_what_it_cannot_mask(tokens, match):
    with pytest.raises(TypeError, match=match):
        T.MaskTransform(6, 5, 6, 4)(tokens)


@pytest.mark.parametrize("kwargs, match", [({"vocab_len": 0}, "vocab_len must be an int >= 1"),
                                           ({"mask_prob": 1.5}, r"mask_prob must be in \[0, 1\]")])
def test_mask_transform_arguments(kwargs, match):
    args = {"vocab_len": 6, "mask_idx": 5, "bos_idx": 6, "pad_idx": 4, **kwargs}
    with pytest.raises(ValueError, match=match):
        T.MaskTransform(**args)


# --- RegexTokenizer

BASIC_ENGLISH = [(r"\'", " '  "), (r"\"", ""), (r"\.", " . "), (r"<br \/>", " "), (r",", " , "), (r"\(", " ( "),
                 (r"\)", " ) "), (r"\!", " ! "), (r"\?", " ? "), (r"\;", " "), (r"\:", " "), (r"\s+", " ")]


def test_regex_tokenizer_basic_english_patterns():
    line = "'\".<br />,()!?;:   Basic Regex Tokenization for a Line of Text   '\".<br />,()!?;:"
    want = ["'", ".", ",", "(", ")", "!", "?", "Basic", "Regex", "Tokenization", "for", "a", "Line", "of", "Text",
            "'", ".", ",", "(", ")", "!", "?"]
    tok = T.RegexTokenizer(BASIC_ENGLISH)
    assert tok(line) == want and script(tok)(line) == want
    assert not tok.is_jitable and tok.__prepare_scriptable__().is_jitable


@given(st.text(alphabet=st.sampled_from(list("ab .,;'\"()!?:\t\n<br />Ééx")), max_size=40))
def test_regex_tokenizer_is_basic_english_without_lowercasing(text):
    from textpipe import get_tokenizer
    assert T.RegexTokenizer(BASIC_ENGLISH)(text.lower()) == get_tokenizer("basic_english")(text)


def test_regex_tokenizer_splits_at_spaces_only_and_uses_re2_rewrites():
    assert T.RegexTokenizer([])("a\tb  c ") == ["a\tb", "c"]
    assert T.RegexTokenizer([(r"(\w+)@(\w+)", r"\2 at \1")])("me@host x") == ["host", "at", "me", "x"]
    assert T.RegexTokenizer([("x", r"\\")])("axb") == ["a\\b"]
    assert T.RegexTokenizer([(r"\s", "_")])("a\u00a0b c") == ["a\u00a0b_c"]  # \s is ASCII, as in RE2


@pytest.mark.parametrize("pairs, line, tokens", [
    # RE2 answers, checked against torchtext 0.18's RegexTokenizer (RE2) on 3,000 random pattern/line pairs
    ([(r"x*", "-")], "x\u00a0y", ["-\u00a0-y-"]),        # no empty match right after a match (re.sub: '--\xa0-y-')
    ([(r"\d*", "#")], "a12b", ["#a#b#"]),
    ([(r"\s+", " ")], "\x0bvtab\x0c", ["\x0bvtab"]),     # RE2's \s has no vertical tab
    ([(r"[\s,]", "_")], "a,b\x0bc d", ["a_b\x0bc_d"]),
    ([(r"\S+", "<\\0>")], "ab\x0bc d", ["<ab\x0bc>", "<d>"]),
    ([(r"[]a]", "!")], "a]b", ["!!b"]),                    # ']' first in a class is a member
])
def test_regex_tokenizer_matches_re2(pairs, line, tokens):
    assert T.RegexTokenizer(pairs)(line) == tokens


@pytest.mark.parametrize("pairs, match", [
    ([("(", "x")], re.escape("pattern '(' does not compile")),
    ([("a", r"\1")], "refers to group 1, but the pattern 'a' has 0 group"),
    ([("a", r"\n")], "has a bad escape at position 0"),
    ([("a",)], r"patterns_list\[0\] must be a \(pattern, replacement\) pair of str"),
])
def test_regex_tokenizer_bad_patterns_are_named_at_construction(pairs, match):
    with pytest.raises(ValueError, match=match):
        T.RegexTokenizer(pairs)


def test_regex_tokenizer_takes_one_line():
    with pytest.raises(TypeError, match="takes one line"):
        T.RegexTokenizer([])(["a b"])
