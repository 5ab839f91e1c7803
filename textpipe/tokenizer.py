"""`textpipe.tokenizer`, as earlier releases and their README had it: the tokenizers of `textpipe.text`."""
from textpipe.text.tokenizer import basic_english, basic_english_batch, get_tokenizer, register_tokenizer

__all__ = ["basic_english", "basic_english_batch", "get_tokenizer", "register_tokenizer"]
