"""torchtext's `torchtext.vocab` layout over `textpipe.text` (and `textpipe.vectors`), so that a script ported
with `sed s/torchtext/textpipe/g` runs unchanged. The vectors import torch, so they load on first use."""
from textpipe.text import (DuplicateTokenError, IdOutOfRangeError, MaxTokensError, TokenNotFoundError, Vocab,
                           build_vocab_from_iterator, build_vocab_from_texts, vocab)

__all__ = ["Vocab", "vocab", "build_vocab_from_iterator", "build_vocab_from_texts", "TokenNotFoundError",
           "IdOutOfRangeError", "DuplicateTokenError", "MaxTokensError", "Vectors", "GloVe", "FastText",
           "pretrained_aliases"]
__test__ = {fn.__name__: fn for fn in (vocab, build_vocab_from_iterator, build_vocab_from_texts)}  # doctests


def __getattr__(name: str):
    if name in ("Vectors", "GloVe", "FastText", "pretrained_aliases"):
        from textpipe import vectors
        return getattr(vectors, name)
    raise AttributeError(f"module 'textpipe.vocab' has no attribute {name!r}")
