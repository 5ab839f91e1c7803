"""Datasets: files, download, cache and parsing. Knows nothing about models.

As in ``torchtext.data``, the text utilities are also importable from here (lazily):
``from textpipe.data import get_tokenizer, to_map_style_dataset``; and, as torchtext's ``data/__init__.py``
imported its submodules, ``textpipe.data.utils`` / ``textpipe.data.functional`` work after a bare
``import textpipe`` (each submodule is imported on first access).
"""
from importlib import import_module

_EXPORTS = {
    "get_tokenizer": "utils", "ngrams_iterator": "utils", "interleave_keys": "utils",
    "to_map_style_dataset": "functional", "simple_space_split": "functional", "custom_replace": "functional",
    "numericalize_tokens_from_iterator": "functional", "generate_sp_model": "functional", "load_sp_model": "functional",
    "sentencepiece_numericalizer": "functional", "sentencepiece_tokenizer": "functional",
}


_SUBMODULES = ("utils", "functional")  # what torchtext.data imported eagerly, in textpipe's scope


def __getattr__(name: str):
    if name in _SUBMODULES:
        return import_module(f"textpipe.data.{name}")  # the import binds it: __getattr__ runs once per name
    module = _EXPORTS.get(name)
    if module is None:
        raise AttributeError(f"module 'textpipe.data' has no attribute {name!r}")
    return getattr(import_module(f"textpipe.data.{module}"), name)
