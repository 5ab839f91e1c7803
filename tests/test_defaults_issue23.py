"""Issue 23: subword (character n-gram) features, class weights and label smoothing in the fused step and the
autograd loop, checkpoints and prediction of a subword model, and a `--num-samples` search that reproduces.

Run: python -m pytest -q tests/test_defaults_issue23.py
"""
import importlib.util
import json
import pickle
import sys
from pathlib import Path

import numpy as np
import pytest
import torch

from textpipe.corpus import EncodedCorpus
from textpipe.models.bag import ModelConfig, TextClassifier, subword_table
from textpipe.train.config import TrainConfig, check_config, class_weights
from textpipe.train.fused import corpus_bags, sgd_step
from textpipe.train.steps import cross_entropy

sys.path.insert(0, str(Path(__file__).parent))
from test_train import write_csv  # noqa: E402  (tests/ is not a package)

ITOS = ["<pad>", "<unk>", "cat", "cats", "a", "dog", "élan"]


def _model(ngrams=2, minn=2, maxn=4):
    torch.manual_seed(0)
    m = TextClassifier(ModelConfig(vocab_size=len(ITOS), num_classes=3, embed_dim=5, ngrams=ngrams, buckets=13,
                                   minn=minn, maxn=maxn))
    m.set_vocab(ITOS)
    torch.nn.init.normal_(m.fc.weight)
    return m


def test_subword_table_is_fasttexts_ngrams_of_the_bracketed_word():
    offsets, rows = subword_table(["<pad>", "ab"], 2, 3, buckets=1000, first_row=2, skip=(0,))
    import zlib
    want = [zlib.crc32(g.encode()) % 1000 + 2 for g in ("<a", "ab", "b>", "<ab", "ab>")]
    assert offsets.tolist() == [0, 0, 5] and rows.tolist() == want


@pytest.mark.parametrize("ngrams", [1, 2])
def test_subword_bags_are_the_same_padded_flat_and_per_corpus(ngrams):
    m = _model(ngrams)
    seqs = [[2, 3, 4], [5], [], [6, 2, 1, 5, 3]]
    padded = torch.tensor([s + [0] * (5 - len(s)) for s in seqs])
    flat_ids = torch.tensor([i for s in seqs for i in s])
    offsets = torch.tensor([0, 3, 4, 4])
    a, b = m.bags(padded), m.bags(flat_ids, offsets)
    assert torch.equal(a[0], b[0]) and torch.equal(a[1], b[1])
    # each word brings its own rows and its subwords' (pad and <unk> have none)
    word_rows = [1 + int(m.subword_offsets[w + 1] - m.subword_offsets[w]) for w in range(len(ITOS))]
    assert word_rows[0] == word_rows[1] == 1 and word_rows[3] > word_rows[2] > 1
    corpus = EncodedCorpus([i for s in seqs for i in s], [0, 3, 4, 4, 9], [0, 1, 2, 0])
    bag_ids, bag_offsets, _ = corpus_bags(m, corpus)
    for i, s in enumerate(seqs):
        want, _ = m.bags(torch.tensor([s or [0]]))
        assert torch.equal(bag_ids[bag_offsets[i]:bag_offsets[i + 1]], want)
    torch.testing.assert_close(m.fc(m.embedding(*b)), m(padded))


def test_a_subword_model_without_its_vocabulary_refuses_to_guess():
    m = TextClassifier(ModelConfig(vocab_size=7, minn=2, maxn=3, buckets=13))
    with pytest.raises(RuntimeError, match="set_vocab"):
        m(torch.tensor([[2, 3]]))
    with pytest.raises(ValueError, match="minn, maxn"):
        ModelConfig(vocab_size=7, minn=4, maxn=3)
    with pytest.raises(ValueError, match=r"minn.*maxn.*3, 0|--minn 3 --maxn 0"):
        check_config(TrainConfig(minn=3, maxn=0))


def test_class_weights():
    torch.testing.assert_close(class_weights("balanced", [90, 10]), torch.tensor([100 / 180, 100 / 20]))
    w = class_weights("sqrt", [90, 10])
    assert w[1] / w[0] == pytest.approx(3.0) and float((w * torch.tensor([90.0, 10.0])).sum()) == pytest.approx(100)
    assert class_weights("none", [90, 10]) is None and class_weights("auto", [60, 40]) is None
    torch.testing.assert_close(class_weights("auto", [90, 10]), w)


@pytest.mark.parametrize("weights,smoothing", [(None, 0.1), ((0.5, 2.0, 1.0), 0.0), ((0.5, 2.0, 1.0), 0.2)])
def test_fused_step_takes_the_gradient_of_the_autograd_loss(weights, smoothing):
    """The output layer's step equals autograd's on `cross_entropy` (the loss the autograd loop trains on)."""
    m = _model()
    ids, offsets = m.bags(torch.tensor([[2, 3, 4], [5, 6, 0], [3, 0, 0], [2, 5, 0]]))
    labels = torch.tensor([0, 1, 2, 1])
    cw = None if weights is None else torch.tensor(weights)
    W = m.fc.weight.detach().clone().requires_grad_()
    b = m.fc.bias.detach().clone().requires_grad_()
    h = torch.nn.functional.embedding_bag(ids, m.embedding.weight.detach(), offsets, mode="mean")
    cross_entropy(h @ W.t() + b, labels, class_weights=cw, label_smoothing=smoothing).backward()
    sgd_step(m, ids, torch.ones(ids.numel()), offsets, labels, lr=0.3, class_weights=cw,
             label_smoothing=smoothing)
    torch.testing.assert_close(m.fc.weight.detach(), W.detach() - 0.3 * W.grad)
    torch.testing.assert_close(m.fc.bias.detach(), b.detach() - 0.3 * b.grad)


@pytest.mark.parametrize("fused", [True, False])
def test_subword_model_trains_checkpoints_and_predicts(tmp_path, fused):
    from textpipe.checkpoint import load_model
    from textpipe.predict import predict
    from textpipe.train import fit

    train, test = write_csv(tmp_path / "train.csv", 200, 0), write_csv(tmp_path / "test.csv", 40, 1)
    s = fit(TrainConfig(train=str(train), test=str(test), output_dir=str(tmp_path / "run"), minn=3, maxn=5,
                        buckets=4096, epochs=4, lr=8.0 if fused else 20.0, batch_size=16, fused=fused,
                        progress=False))
    assert s["test"]["accuracy"] > 0.9
    model, vocab, ckpt = load_model(s["checkpoint"])
    assert ckpt["model_config"]["minn"] == 3 and ckpt["model_config"]["maxn"] == 5
    assert model.subword_rows.numel() > 0
    texts = [r[2] for r in __import__("csv").reader(open(test))][:5]
    assert [p["label"] for p in predict(s["checkpoint"], texts)] == \
        [p["label"] for p in predict((model, vocab, ckpt), texts)]


def test_the_estimator_pickles_a_subword_model():
    pytest.importorskip("sklearn")
    from textpipe.sklearn import TextClassifier as Estimator

    rng = np.random.default_rng(0)
    words = {0: ["stocks", "market", "shares"], 1: ["goal", "match", "league"]}
    y = rng.integers(0, 2, 60)
    X = [" ".join(rng.choice(words[k], 4)) for k in y]
    clf = Estimator(minn=2, maxn=3, buckets=512, epochs=3).fit(X, y)
    again = pickle.loads(pickle.dumps(clf))
    np.testing.assert_array_equal(again.predict_proba(X[:8]), clf.predict_proba(X[:8]))


# -- a search with --num-samples is reproducible ----------------------------------------------------------
HAVE_RAY = all(importlib.util.find_spec(m) is not None for m in ("ray", "hyperopt"))


@pytest.mark.skipif(not HAVE_RAY, reason='needs the tune extra: pip install -e ".[tune]"')
def test_two_searches_with_num_samples_and_a_seed_give_the_same_trials_and_model(tmp_path):
    import ray

    from textpipe.checkpoint import load_model
    from textpipe.tune import _ray as _tune_ray  # noqa: F401  (sets RAY_AIR_NEW_OUTPUT before Ray's import)
    from textpipe.tune.command import SearchConfig, max_concurrent, search

    d = tmp_path / "data"
    d.mkdir()
    write_csv(d / "train.csv", 300, 0)
    write_csv(d / "test.csv", 60, 1)
    space = {"lr": {"loguniform": [0.5, 16.0]}, "epochs": {"randint": [1, 4]}, "embed_dim": 8, "buckets": 512,
             "batch_size": 16}
    assert max_concurrent(SearchConfig()) == 1 and max_concurrent(SearchConfig(time_budget_s=60)) is None
    ray.init(num_cpus=2, include_dashboard=False, log_to_driver=False, logging_level="WARNING")
    try:
        runs = []
        for k in range(2):
            out = tmp_path / f"s{k}"
            summary = search(SearchConfig(data_dir=str(d), output_dir=str(out), space=dict(space), num_samples=5,
                                          seed=0, progress=False, grace_period=1))
            rows = json.loads((out / "trials.json").read_text())
            runs.append(([(r["lr"], r["epochs"], r["end"], r["val_accuracy"]) for r in rows], summary,
                         load_model(out / "best.pt")[0].state_dict()))
    finally:
        ray.shutdown()
    (rows0, s0, w0), (rows1, s1, w1) = runs
    # the same trials (the table is sorted by Ray's trial ids, which are random: the order differs)
    assert sorted(rows0) == sorted(rows1) and s0["best"]["config"] == s1["best"]["config"]
    assert all(torch.equal(w0[k], w1[k]) for k in w0)
    # summary.json in train's schema: the test report (macro-F1, per class) and the class names
    assert s0["test"]["macro_f1"] == s1["test"]["macro_f1"] and s0["classes"] == s0["test"]["class_names"]
    assert s0["test_accuracy"] == s0["test"]["accuracy"] and "per_class" in s0["test"]
