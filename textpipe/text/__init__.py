"""Text -> tokens -> ids: tokenizers (`basic_english` as torchtext 0.18, `split`, your own), `Vocab` and its
builders. No torch.

    >>> from textpipe.text import build_vocab_from_iterator, get_tokenizer
    >>> tok = get_tokenizer("basic_english")
    >>> v = build_vocab_from_iterator([tok("Hello, world!")], specials=["<unk>"])
    >>> v.set_default_index(v["<unk>"]); v.encode("hello there")
    [3, 0]
"""
from textpipe.text.build import build_vocab_from_iterator, build_vocab_from_texts, vocab
from textpipe.text.errors import DuplicateTokenError, IdOutOfRangeError, MaxTokensError, TokenNotFoundError
from textpipe.text.tokenizer import basic_english, basic_english_batch, get_tokenizer, register_tokenizer
from textpipe.text.vocabulary import Vocab

__all__ = ["basic_english", "basic_english_batch", "get_tokenizer", "register_tokenizer", "Vocab", "vocab",
           "build_vocab_from_iterator", "build_vocab_from_texts", "TokenNotFoundError", "IdOutOfRangeError",
           "DuplicateTokenError", "MaxTokensError"]
