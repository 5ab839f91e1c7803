"""textpipe.sklearn.TextClassifier: the scikit-learn estimator (fit/predict/proba/score, params, pickle, Pipeline,
cross_val_score, GridSearchCV, input errors) and scikit-learn's own estimator checks where they apply.

Run: python -m pytest -q tests/test_sklearn.py        (skipped without scikit-learn: pip install -e ".[sklearn]")

How the estimator checks are run. scikit-learn's checks feed numeric 2-D arrays; TextClassifier takes texts, and
its tags say so (string input, no 2-D arrays), so `check_estimator(TextClassifier())` runs no check at all. So:
  * the checks that need no training data run on TextClassifier itself (`API_CHECKS`);
  * every other check runs on `NumbersAsText`, a test-only subclass that turns each numeric row into a text of
    one token per feature value (`f0v3 f1v-2`, values binned to 0.5) and hands it to TextClassifier's own
    fit/predict_proba: cloning, params, fit idempotence, pickling, classes_, one-label and y checks, proba
    consistency, subset/order invariance, training accuracy (> 0.83 on blobs), pipeline consistency.
    `NOT_APPLICABLE` lists the checks skipped there, each with its reason (they test numeric-feature
    validation that texts do not have); their text counterparts are tested below.
"""
from __future__ import annotations

import dataclasses
import inspect
import io
import os
import pickle
import subprocess
import sys
import warnings
from pathlib import Path

import numpy as np
import pytest

sklearn = pytest.importorskip("sklearn", reason="scikit-learn is not installed (pip install -e '.[sklearn]')")

from sklearn.base import clone  # noqa: E402
from sklearn.exceptions import NotFittedError  # noqa: E402
from sklearn.model_selection import GridSearchCV, StratifiedKFold, cross_val_score  # noqa: E402
from sklearn.pipeline import Pipeline  # noqa: E402
from sklearn.preprocessing import FunctionTransformer  # noqa: E402
from sklearn.utils import estimator_checks  # noqa: E402
from sklearn.utils.estimator_checks import parametrize_with_checks  # noqa: E402

from textpipe.sklearn import TextClassifier  # noqa: E402

ROOT = Path(__file__).resolve().parents[1]
FAST = dict(buckets=1024, epochs=10, batch_size=16, lr=4.0)  # small model, enough steps for tiny data

# -- tiny synthetic data: three classes, each with its own words, plus words shared by all -------------------
WORDS = {"sport": "match goal team score league coach player win",
         "money": "bank stock market price share profit trade fund",
         "space": "rocket orbit planet moon star launch probe comet"}
SHARED = "the a of today new report says big".split()


def make_texts(n: int, seed: int = 0, labels=("sport", "money", "space")):
    rng = np.random.default_rng(seed)
    X, y = [], []
    for i in range(n):
        k = i % len(labels)
        own = WORDS[("sport", "money", "space")[k]].split()
        words = list(rng.choice(own, 3)) + list(rng.choice(SHARED, 3))
        rng.shuffle(words)
        X.append(" ".join(words).capitalize() + ".")
        y.append(labels[k])
    return X, y


X_TRAIN, Y_TRAIN = make_texts(120, seed=0)
X_TEST, Y_TEST = make_texts(30, seed=1)


@pytest.fixture(scope="module")
def fitted():
    return TextClassifier(**FAST).fit(X_TRAIN, Y_TRAIN)


# -- the basics ------------------------------------------------------------------------------------------------
def test_fit_predict_proba_score(fitted):
    assert list(fitted.classes_) == ["money", "space", "sport"]  # sorted, as scikit-learn's
    pred = fitted.predict(X_TEST)
    assert pred.shape == (30,) and set(pred) <= set(fitted.classes_)
    proba = fitted.predict_proba(X_TEST)
    assert proba.shape == (30, 3) and proba.dtype == np.float64
    np.testing.assert_allclose(proba.sum(axis=1), 1.0, rtol=1e-12)
    assert (fitted.classes_[proba.argmax(1)] == pred).all()
    np.testing.assert_allclose(fitted.predict_log_proba(X_TEST), np.log(proba))
    assert fitted.score(X_TEST, Y_TEST) >= 0.9  # separable words: anything trained gets these right
    assert fitted.summary_["rows"]["train"] == 120 and fitted.summary_["steps"] == 10 * 8


def test_proba_columns_follow_classes_not_first_seen_order():
    # labels whose sorted order is not the order they first appear in; each column must mean classes_[k]
    X, y = make_texts(120, labels=("zulu", "alpha", "mike"))
    clf = TextClassifier(**FAST).fit(X, y)
    assert list(clf.classes_) == ["alpha", "mike", "zulu"]
    proba = clf.predict_proba(["goal team match coach", "bank stock price fund", "rocket orbit moon comet"])
    assert [clf.classes_[k] for k in proba.argmax(1)] == ["zulu", "alpha", "mike"]


def test_integer_labels_keep_their_values_and_type():
    X, _ = make_texts(120)
    y = np.array([10, -3, 7] * 40)
    clf = TextClassifier(**FAST).fit(X, y)
    assert clf.classes_.tolist() == [-3, 7, 10] and clf.classes_.dtype.kind == "i"
    pred = clf.predict(["goal team match coach", "bank stock price fund"])
    assert pred.tolist() == [10, -3] and pred.dtype.kind == "i"


def test_inputs_list_tuple_array_series_agree(fitted):
    pd = pytest.importorskip("pandas")
    expected = fitted.predict_proba(X_TEST)
    for X in (tuple(X_TEST), np.array(X_TEST), np.array(X_TEST, dtype=object), pd.Series(X_TEST, index=range(5, 35))):
        np.testing.assert_array_equal(fitted.predict_proba(X), expected)
    clf = TextClassifier(**FAST).fit(pd.Series(X_TRAIN), pd.Series(Y_TRAIN))
    np.testing.assert_array_equal(clf.predict_proba(X_TEST), expected)


def test_predicts_in_batches_of_eval_batch_size(fitted):
    small = clone(fitted).set_params(eval_batch_size=7).fit(X_TRAIN, Y_TRAIN)
    np.testing.assert_allclose(small.predict_proba(X_TEST), fitted.predict_proba(X_TEST), rtol=1e-6)
    # empty texts and texts with no known word get a prediction too; no texts give an empty (0, 3) array
    assert small.predict(["", "zzz qqq", "goal"]).shape == (3,)
    assert fitted.predict_proba([]).shape == (0, 3)


def test_defaults_are_textpipe_trains():
    from textpipe.train import TrainConfig
    from textpipe.train.config import settle_defaults

    train_defaults = vars(settle_defaults(TrainConfig()))  # the bag model's defaults (None = the model's)
    params = inspect.signature(TextClassifier).parameters
    assert set(params) - set(train_defaults) == {"verbose"}
    for name, p in params.items():
        if name != "verbose":
            assert p.default == train_defaults[name], name


def test_default_hyperparameters_train_and_are_deterministic():
    a = TextClassifier().fit(X_TRAIN, Y_TRAIN)
    b = TextClassifier().fit(X_TRAIN, Y_TRAIN)
    np.testing.assert_array_equal(a.predict_proba(X_TEST), b.predict_proba(X_TEST))
    assert a.model_.config.buckets == 2**18 and a.model_.config.embed_dim == 10
    c = TextClassifier(seed=1).fit(X_TRAIN, Y_TRAIN)
    assert not np.array_equal(a.predict_proba(X_TEST), c.predict_proba(X_TEST))


def test_hyperparameters_reach_training():
    clf = TextClassifier(buckets=64, embed_dim=6, ngrams=1, epochs=2, batch_size=40, tokenizer="split",
                         min_freq=2).fit(X_TRAIN, Y_TRAIN)
    cfg = clf.model_.config
    assert (cfg.embed_dim, cfg.ngrams, cfg.num_classes) == (6, 1, 3)
    assert clf.summary_["steps"] == 2 * 3
    assert clf.vocab_.tokenizer_name == "split"
    assert "Goal" in clf.vocab_.get_itos() or "Match" in clf.vocab_.get_itos()  # split keeps the capitals
    with_val = TextClassifier(**{**FAST, "val_fraction": 0.25, "patience": 2}).fit(X_TRAIN, Y_TRAIN)
    assert with_val.summary_["rows"] == {"train": 90, "val": 30, "test": 0}
    assert with_val.summary_["best_val_accuracy"] is not None


def test_bad_hyperparameter_is_textpipes_error():
    with pytest.raises(ValueError, match=r"epochs \(--epochs\) must be >= 1"):
        TextClassifier(epochs=0).fit(X_TRAIN, Y_TRAIN)
    with pytest.raises(ValueError, match="tokenizer"):
        TextClassifier(tokenizer="no-such-tokenizer").fit(X_TRAIN, Y_TRAIN)


# -- quiet, and the caller's torch state left alone --------------------------------------------------------------
def test_quiet_by_default_verbose_prints_epochs(capsys):
    TextClassifier(**FAST).fit(X_TRAIN, Y_TRAIN)
    out = capsys.readouterr()
    assert out.out == "" and out.err == ""
    TextClassifier(**{**FAST, "epochs": 2}, verbose=1).fit(X_TRAIN, Y_TRAIN)
    lines = capsys.readouterr().out.splitlines()
    assert sum(line.startswith("epoch ") for line in lines) == 2


def test_fit_restores_torch_threads_and_rng():
    import torch

    threads = torch.get_num_threads()
    torch.set_num_threads(2)
    try:
        torch.manual_seed(1234)
        state = torch.random.get_rng_state()
        TextClassifier(**FAST).fit(X_TRAIN, Y_TRAIN)  # textpipe sets threads=1 and seeds torch
        assert torch.get_num_threads() == 2
        assert torch.equal(torch.random.get_rng_state(), state)
    finally:
        torch.set_num_threads(threads)


# -- pickle ------------------------------------------------------------------------------------------------------
def test_pickle_roundtrip_plain_data(fitted):
    blob = pickle.dumps(fitted)
    modules = set()

    class Recorder(pickle.Unpickler):
        def find_class(self, module, name):
            modules.add(module)
            return super().find_class(module, name)

    back = Recorder(io.BytesIO(blob)).load()
    # plain data: no textpipe object but the estimator itself (a pickle survives textpipe's module moves)
    assert {m for m in modules if m.split(".")[0] == "textpipe"} == {"textpipe.sklearn"}, modules
    np.testing.assert_array_equal(back.predict_proba(X_TEST), fitted.predict_proba(X_TEST))
    assert back.get_params() == fitted.get_params()
    assert list(back.classes_) == list(fitted.classes_) and back.vocab_.tokenizer_name == "basic_english"


def test_pickle_loads_in_a_fresh_interpreter(fitted, tmp_path):
    path = tmp_path / "clf.pkl"
    path.write_bytes(pickle.dumps(fitted))
    code = (f"import pickle; clf = pickle.load(open({str(path)!r}, 'rb'));"
            "print(' '.join(clf.predict(['goal team match coach', 'rocket orbit moon comet'])))")
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, timeout=120,
                         env={**os.environ, "PYTHONPATH": str(ROOT)})
    assert out.returncode == 0, out.stderr
    assert out.stdout.split() == list(fitted.predict(["goal team match coach", "rocket orbit moon comet"]))


def test_unfitted_estimator_pickles_and_clones():
    clf = TextClassifier(epochs=3, tokenizer="split")
    assert pickle.loads(pickle.dumps(clf)).get_params() == clf.get_params()
    assert clone(clf).get_params() == clf.get_params()


# -- model selection ---------------------------------------------------------------------------------------------
def test_pipeline_cross_val_score_and_grid_search():
    lower = FunctionTransformer(lambda X: [t.lower() for t in X])
    pipe = Pipeline([("lower", lower), ("clf", TextClassifier(**FAST, tokenizer="split"))])
    cv = StratifiedKFold(3, shuffle=True, random_state=0)
    scores = cross_val_score(pipe, X_TRAIN, Y_TRAIN, cv=cv)
    assert scores.shape == (3,) and scores.min() >= 0.9, scores

    # lr=0 learns nothing (a zero output layer: every text gets the first class), lr=4 learns the words
    grid = GridSearchCV(pipe, {"clf__lr": [0.0, 4.0], "clf__ngrams": [1, 2]}, cv=cv)
    grid.fit(X_TRAIN, Y_TRAIN)
    assert grid.best_params_["clf__lr"] == 4.0
    assert grid.best_score_ >= 0.9 and grid.cv_results_["mean_test_score"].min() < 0.5
    assert grid.score(X_TEST, Y_TEST) >= 0.9
    assert grid.best_estimator_.named_steps["clf"].classes_.tolist() == ["money", "space", "sport"]


# -- bad input: errors that say what to do ------------------------------------------------------------------------
@pytest.mark.parametrize("X, error, match", [
    ("one text", TypeError, "got a single str; wrap it in a list"),
    (["ok", None, "ok"], TypeError, r"X\[1\] is NoneType"),
    (["ok", float("nan")], TypeError, r"X\[1\] is float"),
    ([b"bytes"], TypeError, r"X\[0\] is bytes"),
    (np.array([["a", "b"], ["c", "d"]]), TypeError, r"1-D sequence of strings .* shape \(2, 2\)"),
    (np.arange(4.0), TypeError, r"X\[0\] is float"),
    (42, TypeError, "must be a sequence of strings, got int"),
])
def test_bad_texts(fitted, X, error, match):
    with pytest.raises(error, match=match):
        TextClassifier(**FAST).fit(X, ["a", "b"] * (len(X) // 2) if hasattr(X, "__len__") else ["a", "b"])
    with pytest.raises(error, match=match):
        fitted.predict(X)


def test_dataframe_and_sparse_input_say_what_to_pass(fitted):
    pd = pytest.importorskip("pandas")
    with pytest.raises(TypeError, match=r"pick the text column, e.g. X\['body'\]"):
        fitted.predict(pd.DataFrame({"body": ["a", "b"], "n": [1, 2]}))
    scipy_sparse = pytest.importorskip("scipy.sparse")
    with pytest.raises(TypeError, match="sparse input is not supported"):
        fitted.predict_proba(scipy_sparse.csr_matrix(np.eye(3)))


@pytest.mark.parametrize("X, y, match", [
    (["a", "b", "c"], ["x", "y"], "different lengths: 3 texts and 2 labels"),
    (["a", "b", "c"], ["x", "x", "x"], r"one class only \('x'\)"),
    ([], [], "0 samples"),
    (["a", "b", "c"], None, "requires y to be passed"),
    (["a", "b", "c"], [0.5, 1.5, 2.25], "Unknown label type"),
])
def test_bad_labels(X, y, match):
    with pytest.raises(ValueError, match=match):
        TextClassifier(**FAST).fit(X, y)


def test_unfitted_predict_is_not_fitted_error():
    for method in ("predict", "predict_proba", "predict_log_proba", "score"):
        with pytest.raises(NotFittedError):
            getattr(TextClassifier(), method)(*(["a"], ["x"])[:1 + (method == "score")])


# -- packaging -----------------------------------------------------------------------------------------------------
def test_import_textpipe_does_not_import_sklearn():
    code = ("import sys, textpipe, textpipe.train, textpipe.evaluate, textpipe.predict\n"
            "textpipe.Vocab, textpipe.TextClassifier, textpipe.load_model\n"
            "print(sorted(m for m in sys.modules if m.split('.')[0] == 'sklearn'))")
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, timeout=120,
                         env={**os.environ, "PYTHONPATH": str(ROOT)})
    assert out.returncode == 0, out.stderr
    assert out.stdout.strip() == "[]"


def test_without_sklearn_the_import_error_says_how_to_install():
    code = ("import sys; sys.modules['sklearn'] = None\n"
            "try:\n    import textpipe.sklearn\nexcept ImportError as e:\n    print(e)\n")
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, timeout=120,
                         env={**os.environ, "PYTHONPATH": str(ROOT)})
    assert out.returncode == 0, out.stderr
    assert 'pip install "scikit-learn>=1.3"' in out.stdout and "textpipe-classic[sklearn]" in out.stdout


def test_tags_say_text_input():
    get_tags = getattr(sklearn.utils, "get_tags", None)
    if get_tags is None:
        pytest.skip(f"estimator tag objects are scikit-learn >= 1.6, this is {sklearn.__version__}")

    tags = get_tags(TextClassifier())
    assert tags.input_tags.string and not tags.input_tags.two_d_array
    assert tags.estimator_type == "classifier"


# -- scikit-learn's estimator checks ------------------------------------------------------------------------------
# the checks that need no training data, on TextClassifier itself (those missing from older scikit-learn: skipped)
API_CHECKS = ["check_estimator_cloneable", "check_estimator_tags_renamed", "check_valid_tag_types",
              "check_estimator_repr", "check_no_attributes_set_in_init", "check_estimators_unfitted",
              "check_do_not_raise_errors_in_init_or_set_params", "check_mixin_order",
              "check_parameters_default_constructible", "check_get_params_invariance", "check_set_params"]


@pytest.mark.parametrize("check_name", API_CHECKS)
def test_sklearn_api_check(check_name):
    check = getattr(estimator_checks, check_name, None)
    if check is None:
        pytest.skip(f"{check_name} is not in scikit-learn {sklearn.__version__}")
    check("TextClassifier", TextClassifier())


def _as_text(X):
    """`(texts, columns)` of numeric rows (one token per feature value, binned to 0.5), else `(X, None)`: sparse
    and non-numeric input reach TextClassifier as they are (its own errors)."""
    if hasattr(X, "tocsr") and hasattr(X, "nnz"):
        return X, None
    A = np.asarray(X)
    if A.ndim != 2 or A.dtype.kind not in "biuf":
        return X, None
    return [" ".join(f"f{j}v{int(np.floor(v * 2))}" for j, v in enumerate(row)) for row in A], A.shape[1]


class NumbersAsText(TextClassifier):
    """Test-only: TextClassifier on numeric rows turned into texts (see the module docstring). The one thing it
    adds is scikit-learn's check that predict gets as many columns as fit (which texts do not have)."""

    def __sklearn_tags__(self):
        tags = super().__sklearn_tags__()
        tags.input_tags.two_d_array, tags.input_tags.string = True, False
        return tags

    def _more_tags(self):  # scikit-learn < 1.6
        return {"X_types": ["2darray"]}

    def fit(self, X, y):
        texts, self._columns = _as_text(X)
        return super().fit(texts, y)

    def predict_proba(self, X):
        texts, columns = _as_text(X)
        if columns is not None and getattr(self, "_columns", None) not in (None, columns):
            raise ValueError(f"X has {columns} features, but NumbersAsText is expecting {self._columns} features "
                             "as input")
        return super().predict_proba(texts)


NOT_APPLICABLE = {
    "check_n_features_in": "texts have no number of features (no n_features_in_)",
    "check_n_features_in_after_fitting": "texts have no number of features (no n_features_in_)",
    "check_fit1d": "a 1-D sequence is the valid input shape for texts (1-D numbers: TypeError, tested above)",
    "check_fit2d_predict1d": "a 1-D sequence is the valid input shape for texts",
    "check_estimators_nan_inf": "NaN/inf are numeric-feature checks; a non-str text is a TypeError (tested above)",
    "check_estimators_empty_data_messages": "zero features = empty texts, which are valid; 0 samples is tested "
                                            "above (test_bad_labels)",
    "check_complex_data": "complex numbers are numeric features; a non-str text is a TypeError (tested above)",
    "check_dtype_object": "object arrays of numbers are numeric features; object arrays of str are tested above",
    "check_estimator_sparse_tag": "NumbersAsText's tags are not TextClassifier's (sparse input: tested above)",
    "check_class_weight_classifiers": "class_weight is textpipe's 'auto' | 'balanced' | 'sqrt' | 'none'; a dict of "
                                      "per-class weights is not supported (yet)",
}


@parametrize_with_checks([NumbersAsText(tokenizer="split", **{**FAST, "epochs": 20})])
def test_sklearn_estimator_checks(estimator, check):
    name = check.func.__name__ if hasattr(check, "func") else check.__name__
    if name in NOT_APPLICABLE:
        pytest.skip(f"not applicable: {NOT_APPLICABLE[name]}")
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", UserWarning)
        warnings.simplefilter("ignore", RuntimeWarning)  # check_supervised_y_no_nan casts NaN labels itself
        check(estimator)
