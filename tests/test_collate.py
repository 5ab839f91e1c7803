"""Tests for textpipe/collate.py: differential tests against pad_sequence and the tutorial's collate_batch.

Run: python3 -m pytest -q tests/test_collate.py
"""
import pickle

import numpy as np
import pytest
import torch
from hypothesis import given, strategies as st
from torch.nn.utils.rnn import pad_sequence

from textpipe.batches.collate import CorpusBatch, offsets_collate, pad_collate
from textpipe.corpus import EncodedCorpus
from textpipe.batches.text_collate import TextCollate
from textpipe.text.tokenizer import basic_english
from textpipe.vocab import Vocab

seqs_st = st.lists(st.lists(st.integers(0, 10**6), max_size=12), min_size=1, max_size=9)


def reference_pad(seqs, *, pad_idx=0, max_len=None, multiple=None, side="right"):
    """The obvious slow reference: truncate, pad_sequence, widen, flip for left padding."""
    seqs = [s[:max_len] if max_len else s for s in seqs]
    if side == "left":
        seqs = [s[::-1] for s in seqs]
    ids = pad_sequence([torch.tensor(s, dtype=torch.long) for s in seqs], batch_first=True,
                       padding_value=pad_idx)
    if multiple:
        width = -(-ids.shape[1] // multiple) * multiple
        ids = torch.nn.functional.pad(ids, (0, width - ids.shape[1]), value=pad_idx)
    if side == "left":
        ids = ids.flip(1)
    return ids, torch.tensor([len(s) for s in seqs])


def tutorial_offsets(batch):
    """torchtext tutorial's collate_batch, with the text pipeline already applied."""
    label_list, text_list, offsets = [], [], [0]
    for ids, label in batch:
        label_list.append(label)
        processed_text = torch.tensor(ids, dtype=torch.int64)
        text_list.append(processed_text)
        offsets.append(processed_text.size(0))
    offsets = torch.tensor(offsets[:-1]).cumsum(dim=0)
    return torch.cat(text_list), offsets, torch.tensor(label_list, dtype=torch.int64)


def corpus_of(seqs):
    offsets = np.cumsum([0] + [len(s) for s in seqs])
    ids = np.fromiter((i for s in seqs for i in s), dtype=np.int64, count=int(offsets[-1]))
    return EncodedCorpus(ids, offsets, np.arange(len(seqs)) % 4)


@given(seqs_st, st.integers(-3, 5), st.none() | st.integers(1, 8), st.none() | st.integers(1, 8),
       st.sampled_from(["right", "left"]), st.booleans())
def test_pad_collate_matches_pad_sequence(seqs, pad_idx, max_len, multiple, side, as_tensor):
    batch = [(torch.tensor(s, dtype=torch.long) if as_tensor else s, i % 4) for i, s in enumerate(seqs)]
    ids, lengths, labels = pad_collate(batch, pad_idx=pad_idx, max_len=max_len,
                                       pad_to_multiple_of=multiple, padding_side=side)
    want_ids, want_lengths = reference_pad(seqs, pad_idx=pad_idx, max_len=max_len, multiple=multiple, side=side)
    assert torch.equal(ids, want_ids)
    assert torch.equal(lengths, want_lengths)
    assert labels.tolist() == [i % 4 for i in range(len(seqs))]
    assert ids.dtype == lengths.dtype == labels.dtype == torch.int64


@given(seqs_st, st.data())
def test_fast_corpus_path_equals_list_path(seqs, data):
    corpus = corpus_of(seqs)
    indices = data.draw(st.lists(st.integers(0, len(seqs) - 1), min_size=1, max_size=12))
    options = data.draw(st.fixed_dictionaries({
        "pad_idx": st.integers(0, 3), "max_len": st.none() | st.integers(1, 6),
        "pad_to_multiple_of": st.none() | st.integers(1, 40), "padding_side": st.sampled_from(["right", "left"])}))
    fast = pad_collate(corpus.__getitems__(indices), **options)
    slow = pad_collate([corpus[i] for i in indices], **options)
    for a, b in zip(fast, slow):
        assert torch.equal(a, b)
    fast_off = offsets_collate(corpus.__getitems__(indices))
    slow_off = tutorial_offsets([(corpus[i][0].tolist(), corpus[i][1]) for i in indices])
    for a, b in zip(fast_off, slow_off):
        assert torch.equal(a, b)


@given(seqs_st)
def test_offsets_collate_matches_tutorial(seqs):
    batch = [(s, i % 4) for i, s in enumerate(seqs)]
    for got, want in zip(offsets_collate(batch), tutorial_offsets(batch)):
        assert torch.equal(got, want)
        assert got.dtype == want.dtype


def test_offsets_collate_max_len_truncates_each_sample():
    flat, offsets, _ = offsets_collate([([1, 2, 3], 0), ([4], 1), ([5, 6], 2)], max_len=2)
    assert flat.tolist() == [1, 2, 4, 5, 6] and offsets.tolist() == [0, 2, 3]


def test_batch_without_guard_falls_back_to_clipped_gather():
    batch = CorpusBatch(np.array([7, 8, 9]), np.array([2, 0]), np.array([1, 3]), np.array([0, 1]))
    ids, lengths, _ = pad_collate(batch, pad_idx=-1)
    assert ids.tolist() == [[9, -1, -1], [7, 8, 9]] and lengths.tolist() == [1, 3]


def test_long_rows_beyond_the_mask_template():
    seqs = [list(range(1500)), [3]]
    ids, lengths, _ = pad_collate([(s, 0) for s in seqs])
    assert torch.equal(ids, reference_pad(seqs)[0])


def test_dtype_option_and_pad_collate_example():
    ids, _, _ = pad_collate([(torch.tensor([5, 6, 7]), 2), ([8], 0)], dtype=torch.int32)
    assert ids.dtype == torch.int32 and ids.tolist() == [[5, 6, 7], [8, 0, 0]]


@pytest.mark.parametrize("kwargs, match", [
    ({"max_len": 0}, "max_len must be None or an int >= 1, got 0"),
    ({"pad_to_multiple_of": -2}, "pad_to_multiple_of must be None or an int >= 1"),
    ({"padding_side": "top"}, "padding_side must be 'right' or 'left', got str 'top'"),
    ({"padding_side": None}, "padding_side must be 'right' or 'left', got NoneType None"),
    ({"max_len": True}, "max_len must be None or an int >= 1, got bool True"),
    ({"max_len": 2.0}, "max_len must be None or an int >= 1, got float 2.0"),
    ({"pad_to_multiple_of": True}, "pad_to_multiple_of must be None or an int >= 1, got bool True"),
    ({"pad_to_multiple_of": 8.0}, "pad_to_multiple_of must be None or an int >= 1, got float 8.0"),
    ({"pad_idx": 2**63}, r"pad_idx 9223372036854775808 does not fit dtype torch.int64"),
    ({"pad_idx": 2**40, "dtype": torch.int32}, r"pad_idx 1099511627776 does not fit dtype torch.int32 \(range"),
])
def test_bad_options_are_named(kwargs, match):  # also on the corpus fast path
    with pytest.raises(ValueError, match=match):
        pad_collate(corpus_of([[1], [2, 3]]).__getitems__([0, 1]), **kwargs)
    with pytest.raises(ValueError, match=match):
        pad_collate([([1], 0)], **kwargs)


@pytest.mark.parametrize("kwargs, match", [
    ({"pad_idx": 0.5}, "pad_idx must be an int, got float 0.5"),
    ({"pad_idx": True}, "pad_idx must be an int, got bool True"),
    ({"dtype": torch.float32}, "dtype must be an integer torch dtype .* got dtype torch.float32"),
    ({"dtype": torch.bool}, "dtype must be an integer torch dtype"),
    ({"dtype": "int32"}, "dtype must be an integer torch dtype .* got str 'int32'"),
])
def test_bad_option_types_are_named(kwargs, match):
    with pytest.raises(TypeError, match=match):
        pad_collate([([1], 0)], **kwargs)


@pytest.mark.parametrize("label, got", [(1.7, "float 1.7"), (2.0, "float 2.0"), (True, "bool True"), ("1", "str '1'"),
                                        (None, "NoneType None"), (torch.tensor(1.5), "Tensor"),
                                        (np.float32(1.0), "float32"), (torch.tensor([1]), "Tensor")])
def test_labels_that_are_not_ints_are_refused_not_truncated(label, got):
    for collate in (pad_collate, offsets_collate):
        with pytest.raises(TypeError, match=f"batch\\[1\\] label must be an int class index, got {got}"):
            collate([([1, 2], 0), ([3], label)])


def test_numpy_and_0d_integer_labels_and_options_are_accepted():
    ids, lengths, labels = pad_collate([(np.array([4, 5], np.int32), np.int64(3)), ([6], torch.tensor(2)),
                                        ([7], np.array(1, np.uint8))], pad_idx=np.int64(9), max_len=np.int32(2),
                                       pad_to_multiple_of=np.int16(4))
    assert ids.tolist() == [[4, 5, 9, 9], [6, 9, 9, 9], [7, 9, 9, 9]] and labels.tolist() == [3, 2, 1]
    assert offsets_collate([([1, 2, 3], np.int8(1))], max_len=np.int64(2))[0].tolist() == [1, 2]


def test_a_label_beyond_int64_is_refused():
    with pytest.raises(ValueError, match=r"batch\[0\] label 1180591620717411303424 does not fit int64"):
        pad_collate([([1], 2**70)])


def test_ids_that_do_not_fit_the_dtype_are_refused_not_wrapped():
    with pytest.raises(ValueError, match=r"id 1099511627776 does not fit dtype torch.int32 .* use dtype=torch.long"):
        pad_collate([([2**40, 1], 0)], dtype=torch.int32)
    with pytest.raises(ValueError, match=r"id -129 does not fit dtype torch.int8"):
        pad_collate([([-129], 0)], dtype=torch.int8)
    assert pad_collate([([2**31 - 1], 0)], dtype=torch.int32)[0].tolist() == [[2**31 - 1]]


def test_uint64_ids_beyond_int64_are_refused_not_wrapped_negative():
    big = np.array([5, 2**63 + 5], dtype=np.uint64)
    for collate in (pad_collate, offsets_collate):
        with pytest.raises(ValueError, match=r"batch\[0\] ids hold 9223372036854775813, beyond int64"):
            collate([(big, 0)])
    ok = np.array([5, 2**63 - 1], dtype=np.uint64)
    assert pad_collate([(ok, 0)])[0].tolist() == [[5, 2**63 - 1]]


def test_a_malformed_corpus_batch_is_refused():
    src, one = np.array([1, 2, 3, 0, 0]), np.array([1])
    cases = [
        (CorpusBatch(src, np.array([0]), np.array([2]), np.array([1.5])), TypeError, "CorpusBatch.labels must be a 1-D integer"),
        (CorpusBatch(src.astype(float), np.array([0]), np.array([2]), one), TypeError, "CorpusBatch.source must be"),
        (CorpusBatch(src, np.array([0, 1]), np.array([2]), one), ValueError, "2 starts, 1 lengths, 1 labels"),
        (CorpusBatch(src, np.array([4]), np.array([2]), one), ValueError, r"sample 0 \(start 4, length 2\) lies outside"),
        (CorpusBatch(src, np.array([-1]), np.array([2]), one), ValueError, r"sample 0 \(start -1, length 2\)"),
    ]
    for batch, error, match in cases:
        with pytest.raises(error, match=match):
            pad_collate(batch, max_len=8)  # a checked path
        with pytest.raises(error, match=match):
            offsets_collate(batch)
    with pytest.raises(ValueError, match=r"CorpusBatch starts must lie in \[0, 5\]"):  # the fast path's fallback
        pad_collate(CorpusBatch(src, np.array([9]), np.array([2]), one))


def test_bad_batches_are_named():
    with pytest.raises(TypeError, match="non-empty list of"):
        pad_collate([])
    with pytest.raises(TypeError, match=r"batch\[1\] must be an \(ids, label\) pair.*TextCollate"):
        pad_collate([([1], 0), "text"])
    with pytest.raises(TypeError, match=r"batch\[0\] ids must be a 1-D integer"):
        pad_collate([([1.5], 0)])


def vocab_fixture():
    return Vocab(["<pad>", "<unk>", "hello", "world", ",", "!", "hi"], default_index=1)


def test_text_collate_matches_tutorial_pipeline():
    vocab = vocab_fixture()
    raw = [(0, "Hello, world!"), (3, "hi there"), (1, "")]
    encoded = [(vocab.lookup_indices(basic_english(text)), label) for label, text in raw]
    ids, lengths, labels = TextCollate(vocab, form="pad", pad_idx=0)(raw)
    want_ids, want_lengths = reference_pad([e for e, _ in encoded])
    assert torch.equal(ids, want_ids) and torch.equal(lengths, want_lengths)
    assert labels.tolist() == [0, 3, 1]
    for got, want in zip(TextCollate(vocab, form="offsets")(raw), tutorial_offsets(encoded)):
        assert torch.equal(got, want)
    custom = TextCollate(vocab, tokenizer=str.split, max_len=1)(raw)
    assert custom[0].tolist() == [[1], [6], [0]]


def test_text_collate_rejects_unknown_options():
    with pytest.raises(TypeError, match=r"unknown option\(s\) \['pad_idx'\] for form='offsets'"):
        TextCollate(vocab_fixture(), form="offsets", pad_idx=0)
    with pytest.raises(ValueError, match="form must be 'pad' or 'offsets'"):
        TextCollate(vocab_fixture(), form="bag")


def test_collates_pickle_and_stay_on_cpu():
    collate = pickle.loads(pickle.dumps(TextCollate(vocab_fixture(), form="pad", max_len=4)))
    ids, lengths, labels = collate([(2, "hello world")])
    assert ids.tolist() == [[2, 3]] and all(t.device.type == "cpu" for t in (ids, lengths, labels))
    assert pickle.loads(pickle.dumps(pad_collate)) is pad_collate
    batch = corpus_of([[1, 2], [3]]).__getitems__([1, 0])
    again = pickle.loads(pickle.dumps(batch))
    assert torch.equal(pad_collate(again)[0], pad_collate(batch)[0])


pieces = st.sampled_from(list("aAbΣσς ,.!?'\"<br/>;:\x00\n\t") + ["hello", "world", "hi", "<br />"])


@given(st.lists(st.tuples(st.integers(0, 3), st.lists(pieces, max_size=20).map("".join)), min_size=1, max_size=6))
def test_text_collate_equals_per_text_encoding(raw):
    vocab = vocab_fixture()
    vocab.append_token("σ")
    encoded = [(vocab.encode(text), label) for label, text in raw]
    for got, want in zip(TextCollate(vocab, form="offsets")(raw), tutorial_offsets(encoded)):
        assert torch.equal(got, want)


def test_text_collate_without_default_index_raises_the_vocab_error():
    vocab = Vocab(["<pad>", "a"])
    assert TextCollate(vocab)([(0, "a a")])[0].tolist() == [[1, 1]]
    with pytest.raises(KeyError, match="zebra"):
        TextCollate(vocab)([(0, "a"), (1, "a zebra")])
    with pytest.raises(TypeError, match=r"batch\[1\] text must be a str, got int"):
        TextCollate(vocab)([(0, "a"), (1, 5)])


# Tokens on both sides of the byte table's 8- and 16-byte key boundaries, multi-byte UTF-8, and a
# Unicode space (U+3000) that only the str path treats as whitespace before the byte rule runs.
_BOUNDARY_TOKENS = ["a" * n for n in (1, 7, 8, 9, 15, 16, 17, 30)] + ["é" * 4, "é" * 8, "é" * 9, "日本語", "😀x"]
long_pieces = st.sampled_from(_BOUNDARY_TOKENS + ["b" * 8, "zz", " ", "\u3000", ".", "'", "Σ", "İ", "\x85"])


@given(st.lists(st.tuples(st.integers(0, 3), st.lists(long_pieces, max_size=12).map("".join)),
                min_size=1, max_size=5), st.booleans())
def test_text_collate_byte_table_equals_per_text_encoding(raw, with_default):
    # TextCollate's fast path looks tokens up by their UTF-8 bytes; it must agree with Vocab.encode.
    vocab = Vocab(["<pad>", "<unk>", *_BOUNDARY_TOKENS], default_index=1 if with_default else None)
    try:
        encoded = [(vocab.encode(text), label) for label, text in raw]
    except KeyError as e:  # an unknown token with no default: TextCollate must raise the same error
        with pytest.raises(KeyError, match="set_default_index"):
            TextCollate(vocab, form="pad")(raw)
        assert "no default index" in str(e)
        return
    ids, lengths, labels = TextCollate(vocab, form="pad")(raw)
    want_ids, want_lengths = reference_pad([e for e, _ in encoded])
    assert torch.equal(ids, want_ids) and torch.equal(lengths, want_lengths)
    assert labels.tolist() == [label for label, _ in raw]


def test_text_collate_custom_tokenizer_keeps_a_real_nul_token():
    # NUL is TextCollate's internal batch separator; a vocabulary token "\x00" must still get its own id.
    vocab = Vocab(["<pad>", "\x00", "a"], default_index=0)
    assert TextCollate(vocab, tokenizer=str.split)([(0, "a \x00")])[0].tolist() == [[2, 1]]
