"""The data half of training: read the splits, map labels to class ids, carve out validation, build the
vocabulary from the training portion and encode everything once.

`prepare_data(config)` is what `fit` runs first; a hyperparameter search can run it once and pass the result
to every `fit(config, data=...)` whose data settings (`DATA_KEYS`) are the same:

    >>> data = prepare_data(TrainConfig(data_dir="../shared/data/ag_news"))  # doctest: +SKIP
    >>> data.sizes, data.labels.names                                       # doctest: +SKIP
    ({'train': 5600, 'val': 0, 'test': 2000}, ['World', 'Sports', 'Business', 'Sci/Tech'])
"""
from __future__ import annotations

from dataclasses import dataclass, field

import numpy as np

from textpipe.checkpoint.format import data_info
from textpipe.corpus.encoded import EncodedCorpus
from textpipe.corpus.cache import STREAM_MIN_BYTES, cached_corpus
from textpipe.core.distributed import print0
from textpipe.core.specials import SPECIALS, UNK_IDX
from textpipe.data.download import default_cache_dir
from textpipe.data.formats import FILE_FORMATS
from textpipe.data.labels import LabelVocab
from textpipe.data.sources import Source, load_classes, make_label_vocab, read_source, resolve_sources
from textpipe.text.subword import model_itos, tokenizer_state, unk_index
from textpipe.text.tokenizer import get_tokenizer
from textpipe.text.build import build_vocab_from_texts
from textpipe.text.vocabulary import Vocab
from textpipe.train.config import data_tokenizer, is_hf_model

# The config fields the prepared data depends on (the seed picks the validation carve-out).
DATA_KEYS = ("data_dir", "train", "val", "test", "text_columns", "label_column", "classes", "tokenizer",
             "min_freq", "max_tokens", "val_fraction", "seed", "on_bad_rows", "format", "quoting")


@dataclass
class Data:
    """Everything training needs from the data, encoded; see `prepare_data`."""

    vocab: object  # textpipe.Vocab of the training portion (tokenizer included)
    labels: LabelVocab  # raw label <-> class id, and the class names
    train: object  # EncodedCorpus of the training portion
    val: object | None  # EncodedCorpus of the validation data, or None
    test: list | None  # (class id, text) rows to test the best model on, or None
    sizes: dict  # rows per split
    sources: dict  # split -> Source (files, for summary.json)
    columns: dict  # text_columns / label_column as given (stored in checkpoints; None = reader defaults)
    key: dict = field(default_factory=dict)  # the DATA_KEYS values it was prepared with

    def checkpoint_info(self) -> dict:
        """The `data=` of `save_checkpoint`: how to read and label more data like this (a Hugging Face
        tokenizer travels inside: `tokenizer_state`, so the checkpoint needs no tokenizer file)."""
        state = tokenizer_state(self.vocab.tokenizer)
        return {**self.columns, "label_values": list(self.labels.values),
                "tokenizer": self.vocab.tokenizer_name or "basic_english",
                "rows": dict(self.sizes), **({"tokenizer_state": state} if state else {})}


def data_key(cfg) -> dict:
    """The DATA_KEYS of a config, comparable (datasets objects by identity; an hf: model's tokenizer is its own)."""
    return {k: (v if v is None or isinstance(v, (str, int, float, bool, list, tuple)) else id(v))
            for k, v in ((k, data_tokenizer(cfg) if k == "tokenizer" else getattr(cfg, k)) for k in DATA_KEYS)}


def resolve(cfg) -> tuple[dict[str, Source | None], list[str] | None]:
    """The sources of each split and the `--classes` list, checked without reading the data (fast)."""
    get_tokenizer(data_tokenizer(cfg))  # an unknown name (or hf: file) is a ValueError before any slow work
    sources = resolve_sources(data_dir=cfg.data_dir, train=cfg.train, val=cfg.val, test=cfg.test,
                              text_columns=cfg.text_columns, label_column=cfg.label_column,
                              format=getattr(cfg, "format", None), quoting=getattr(cfg, "quoting", None))
    if sources["val"] is not None and cfg.val_fraction > 0:
        raise ValueError(f"validation data given ({sources['val'].describe()}) and --val-fraction "
                         f"{cfg.val_fraction}: use one of them (--val-fraction 0 to use the file)")
    return sources, load_classes(cfg.classes, cfg.data_dir if not sources["train"].ag_news else None)


def prepare_data(cfg, *, sources=None, classes=None, ckpt: dict | None = None) -> Data:
    """Read, split, build the vocabulary (or take the checkpoint's) and encode; see the module docstring.

    Args:
        cfg: a TrainConfig (its DATA_KEYS fields are used).
        sources, classes: what `resolve(cfg)` returned (resolved here if None).
        ckpt: a checkpoint to resume: its vocabulary and label classes are used, not rebuilt.

    Raises:
        ValueError: malformed rows, a val/test label unseen in training (naming it and its row), fewer than
            two classes, labels that do not match the checkpoint's.
    """
    if sources is None:
        sources, classes = resolve(cfg)
    # one training file on disk: streamed into the memory-mapped cache; anything else: read into memory
    vocab, labels, train, val = (train_from_cache(cfg, sources, classes, ckpt)
                                 or train_in_memory(cfg, sources, classes, ckpt))

    def read(split):
        s = sources[split]
        return read_source(s, split=split, on_bad_rows=cfg.on_bad_rows, progress=cfg.progress)

    if val is None and sources["val"] is not None:
        val_labels, val_texts = read("val")
        val = EncodedCorpus.from_texts(val_texts, labels.encode(val_labels, source=sources["val"].describe()),
                                       vocab)
    test = None
    if sources["test"] is not None:
        test_labels, test_texts = read("test")
        test = list(zip(labels.encode(test_labels, source=sources["test"].describe()).tolist(), test_texts))
    # as given (None = the reader's defaults), so that a test file in another layout still reads by default
    columns = {"text_columns": cfg.text_columns, "label_column": cfg.label_column,
               "format": getattr(cfg, "format", None), "quoting": getattr(cfg, "quoting", None)}
    sizes = {"train": len(train), "val": 0 if val is None else len(val), "test": 0 if test is None else len(test)}
    return Data(vocab, labels, train, val, test, sizes, sources, columns, data_key(cfg))


def train_in_memory(cfg, sources: dict, classes, ckpt: dict | None):
    """`(vocab, labels, train corpus, validation carve-out or None)`, the training data read into memory."""
    train_labels, train_texts = read_source(sources["train"], split="train", on_bad_rows=cfg.on_bad_rows,
                                            progress=cfg.progress)
    if ckpt is not None:  # the run being resumed fixed the classes and the vocabulary
        info = ckpt.get("data") or {}
        values = info.get("label_values") or list(range(1, ckpt["model_config"]["num_classes"] + 1))
        labels = LabelVocab(values, names=ckpt.get("class_names") or [str(v) for v in values])
    else:
        labels = make_label_vocab(sources["train"], train_labels, classes=classes)
    train_ids = labels.encode(train_labels, source=sources["train"].describe())
    del train_labels
    # The validation carve-out comes from train, with its own seed-fixed permutation.
    perm = np.random.default_rng(cfg.seed).permutation(len(train_texts))
    n_val = int(round(len(train_texts) * cfg.val_fraction))
    fit_idx, val_idx = np.sort(perm[n_val:]), perm[:n_val]
    fit_texts = [train_texts[i] for i in fit_idx]
    if ckpt is not None:
        vocab = Vocab(ckpt["vocab_itos"], default_index=ckpt["vocab_default_index"],
                      tokenizer=data_info(ckpt)["tokenizer"])
    elif is_hf_model(cfg):  # the model reads its own tokenizer's ids: that tokenizer's vocabulary, all of it
        fn = get_tokenizer(data_tokenizer(cfg))
        vocab = Vocab(model_itos(fn), default_index=unk_index(fn), tokenizer=data_tokenizer(cfg))
    else:  # subtle: built from the training portion only, so validation and test words stay unseen
        chunks = (fit_texts[i:i + 8192] for i in range(0, len(fit_texts), 8192))
        vocab = build_vocab_from_texts(chunks, tokenizer=cfg.tokenizer, min_freq=cfg.min_freq, specials=SPECIALS,
                                       max_tokens=cfg.max_tokens)
        vocab.set_default_index(UNK_IDX)
    # 2 threads, as the corpus cache's build: 1.3x faster on 2 cores (README, tokenize_encode.py)
    train = EncodedCorpus.from_texts(fit_texts, train_ids[fit_idx], vocab, num_workers=2)
    val = EncodedCorpus.from_texts([train_texts[i] for i in val_idx], train_ids[val_idx], vocab) if n_val else None
    return vocab, labels, train, val


# deflate inflates at most ~1032:1, so a .gz this much smaller than the threshold cannot hold more
_DEFLATE_MAX_RATIO = 1032


def inflated_size_at_least(path, limit: int) -> bool:
    """Whether the data in `path` may be `limit` bytes or more once decompressed: the streaming decision looks
    at what will be read, not at the file (a 9 MB .gz can inflate to 3 GiB; its header cannot be trusted to say,
    so any .gz that could reach `limit` counts as large)."""
    size = path.stat().st_size
    if path.name.lower().endswith(".gz"):
        return size * _DEFLATE_MAX_RATIO >= limit
    return size >= limit


def train_from_cache(cfg, sources: dict, classes, ckpt: dict | None):
    """`train_in_memory`'s result from the corpus cache (`textpipe.corpus.cache`: memory-mapped corpora), or
    None where the in-memory path applies (`--no-cache`; `--cache` unset and a file smaller than
    `STREAM_MIN_BYTES` once decompressed, see `inflated_size_at_least`; training data that is not one table file on disk: the AG_NEWS download, a datasets
    object or directory)."""
    train = sources["train"]
    if is_hf_model(cfg):  # the cache builds a counted vocabulary; an hf: model brings its own
        return None
    if train.path is None or not train.path.is_file() or train.spec is None:
        return None
    use = getattr(cfg, "cache", None)
    if not (use if use is not None else inflated_size_at_least(train.path, STREAM_MIN_BYTES)):
        return None
    if train.spec.format not in FILE_FORMATS:
        return None
    cached = cached_corpus(train.path, cache_dir=getattr(cfg, "cache_dir", None) or default_cache_dir() / "corpora",
                           min_freq=cfg.min_freq, max_tokens=cfg.max_tokens, tokenizer=cfg.tokenizer,
                           val_fraction=cfg.val_fraction, seed=cfg.seed, column_args=train.spec.column_args(),
                           on_bad_rows=cfg.on_bad_rows, label_key={"classes": classes, "ag_news": train.ag_news},
                           make_labels=lambda distinct: make_label_vocab(train, distinct, classes=classes),
                           use_cache=not getattr(cfg, "rebuild_cache", False), announce=print0)
    if ckpt is not None:
        saved = (ckpt.get("data") or {}).get("label_values")
        if saved is not None and list(saved) != list(cached.labels.values):
            raise ValueError(f"--resume: the labels of {train.describe()} ({cached.labels.values}) are not the "
                             f"checkpoint's ({saved}); resume with the data the checkpoint was trained on")
    return cached.vocab, cached.labels, cached.fit, cached.val
