"""TextClassifier: shapes, padding excluded from the mean, padded == offsets form, hashed bigrams.

Run: python -m pytest -q tests/test_model.py
"""
import pytest
import torch
from hypothesis import given
from hypothesis import strategies as st

from textpipe.models.bag import ModelConfig, TextClassifier


def _model(**kw):
    torch.manual_seed(0)
    model = TextClassifier(ModelConfig(**{"vocab_size": 30, "num_classes": 3, "embed_dim": 6, "buckets": 101, **kw}))
    torch.nn.init.normal_(model.fc.weight)  # the zero init would make every output equal
    return model


@pytest.mark.parametrize("ngrams", [1, 2])
def test_padding_is_excluded_from_the_mean(ngrams):
    model = _model(ngrams=ngrams)
    short = model(torch.tensor([[4, 5, 6]]))
    padded = model(torch.tensor([[4, 5, 6, 0, 0, 0, 0]]))
    assert short.shape == (1, 3)
    torch.testing.assert_close(short, padded)


@pytest.mark.parametrize("ngrams", [1, 2])
def test_offsets_form_matches_padded_form(ngrams):
    model = _model(ngrams=ngrams)
    padded = torch.tensor([[2, 3, 4, 5], [6, 7, 0, 0], [8, 0, 0, 0]])
    flat, offsets = torch.tensor([2, 3, 4, 5, 6, 7, 8]), torch.tensor([0, 4, 6])
    torch.testing.assert_close(model(padded), model(flat, offsets))


@given(st.lists(st.lists(st.integers(0, 29), max_size=8), min_size=1, max_size=6), st.sampled_from([1, 2]))
def test_padded_and_offsets_forms_agree_on_random_batches(seqs, ngrams):
    # pads (0) may also appear inside a sequence: they are dropped from the mean in both forms
    model = _model(ngrams=ngrams)
    T = max(1, max(len(s) for s in seqs))
    padded = torch.tensor([s + [0] * (T - len(s)) for s in seqs])
    flat = torch.tensor([i for s in seqs for i in s], dtype=torch.long)
    offsets = torch.tensor([0] + [len(s) for s in seqs[:-1]]).cumsum(0)
    torch.testing.assert_close(model(padded), model(flat, offsets))


def test_offsets_form_with_an_empty_first_sequence():
    model = _model(ngrams=2)
    got = model(torch.tensor([2, 3, 4]), torch.tensor([0, 0]))
    torch.testing.assert_close(got[1], model(torch.tensor([[2, 3, 4]]))[0])


def test_bigrams_change_the_output_and_respect_word_order():
    uni, bi = _model(ngrams=1), _model(ngrams=2)
    x, y = torch.tensor([[4, 5, 6]]), torch.tensor([[6, 5, 4]])
    torch.testing.assert_close(uni(x), uni(y))  # a bag of words ignores order
    assert not torch.allclose(bi(x), bi(y))  # bigrams do not
    assert bi.embedding.num_embeddings == 30 + 101


def test_rows_are_independent_so_dataparallel_can_split_the_batch():
    model = _model()
    batch = torch.tensor([[2, 3, 4, 5], [6, 7, 0, 0], [8, 9, 10, 0], [11, 0, 0, 0]])
    torch.testing.assert_close(model(batch), torch.cat([model(batch[:2, :]), model(batch[2:])]))


def test_bad_inputs_raise():
    with pytest.raises(ValueError, match="vocab_size must be >= 2"):
        ModelConfig(vocab_size=1)
    with pytest.raises(ValueError, match="ngrams must be 1 or 2"):
        ModelConfig(vocab_size=10, ngrams=3)
    with pytest.raises(ValueError, match=r"ids must be \(B, T\)"):
        _model()(torch.tensor([1, 2, 3]))


def test_sparse_gradients():
    model = _model(sparse=True)
    model(torch.tensor([[2, 3, 0]])).sum().backward()
    assert model.embedding.weight.grad.is_sparse




def test_degenerate_batches():
    model = _model()
    assert model(torch.zeros((3, 0), dtype=torch.long)).shape == (3, 3)  # T = 0 (all texts empty)
    assert model(torch.zeros((0, 5), dtype=torch.long)).shape == (0, 3)  # B = 0
    torch.testing.assert_close(model(torch.zeros((2, 4), dtype=torch.long)), model.fc.bias.expand(2, 3))


@given(st.lists(st.lists(st.integers(0, 29), max_size=8), min_size=1, max_size=6))
def test_bigram_ids_never_overlap_word_ids(seqs):
    # words keep their ids (< vocab_size); every bigram gets a row of its own in [vocab_size, vocab_size + buckets)
    model = _model(ngrams=2)
    T = max(1, max(len(s) for s in seqs))
    bag, _ = model.bags(torch.tensor([s + [0] * (T - len(s)) for s in seqs]))
    words = sorted(i for s in seqs for i in s if i != 0)
    n_bigrams = sum(1 for s in seqs for a, b in zip(s, s[1:]) if a != 0 and b != 0)
    assert sorted(bag[bag < 30].tolist()) == words
    assert ((bag >= 30) & (bag < 30 + 101)).sum().item() == n_bigrams == bag.numel() - len(words)


def test_a_bigram_row_never_changes_a_one_word_text():
    # with the bigram rows overwritten, texts without bigrams give the same logits (the rows are disjoint)
    model = _model(ngrams=2)
    single = torch.tensor([[i] for i in range(2, 30)])
    before = model(single)
    with torch.no_grad():
        model.embedding.weight[30:] = 100.0
    torch.testing.assert_close(model(single), before)
