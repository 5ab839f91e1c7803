"""Datasets: files, download, cache and parsing. Knows nothing about models.

As in ``torchtext.data``, the text utilities are also importable from here (lazily):
``from textpipe.data import get_tokenizer, to_map_style_dataset``.
"""
from importlib import import_module

_EXPORTS = {
    "get_tokenizer": "utils", "ngrams_iterator": "utils", "interleave_keys": "utils",
    "to_map_style_dataset": "functional", "simple_space_split": "functional", "custom_replace": "functional",
    "numericalize_tokens_from_iterator": "functional",
}


def __getattr__(name: str):
    module = _EXPORTS.get(name)
    if module is None:
        raise AttributeError(f"module 'textpipe.data' has no attribute {name!r}")
    return getattr(import_module(f"textpipe.data.{module}"), name)
