"""A scikit-learn estimator around textpipe's classifier: raw texts in, labels out.

    >>> from textpipe.sklearn import TextClassifier                             # doctest: +SKIP
    >>> clf = TextClassifier(epochs=5).fit(train_texts, train_labels)           # doctest: +SKIP
    >>> clf.predict(["Stocks fell as oil rose"]), clf.classes_                  # doctest: +SKIP
    (array(['Business'], dtype=object), array(['Business', 'Sci/Tech', 'Sports', 'World'], dtype=object))

It works where scikit-learn estimators do: `Pipeline`, `cross_val_score`, `GridSearchCV`, `clone`, pickle.

* `X`: a 1-D sequence of strings (list, tuple, 1-D numpy array, pandas Series); not a 2-D table (pick the text
  column: `df["text"]`). `y`: any hashable labels of one type (strings, ints, ...), at least two classes.
* `classes_` is sorted (numpy's order, as scikit-learn's), and `predict_proba`'s columns follow it.
* The hyperparameters are `textpipe train`'s (`textpipe.train.TrainConfig` fields, same names, same defaults).
  `fit` trains with `textpipe.train.fit` on the data in memory, in a temporary output directory that is
  removed afterwards; the fitted model and vocabulary live in the estimator (`model_`, `vocab_`), so a
  pickled estimator needs no files.
* Prediction runs on the CPU, `eval_batch_size` texts per forward pass.
* Quiet by default: `verbose=1` prints textpipe's per-epoch lines, `verbose=2` also its progress bars.
* `fit` leaves the caller's torch state as it was: the number of CPU threads (textpipe sets `threads`) and the
  global random generator (textpipe seeds it with `seed`).

scikit-learn is an optional dependency: `pip install "textpipe-classic[sklearn]"`. `import textpipe` never
imports this module.
"""
from __future__ import annotations

import contextlib
import dataclasses
import io
import os
import tempfile

import numpy as np

try:
    from sklearn.base import BaseEstimator, ClassifierMixin
    from sklearn.utils.multiclass import check_classification_targets
    from sklearn.utils.validation import check_is_fitted, column_or_1d
except ImportError as e:  # pragma: no cover - exercised in a subprocess by the tests
    raise ImportError('textpipe.sklearn needs scikit-learn, which is not installed here: '
                      'pip install "scikit-learn>=1.3" (or pip install "textpipe-classic[sklearn]")') from e

__all__ = ["TextClassifier"]

# textpipe.train.TrainConfig fields that are hyperparameters here (same names and defaults; a test checks that
# the defaults stay equal to TrainConfig's)
_CONFIG_PARAMS = ("tokenizer", "min_freq", "max_tokens", "embed_dim", "ngrams", "buckets", "minn", "maxn", "weighting",
                  "vectors",
                  "epochs", "batch_size", "lr", "optimizer", "schedule", "weight_decay", "class_weight",
                  "label_smoothing", "val_fraction", "patience", "seed", "eval_batch_size", "device", "threads",
                  "hogwild")


class TextClassifier(ClassifierMixin, BaseEstimator):
    """textpipe's fastText-style text classifier as a scikit-learn estimator (see the module docstring).

    Parameters (`textpipe train`'s flags; see `textpipe.train.TrainConfig` for each):
        tokenizer: "basic_english" | "split" | a registered tokenizer name.
        min_freq, max_tokens: vocabulary of the training portion: tokens seen at least `min_freq` times, at
            most `max_tokens` entries (specials included; None = no cap).
        embed_dim, ngrams, buckets: the model: embedding size, 1 = words / 2 = words + hashed bigrams, bigram
            hash buckets.
        vectors: pretrained word vectors file for the token embeddings (needs `embed_dim` = their size).
        minn, maxn: character n-grams of each word (fastText's -minn/-maxn; 0, 0 = none).
        weighting: "nb" = each text's vector is its rows' mean weighted by naive Bayes log-count ratios of the
            training texts (Wang & Manning 2012), "mean" = the plain mean.
        epochs, batch_size, lr, optimizer, schedule, weight_decay, class_weight, label_smoothing: optimisation.
        val_fraction, patience: hold out this share of the training data for validation (the best epoch's
            weights are kept) and stop after `patience` epochs without a better validation accuracy.
        seed: initial weights, validation carve-out and batch order; a fit is deterministic for a seed
            (with `hogwild=1`).
        eval_batch_size: texts per forward pass (validation while training, and predict).
        device: where to train: "auto" | "cpu" | "cuda" | "cuda:N" (prediction runs on the CPU).
        threads, hogwild: torch CPU threads while training; fastText-style lock-free training threads.
        verbose: 0 = silent, 1 = textpipe's per-epoch lines, 2 = also progress bars.

    Attributes (after `fit`):
        classes_: the sorted class labels; `predict_proba`'s column order.
        model_: the trained `textpipe.TextClassifier` (torch module on the CPU, eval mode); its output k is
            `classes_[k]`.
        vocab_: the `textpipe.Vocab` (with its tokenizer) the texts are encoded with.
        summary_: what `textpipe.train.fit` returned (steps, per-epoch record, validation accuracy, ...).
    """

    def __init__(self, *, tokenizer="basic_english", min_freq=1, max_tokens=None, embed_dim=10, ngrams=2,
                 buckets=2**18, minn=0, maxn=0, weighting="nb", vectors=None, epochs=8, batch_size=256, lr=8.0,
                 optimizer="sgd", schedule="linear", weight_decay=0.0, class_weight="auto", label_smoothing=0.0, val_fraction=0.0,
                 patience=0, seed=0, eval_batch_size=512, device="auto", threads=1, hogwild=1, verbose=0):
        self.tokenizer = tokenizer
        self.min_freq = min_freq
        self.max_tokens = max_tokens
        self.embed_dim = embed_dim
        self.ngrams = ngrams
        self.buckets = buckets
        self.minn = minn
        self.maxn = maxn
        self.weighting = weighting
        self.vectors = vectors
        self.epochs = epochs
        self.batch_size = batch_size
        self.lr = lr
        self.optimizer = optimizer
        self.schedule = schedule
        self.weight_decay = weight_decay
        self.class_weight = class_weight
        self.label_smoothing = label_smoothing
        self.val_fraction = val_fraction
        self.patience = patience
        self.seed = seed
        self.eval_batch_size = eval_batch_size
        self.device = device
        self.threads = threads
        self.hogwild = hogwild
        self.verbose = verbose

    # -- scikit-learn tags: text input (as CountVectorizer's), not a numeric 2-D array --------------------------
    def __sklearn_tags__(self):  # scikit-learn >= 1.6
        tags = super().__sklearn_tags__()
        tags.input_tags.string = True
        tags.input_tags.two_d_array = False
        return tags

    def _more_tags(self):  # scikit-learn < 1.6
        return {"X_types": ["string"]}

    # -- fit -------------------------------------------------------------------------------------------------
    def fit(self, X, y):
        """Train on texts `X` with labels `y`; returns self.

        Raises:
            TypeError: X is not a 1-D sequence of strings (a single str, a 2-D table, a non-str item).
            ValueError: X and y of different lengths, no samples, fewer than two classes, continuous y,
                or a hyperparameter textpipe cannot train with (its message names the field).
        """
        import torch
        from datasets import Dataset

        from textpipe import load_model
        from textpipe.train import TrainConfig, fit

        texts = _check_texts(X, "X")
        y = _check_y(y, len(texts))
        classes, codes = np.unique(y, return_inverse=True)
        if len(classes) < 2:
            raise ValueError(f"y holds one class only ({classes.tolist()[0]!r}): a classifier needs samples of at "
                             "least 2 classes")
        # labels 0..K-1 in classes_ order; textpipe maps them to its own class ids, read back below
        data = Dataset.from_dict({"text": texts, "label": codes.astype(np.int64).tolist()})
        quiet = contextlib.redirect_stdout(io.StringIO()) if self.verbose < 1 else contextlib.nullcontext()
        threads = torch.get_num_threads()
        try:
            with tempfile.TemporaryDirectory(prefix="textpipe-sklearn-") as tmp, quiet, \
                    torch.random.fork_rng(devices=[]):
                config = TrainConfig(train=data, output_dir=os.path.join(tmp, "run"), checkpoints="end",
                                     progress=self.verbose >= 2, **{k: getattr(self, k) for k in _CONFIG_PARAMS})
                summary = fit(config)
                model, vocab, _ = load_model(summary["checkpoint"], map_location="cpu")
        finally:
            torch.set_num_threads(threads)
        # textpipe's class j is the label code int(summary["classes"][j]): reorder the output layer so that
        # output k is classes_[k]
        order = np.empty(len(classes), dtype=np.int64)
        order[[int(name) for name in summary["classes"]]] = np.arange(len(classes))
        with torch.no_grad():
            model.fc.weight.copy_(model.fc.weight[torch.from_numpy(order)])
            model.fc.bias.copy_(model.fc.bias[torch.from_numpy(order)])
        summary.pop("checkpoint", None)  # in the removed temporary directory
        self.classes_ = classes
        self.model_ = model.eval()
        self.vocab_ = vocab
        self.summary_ = summary
        return self

    # -- predict ---------------------------------------------------------------------------------------------
    def predict_proba(self, X) -> np.ndarray:
        """Class probabilities, shape (len(X), len(classes_)), columns in `classes_` order (float64)."""
        import torch

        check_is_fitted(self)
        texts = _check_texts(X, "X", allow_empty=True)
        batch = max(int(self.eval_batch_size), 1)
        out = np.empty((len(texts), len(self.classes_)), dtype=np.float64)
        with torch.inference_mode():
            for start in range(0, len(texts), batch):
                ids, offsets = self.vocab_.encode_flat(texts[start:start + batch])  # flat ids, offsets (B+1,)
                # forward() is fc(pool(*bags(...))); the output layer in float64: float32 matrix products
                # round differently with a row's place in the batch (~1e-7), and a text's probabilities must
                # not depend on the texts beside it (scikit-learn's sample order/subset invariance checks)
                bags = self.model_.pool(*self.model_.bags(torch.from_numpy(ids), torch.from_numpy(offsets[:-1])))
                fc = self.model_.fc
                logits = torch.nn.functional.linear(bags.double(), fc.weight.double(), fc.bias.double())
                out[start:start + len(offsets) - 1] = logits.softmax(-1).numpy()
        return out

    def predict_log_proba(self, X) -> np.ndarray:
        """Log of `predict_proba`."""
        with np.errstate(divide="ignore"):
            return np.log(self.predict_proba(X))

    def predict(self, X) -> np.ndarray:
        """The most probable class of each text (values of `classes_`)."""
        proba = self.predict_proba(X)  # first: NotFittedError before fit
        return self.classes_[proba.argmax(axis=1)]

    # -- pickle: plain data, not textpipe objects (a pickle does not depend on textpipe's module layout) -------
    def __getstate__(self):
        state = super().__getstate__() if hasattr(super(), "__getstate__") else self.__dict__.copy()
        state = dict(state)
        model, vocab = state.pop("model_", None), state.pop("vocab_", None)
        if model is not None:
            state["_textpipe_model"] = {"config": dataclasses.asdict(model.config),
                                        "weights": {k: v.detach().cpu() for k, v in model.state_dict().items()}}
        if vocab is not None:
            state["_textpipe_vocab"] = {"itos": list(vocab.get_itos()), "default_index": vocab.get_default_index(),
                                        "tokenizer": vocab.tokenizer_name}
        return state

    def __setstate__(self, state):
        state = dict(state)
        model, vocab = state.pop("_textpipe_model", None), state.pop("_textpipe_vocab", None)
        if hasattr(super(), "__setstate__"):
            super().__setstate__(state)
        else:  # pragma: no cover - BaseEstimator has defined it since scikit-learn 0.x
            self.__dict__.update(state)
        if model is not None:
            from textpipe import ModelConfig
            from textpipe import TextClassifier as Model

            m = Model(ModelConfig(**model["config"]))
            m.load_state_dict(model["weights"])
            if vocab is not None:
                m.set_vocab(vocab["itos"])
            self.model_ = m.eval()
        if vocab is not None:
            from textpipe import Vocab

            self.vocab_ = Vocab(vocab["itos"], default_index=vocab["default_index"], tokenizer=vocab["tokenizer"])


# -- input checks ----------------------------------------------------------------------------------------------
def _check_texts(X, name: str, *, allow_empty: bool = False) -> list[str]:
    """X as a list of str, or a TypeError/ValueError that says what to pass."""
    if isinstance(X, (str, bytes)):
        raise TypeError(f"{name} must be a sequence of texts, got a single {type(X).__name__}; wrap it in a list")
    if hasattr(X, "tocsr") and hasattr(X, "nnz"):  # a scipy sparse matrix/array (features, not texts)
        raise TypeError(f"{name} is a sparse matrix: sparse input is not supported; TextClassifier takes the raw "
                        "texts (a 1-D sequence of strings) and builds its own features")
    shape = getattr(X, "shape", None)
    if shape is not None and len(shape) != 1:
        cols = getattr(X, "columns", None)
        hint = (f"pick the text column, e.g. X[{list(cols)[0]!r}]" if cols is not None and len(cols)
                else "pass a 1-D sequence, e.g. X[:, 0] or X.ravel() for one column")
        raise TypeError(f"{name} must be a 1-D sequence of strings (list, 1-D array, pandas Series), got an array "
                        f"of shape {tuple(shape)}; {hint}")
    if hasattr(X, "tolist"):
        texts = X.tolist()
    else:
        try:
            texts = list(X)
        except TypeError:
            raise TypeError(f"{name} must be a sequence of strings, got {type(X).__name__}") from None
    bad = next((i for i, t in enumerate(texts) if not isinstance(t, str)), None)
    if bad is not None:
        raise TypeError(f"{name} must hold strings (one text per sample), but {name}[{bad}] is "
                        f"{type(texts[bad]).__name__} {texts[bad]!r}; convert or drop the non-text items "
                        "(e.g. missing values)")
    if not texts and not allow_empty:
        raise ValueError(f"{name} holds 0 samples: fit needs at least 2 texts of 2 classes")
    return texts


def _check_y(y, n: int) -> np.ndarray:
    if y is None:
        # (the wording scikit-learn's estimator checks look for)
        raise ValueError("TextClassifier requires y to be passed, but the target y is None: fit(X, y) with one "
                         "label per text")
    y = column_or_1d(y, warn=True)  # a (n, 1) column: DataConversionWarning, then flattened
    if len(y) != n:
        raise ValueError(f"X and y have different lengths: {n} texts and {len(y)} labels; give one label per text")
    check_classification_targets(y)  # continuous or NaN y: ValueError
    return y
