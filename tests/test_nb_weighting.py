"""Issue 23: the bag model's NB weighting (`--weighting nb`, the default): the weights, the weighted mean in the
autograd forward and in the fused step (the same gradient), training, checkpoints (old ones without the field
load as `mean`), the estimator, and bad values.

Run: python -m pytest -q tests/test_nb_weighting.py
"""
import math
import pickle
import sys
from pathlib import Path

import numpy as np
import pytest
import torch

from textpipe.corpus import EncodedCorpus
from textpipe.models import state_shapes
from textpipe.models.bag import ModelConfig, TextClassifier, nb_row_weights
from textpipe.train.config import TrainConfig, check_config, settle_defaults
from textpipe.train.fused import corpus_bag_chunks, corpus_bags, sgd_step

sys.path.insert(0, str(Path(__file__).parent))
from test_train import write_csv  # noqa: E402  (tests/ is not a package)

SEQS = [[2, 3, 4], [5, 6], [3, 7, 2, 5], [4], [6, 6, 2]]
LABELS = [0, 1, 2, 1, 0]


def _model(weighting="nb", ngrams=2):
    torch.manual_seed(0)
    m = TextClassifier(ModelConfig(vocab_size=9, num_classes=3, embed_dim=5, ngrams=ngrams, buckets=11,
                                   weighting=weighting))
    torch.nn.init.normal_(m.fc.weight)
    if weighting == "nb":
        m.row_weight.uniform_(0.5, 3.0)
        m.row_weight[8] = 0.0  # a row no training text held
    return m


def _padded(seqs):
    T = max(len(s) for s in seqs)
    return torch.tensor([s + [0] * (T - len(s)) for s in seqs])


def test_nb_row_weights_are_one_plus_the_largest_log_count_ratio():
    # 3 texts: class 0 = [2, 3], [2]; class 1 = [2, 4]. Rows 0, 1 and 5 are in no text.
    ids, offsets, labels = torch.tensor([2, 3, 2, 2, 4]), torch.tensor([0, 2, 3]), torch.tensor([0, 0, 1])
    w = nb_row_weights([(ids, offsets, labels)], 6, 2)

    def ratio(df0, df1):  # p(r | 0) / p(r | 1), add-one smoothed over n_0 = 2 and n_1 = 1 texts
        return abs(math.log((df0 + 1) / 4) - math.log((df1 + 1) / 3))

    want = [0.0, 0.0, 1 + ratio(2, 1), 1 + ratio(1, 0), 1 + ratio(0, 1), 0.0]
    torch.testing.assert_close(w, torch.tensor(want))
    # repeats in a text count once (binarized), and the chunks of a corpus add up to the whole
    assert torch.equal(nb_row_weights([(torch.tensor([2, 2, 3, 2, 2, 4]), torch.tensor([0, 3, 4]), labels)], 6, 2), w)
    halves = [(torch.tensor([2, 3, 2]), torch.tensor([0, 2]), labels[:2]), (torch.tensor([2, 4]), torch.tensor([0]),
                                                                          labels[2:])]
    torch.testing.assert_close(nb_row_weights(halves, 6, 2), w)


def test_corpus_chunks_are_the_corpus_bags():
    m = _model()
    flat = [i for s in SEQS for i in s]
    corpus = EncodedCorpus(flat, np.cumsum([0] + [len(s) for s in SEQS]), LABELS)
    whole = corpus_bags(m, corpus)
    chunks = list(corpus_bag_chunks(m, corpus, texts=2))
    assert len(chunks) == 3
    ids = torch.cat([c[0] for c in chunks])
    assert torch.equal(ids, whole[0]) and torch.equal(torch.cat([c[2] for c in chunks]), whole[2])
    torch.testing.assert_close(nb_row_weights(chunks, 20, 3), nb_row_weights([(whole[0], whole[1][:-1], whole[2])],
                                                                             20, 3))


@pytest.mark.parametrize("ngrams", [1, 2])
def test_the_forward_is_the_weighted_mean_in_both_input_forms(ngrams):
    m = _model(ngrams=ngrams)
    padded = _padded(SEQS)
    bag_ids, bag_offsets = m.bags(padded)
    for i, (a, b) in enumerate(zip(bag_offsets.tolist(), bag_offsets.tolist()[1:] + [bag_ids.numel()])):
        rows, w = m.embedding.weight[bag_ids[a:b]], m.row_weight[bag_ids[a:b]]
        torch.testing.assert_close(m.pool(bag_ids, bag_offsets)[i], (w[:, None] * rows).sum(0) / w.sum())
    flat = torch.tensor([i for s in SEQS for i in s])
    offsets = torch.tensor(np.cumsum([0] + [len(s) for s in SEQS[:-1]]))
    torch.testing.assert_close(m(padded), m(flat, offsets))
    # a text whose rows all weigh 0 (unseen in training) gets the bias, not NaN
    assert torch.equal(m(torch.tensor([[8]])), m.fc.bias.detach().unsqueeze(0))


@pytest.mark.parametrize("class_weights,smoothing", [(None, 0.0), ((0.5, 2.0, 1.0), 0.1)])
def test_the_fused_step_is_sgd_on_the_forwards_loss(class_weights, smoothing):
    """Output layer: lr x the batch-mean gradient; embedding rows: lr x the summed per-text gradients (scale 1)."""
    from textpipe.train.steps import cross_entropy

    m, ref = _model(), _model()
    padded, labels = _padded(SEQS), torch.tensor(LABELS)
    cw = None if class_weights is None else torch.tensor(class_weights)
    loss = cross_entropy(ref(padded), labels, class_weights=cw, label_smoothing=smoothing)
    (loss * len(SEQS)).backward()  # the per-text sum: the rows' gradients; the output layer's, / B
    ids, offsets = m.bags(padded)
    sgd_step(m, ids, torch.ones(ids.numel()), offsets, labels, lr=0.5, class_weights=cw, label_smoothing=smoothing)
    torch.testing.assert_close(m.embedding.weight, ref.embedding.weight.detach() - 0.5 * ref.embedding.weight.grad)
    torch.testing.assert_close(m.fc.weight, ref.fc.weight.detach() - 0.5 / len(SEQS) * ref.fc.weight.grad)
    torch.testing.assert_close(m.fc.bias, ref.fc.bias.detach() - 0.5 / len(SEQS) * ref.fc.bias.grad)
    assert torch.equal(m.row_weight, ref.row_weight)  # not trained


def test_mean_weighting_is_the_old_model():
    m = _model("mean")
    assert "row_weight" not in m.state_dict() and set(state_shapes(m.config)) == set(m.state_dict())
    nb = _model("nb")
    assert {k: tuple(v.shape) for k, v in nb.state_dict().items()} == state_shapes(nb.config)
    nb.row_weight.fill_(1.0)  # equal weights: the plain mean
    nb.embedding.weight.data.copy_(m.embedding.weight)
    torch.testing.assert_close(nb(_padded(SEQS)), m(_padded(SEQS)))


def test_bad_values_are_one_clear_error():
    with pytest.raises(ValueError, match="weighting must be one of"):
        ModelConfig(vocab_size=9, weighting="idf")
    with pytest.raises(ValueError, match="weighting must be one of"):
        check_config(TrainConfig(weighting="tfidf"))
    with pytest.raises(ValueError, match="--weighting applies to --model bag, not .cnn."):
        check_config(TrainConfig(model="cnn", weighting="nb"))
    from textpipe.train.args import parse_train_args
    with pytest.raises(SystemExit):
        parse_train_args(["--weighting", "idf"])
    assert settle_defaults(TrainConfig()).weighting == "nb" and settle_defaults(TrainConfig(model="cnn")).weighting is None


@pytest.mark.parametrize("fused", [True, False])
def test_an_nb_model_trains_checkpoints_and_predicts(tmp_path, fused):
    from textpipe.checkpoint import load_model
    from textpipe.predict import predict
    from textpipe.train import fit

    train, test = write_csv(tmp_path / "train.csv", 200, 0), write_csv(tmp_path / "test.csv", 40, 1)
    s = fit(TrainConfig(train=str(train), test=str(test), output_dir=str(tmp_path / "run"), buckets=4096,
                        batch_size=16, fused=fused, progress=False, **({} if fused else {"lr": 20.0, "epochs": 4})))
    assert s["test"]["accuracy"] > 0.9
    model, vocab, ckpt = load_model(s["checkpoint"])
    assert ckpt["model_config"]["weighting"] == "nb" and ckpt["train_config"]["weighting"] == "nb"
    w = model.row_weight
    assert w[0] == 0 and w[1] == 0 and (w[2:len(vocab)] >= 1).all()  # pad and <unk> are in no training text
    texts = [r[2] for r in __import__("csv").reader(open(test))][:8]
    assert [p["probs"] for p in predict(s["checkpoint"], texts)] == [p["probs"] for p in predict((model, vocab, ckpt),
                                                                                                texts)]


def test_a_checkpoint_without_the_field_loads_as_the_plain_mean(tmp_path):
    from textpipe.checkpoint import load_checkpoint, load_model, write_checkpoint
    from textpipe.predict import predict
    from textpipe.train import fit

    train = write_csv(tmp_path / "train.csv", 120, 0)
    s = fit(TrainConfig(train=str(train), output_dir=str(tmp_path / "run"), weighting="mean", buckets=512,
                        epochs=2, batch_size=16, progress=False))
    ckpt = load_checkpoint(s["checkpoint"])
    del ckpt["model_config"]["weighting"], ckpt["train_config"]["weighting"]  # as written before the field
    write_checkpoint(tmp_path / "old.pt", ckpt)
    model, _, _ = load_model(tmp_path / "old.pt")
    assert model.config.weighting == "mean"
    texts = ["stocks market shares", "goal match"]
    assert predict(tmp_path / "old.pt", texts) == predict(s["checkpoint"], texts)


def test_the_estimator_defaults_to_nb_and_pickles_it():
    pytest.importorskip("sklearn")
    from textpipe.sklearn import TextClassifier as Estimator

    rng = np.random.default_rng(0)
    words = {0: ["stocks", "market", "shares", "the"], 1: ["goal", "match", "league", "the"]}
    y = rng.integers(0, 2, 60)
    X = [" ".join(rng.choice(words[k], 4)) for k in y]
    clf = Estimator(buckets=512, batch_size=8).fit(X, y)
    assert clf.model_.config.weighting == "nb" and (clf.predict(X) == y).mean() > 0.9
    again = pickle.loads(pickle.dumps(clf))
    np.testing.assert_array_equal(again.predict_proba(X[:8]), clf.predict_proba(X[:8]))
    with torch.no_grad():  # the estimator's probabilities are the model's forward
        from textpipe.predict import class_probs
        np.testing.assert_allclose(clf.predict_proba(X[:8]), class_probs(clf.model_, clf.vocab_, X[:8], "cpu").numpy(),
                                   rtol=1e-5, atol=1e-6)
    assert Estimator(weighting="mean", buckets=512, epochs=3).fit(X, y).model_.config.weighting == "mean"


def test_nb_weights_of_many_classes_in_blocks_equal_a_dense_reference(monkeypatch):
    # the counts are sparse and the classes go in blocks (a dense classes x rows table is too large for
    # many-class data): the same weights as the formula computed densely, across chunks and blocks
    import textpipe.models.bag as bag

    gen = torch.Generator().manual_seed(0)
    C, R, B = 23, 40, 300
    lengths = torch.randint(1, 6, (B,), generator=gen)
    ids = torch.randint(2, R, (int(lengths.sum()),), generator=gen)
    offsets = torch.cat([torch.zeros(1, dtype=torch.int64), lengths.cumsum(0)[:-1]])
    labels = torch.randint(0, C, (B,), generator=gen)
    df = torch.zeros(C, R)
    for t in range(B):
        df[labels[t], ids[offsets[t]:offsets[t] + lengths[t]].unique()] += 1
    n = torch.bincount(labels, minlength=C).float()
    p = (df + 1) / (n[:, None] + 2)
    q = (df.sum(0) - df + 1) / (n.sum() - n[:, None] + 2)
    want = torch.where(df.sum(0) > 0, (p.log() - q.log()).abs().amax(0) + 1, torch.zeros(R))
    monkeypatch.setattr(bag, "NB_BLOCK_FLOATS", 5 * R)  # blocks of 5 classes
    half = int(offsets[150])
    chunks = [(ids[:half], offsets[:150], labels[:150]), (ids[half:], offsets[150:] - half, labels[150:])]
    assert torch.allclose(bag.nb_row_weights(chunks, R, C), want, atol=1e-6)  # dense counts
    monkeypatch.setattr(bag, "NB_DENSE_FLOATS", 0)
    assert torch.allclose(bag.nb_row_weights(chunks, R, C), want, atol=1e-6)  # sparse counts
