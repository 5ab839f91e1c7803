"""textpipe: the classic text-classification pipeline on modern PyTorch (a torchtext successor).

    >>> from textpipe import get_tokenizer, build_vocab_from_iterator
    >>> tok = get_tokenizer("basic_english")
    >>> v = build_vocab_from_iterator([tok("Hello, world!")], specials=["<unk>"])
    >>> v.set_default_index(v["<unk>"])
    >>> v.encode("Hello there!")
    [3, 0, 1]

Names are imported lazily (PEP 562), so `import textpipe` is cheap and has no side effects, and the
tokenizer and vocabulary stay usable without importing torch. The command-line modules (`train`,
`evaluate`, `predict`) and `distributed` are never imported from here.
As torchtext 0.12-0.17 imported them in `__init__`, the torchtext-layout submodules are attributes,
imported on first access: `import textpipe; textpipe.datasets.AG_NEWS` works.
"""
from importlib import import_module

__version__ = "0.1.0"

# public name -> module that defines it
_EXPORTS = {
    "basic_english": "text", "basic_english_batch": "text", "get_tokenizer": "text",
    # (torchtext's `vocab(...)` function lives at `textpipe.vocab.vocab`, as `torchtext.vocab.vocab` did)
    "Vocab": "text", "build_vocab_from_iterator": "text",
    "TokenNotFoundError": "text", "IdOutOfRangeError": "text",
    "load_ag_news": "data.ag_news", "read_ag_news_csv": "data.ag_news", "AG_NEWS_CLASSES": "data.ag_news",
    "EncodedCorpus": "corpus",
    "pad_collate": "batches", "offsets_collate": "batches", "TextCollate": "batches",
    "BucketBatchSampler": "batches",
    "make_dataloader": "batches",
    "ModelConfig": "models", "TextClassifier": "models", "build_model": "models",
    "save_checkpoint": "checkpoint", "load_checkpoint": "checkpoint", "load_model": "checkpoint",
    "Vectors": "vectors", "GloVe": "vectors", "FastText": "vectors", "init_embedding_from_vectors": "vectors",
}
_SUBMODULES = ("data", "datasets", "functional", "transforms", "utils", "vocab")  # torchtext's layout
__all__ = ["__version__", "disable_textpipe_deprecation_warning", "disable_torchtext_deprecation_warning",
           *_EXPORTS]


def disable_textpipe_deprecation_warning() -> None:
    """Does nothing: textpipe is not deprecated. What ``sed s/torchtext/textpipe/`` makes of torchtext 0.18's
    ``torchtext.disable_torchtext_deprecation_warning()``, kept so that a migrated script runs."""


disable_torchtext_deprecation_warning = disable_textpipe_deprecation_warning  # the unreplaced name works too


def __getattr__(name: str):
    if name in _SUBMODULES:
        return import_module(f"textpipe.{name}")  # the import binds it here: __getattr__ runs once per name
    module = _EXPORTS.get(name)
    if module is None:
        hint = "; torchtext.nn is not provided: use torch.nn.MultiheadAttention" if name == "nn" else ""
        raise AttributeError(f"module 'textpipe' has no attribute {name!r}{hint}")
    value = getattr(import_module(f"textpipe.{module}"), name)
    globals()[name] = value  # cache: the next lookup is a plain attribute
    return value


def __dir__() -> list[str]:
    return sorted({*__all__, *_SUBMODULES})
