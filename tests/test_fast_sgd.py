"""The fused SGD trainer: bags equal the model's, batches equal the loader's, the step equals its formula.

Run: python -m pytest -q tests/test_fast_sgd.py
"""
import numpy as np
import pytest
import torch

from textpipe.train.fused import FlatBatches, corpus_bags, hogwild_steps, row_scale, sgd_step
from textpipe.corpus import EncodedCorpus
from textpipe.batches.loader import make_dataloader
from textpipe.models.bag import ModelConfig, TextClassifier
from textpipe.batches.sampler import BucketBatchSampler


def _corpus(n=23, vocab=17, seed=0):
    rng = np.random.default_rng(seed)
    seqs = [rng.integers(2, vocab, size=rng.integers(0, 9)).tolist() for _ in range(n)]
    seqs[3] = []  # an empty text: its bag is empty, its mean is zeros
    ids = [i for s in seqs for i in s]
    offsets = np.concatenate([[0], np.cumsum([len(s) for s in seqs])])
    return EncodedCorpus(ids, offsets, rng.integers(0, 3, size=n)), seqs


def _model(ngrams=2, seed=0):
    torch.manual_seed(seed)
    model = TextClassifier(ModelConfig(vocab_size=17, num_classes=3, embed_dim=5, ngrams=ngrams, buckets=11))
    torch.nn.init.normal_(model.fc.weight)  # the zero init would hide mistakes in the embedding gradient
    return model


@pytest.mark.parametrize("ngrams", [1, 2])
def test_corpus_bags_are_the_models_bags(ngrams):
    corpus, seqs = _corpus()
    model = _model(ngrams)
    bag_ids, bag_offsets, labels = corpus_bags(model, corpus)
    assert torch.equal(labels, torch.as_tensor(corpus.labels))
    for i, s in enumerate(seqs):
        want, _ = model.bags(torch.tensor([s or [0]]))  # one padded row: the model's own bag of text i
        assert torch.equal(bag_ids[bag_offsets[i]:bag_offsets[i + 1]], want)


def test_flat_batches_are_the_loaders_batches():
    corpus, _ = _corpus()
    model = _model()
    bags = corpus_bags(model, corpus)
    loader = make_dataloader(corpus, batch_size=4, shuffle=True, seed=3)
    flat = FlatBatches(bags, BucketBatchSampler(corpus.lengths, 4, seed=3), num_rows=28)
    assert len(flat) == len(loader) == 6
    for epoch in (0, 1):
        loader.batch_sampler.set_epoch(epoch)
        got = list(flat.epoch(epoch))
        assert len(got) == len(loader)
        with torch.no_grad():
            for (ids, _, y), (bag, scale, offsets, labels) in zip(loader, got):
                assert torch.equal(labels, y) and scale.shape == bag.shape
                torch.testing.assert_close(model.fc(model.embedding(bag, offsets)), model(ids))
        # a resume mid-epoch gets the same tail
        tail = list(flat.epoch(epoch, start=4))
        assert len(tail) == 2 and all(torch.equal(a, b) for t, u in zip(tail, got[4:]) for a, b in zip(t, u))


def test_flat_batches_shard_like_the_sampler():
    corpus, _ = _corpus()
    bags = corpus_bags(_model(), corpus)
    seen = []
    for rank in (0, 1):
        s = BucketBatchSampler(corpus.lengths, 4, seed=1, num_replicas=2, rank=rank)
        seen += [y for _, _, _, y in FlatBatches(bags, s, num_rows=28).epoch(0)]
        s.set_epoch(0)
        assert [y.tolist() for _, _, _, y in FlatBatches(bags, s, num_rows=28).epoch(0)] == \
            [corpus.labels[b].tolist() for b in s]
    assert sum(y.numel() for y in seen) == 23  # 6 batches over 2 ranks: every text once


def test_row_scale_divides_by_expected_occurrences_per_batch():
    # row 2 occurs 3 times in 4 texts: 1.5 times in a batch of 2; row 3 once (0.5 -> at least 1)
    torch.testing.assert_close(row_scale(torch.tensor([2, 3, 2, 2]), 5, batch_texts=2, num_texts=4),
                               torch.tensor([2 / 3, 1.0, 2 / 3, 2 / 3]))
    assert torch.equal(row_scale(torch.tensor([2, 2]), 4, batch_texts=1, num_texts=8), torch.ones(2))


def _reference_step(model, ids, scale, offsets, labels, lr):
    """The step by autograd and a loop: fc by the mean-loss gradient, rows by sum over occurrences x scale."""
    E = model.embedding.weight.detach().clone().requires_grad_()
    W = model.fc.weight.detach().clone().requires_grad_()
    b = model.fc.bias.detach().clone().requires_grad_()
    h = torch.nn.functional.embedding_bag(ids, E, offsets, mode="mean")
    h.retain_grad()
    loss = torch.nn.functional.cross_entropy(h @ W.t() + b, labels, reduction="sum")
    loss.backward()
    B, new_E = labels.numel(), E.detach().clone()
    ends = offsets.tolist()[1:] + [ids.numel()]
    for i, (a, e) in enumerate(zip(offsets.tolist(), ends)):
        for j in range(a, e):  # each occurrence: the text's gradient / its length, times its scale
            new_E[ids[j]] -= lr * scale[j] * h.grad[i] / (e - a)
    return new_E, W.detach() - lr * W.grad / B, b.detach() - lr * b.grad / B, loss.item()


@pytest.mark.parametrize("uniform", [True, False])
def test_sgd_step_matches_the_reference(uniform):
    corpus, _ = _corpus()
    model = _model()
    bags = corpus_bags(model, corpus)
    flat = FlatBatches(bags, BucketBatchSampler(corpus.lengths, 8, seed=0), num_rows=28)
    ids, scale, offsets, labels = next(flat.epoch(0))
    if uniform:
        scale = torch.ones_like(scale)
    assert len(set(ids.tolist())) < ids.numel()  # repeated rows in the batch: the accumulate path is used
    want_E, want_W, want_b, want_loss = _reference_step(model, ids, scale, offsets, labels, lr=0.7)
    stats = torch.zeros(3, dtype=torch.float64)
    logits_before = model.fc(model.embedding(ids, offsets)).detach()
    sgd_step(model, ids, scale, offsets, labels, lr=0.7, stats=stats)
    torch.testing.assert_close(model.embedding.weight.detach(), want_E)
    torch.testing.assert_close(model.fc.weight.detach(), want_W)
    torch.testing.assert_close(model.fc.bias.detach(), want_b)
    assert stats[0].item() == pytest.approx(want_loss, rel=1e-5)
    assert stats[1].item() == (logits_before.argmax(1) == labels).sum().item()
    assert stats[2].item() == labels.numel()


def test_sgd_step_touches_only_the_batch_rows_and_never_the_pad_row():
    corpus, _ = _corpus()
    model = _model()
    flat = FlatBatches(corpus_bags(model, corpus), BucketBatchSampler(corpus.lengths, 8, seed=0), num_rows=28)
    ids, scale, offsets, labels = next(flat.epoch(0))
    before = model.embedding.weight.detach().clone()
    sgd_step(model, ids, scale, offsets, labels, lr=0.5)
    changed = (model.embedding.weight.detach() != before).any(1).nonzero().flatten().tolist()
    assert 0 not in changed and set(changed) <= set(ids.tolist()) and changed


def test_training_is_deterministic_and_learns():
    corpus, _ = _corpus(n=64)
    weights = []
    for _ in range(2):
        model = _model()
        flat = FlatBatches(corpus_bags(model, corpus), BucketBatchSampler(corpus.lengths, 8, seed=0), num_rows=28)
        first = last = None
        for epoch in range(8):
            stats = torch.zeros(3, dtype=torch.float64)
            for batch in flat.epoch(epoch):
                sgd_step(model, *batch, lr=0.5, stats=stats)
            first = first if first is not None else stats[0] / stats[2]
            last = stats[0] / stats[2]
        assert last < first  # the training loss went down
        weights.append(torch.cat([p.detach().flatten() for p in model.parameters()]))
    assert torch.equal(weights[0], weights[1])


def test_the_fused_step_is_the_default_for_sgd_and_batches_are_random_there():
    from textpipe.train.config import TrainConfig
    from textpipe.train.plan import uses_bucketing, uses_fused_step

    assert uses_fused_step(TrainConfig()) and not uses_bucketing(TrainConfig())
    for autograd in (TrainConfig(optimizer="adamw"), TrainConfig(weight_decay=0.1), TrainConfig(parallel="dp"),
                     TrainConfig(fused=False)):
        assert not uses_fused_step(autograd) and uses_bucketing(autograd)  # padded batches: bucket them
    assert uses_bucketing(TrainConfig(bucket=True)) and not uses_bucketing(TrainConfig(fused=False, bucket=False))


def test_hogwild_threads_share_out_every_batch_once_with_its_own_learning_rate():
    import threading

    corpus, _ = _corpus(n=64)
    model = _model()
    flat = FlatBatches(corpus_bags(model, corpus), BucketBatchSampler(corpus.lengths, 8, seed=0), num_rows=28)
    batches = list(flat.epoch(0))
    seen = []

    def lr_at(j):
        seen.append((j, threading.current_thread().name))
        return 0.5

    stats = hogwild_steps(model, batches, lr_at=lr_at, threads=3)
    assert sorted(j for j, _ in seen) == list(range(len(batches)))  # each batch once
    by_thread = {name: {j % 3 for j, n in seen if n == name} for _, name in seen}
    assert len(by_thread) == 3 and all(len(r) == 1 for r in by_thread.values())  # thread k: batches k, k+3, ...
    assert stats[2].item() == 64  # every text trained on once
    assert not torch.equal(model.embedding.weight, _model().embedding.weight)  # the shared model was updated


def test_an_error_in_a_hogwild_thread_reaches_the_caller():
    corpus, _ = _corpus(n=32)
    model = _model()
    flat = FlatBatches(corpus_bags(model, corpus), BucketBatchSampler(corpus.lengths, 8, seed=0), num_rows=28)
    batches = list(flat.epoch(0))
    ids, scale, offsets, labels = batches[1]  # thread 1's first batch: a label out of range
    batches[1] = (ids, scale, offsets, torch.full_like(labels, 7))
    with pytest.raises(IndexError):
        hogwild_steps(model, batches, lr_at=lambda j: 0.5, threads=2)


def test_concurrent_steps_are_scaled_as_one_step_over_their_batches_together():
    # Hogwild: with 2 steps in flight, the output layer takes half its step and the rows' scale counts
    # them in 2 batches (a frequent row's step halves, a rare row keeps its whole step)
    corpus, _ = _corpus(n=64)
    model = _model()
    bags = corpus_bags(model, corpus)
    one = FlatBatches(bags, BucketBatchSampler(corpus.lengths, 8, seed=0), num_rows=28)
    two = FlatBatches(bags, BucketBatchSampler(corpus.lengths, 8, seed=0), num_rows=28, concurrent=2)
    assert torch.equal(two.scale, row_scale(bags[0], 28, batch_texts=16, num_texts=64))
    assert (two.scale <= one.scale).all() and (two.scale < one.scale).any()
    batch = next(iter(one.epoch(0)))
    moved = []
    for concurrent in (1, 2):
        m = _model()
        w0 = m.fc.weight.detach().clone()
        sgd_step(m, *batch, lr=0.5, concurrent=concurrent)
        moved.append(m.fc.weight.detach() - w0)
    assert torch.allclose(moved[1], moved[0] / 2, atol=1e-6) and moved[0].abs().max() > 1e-3
