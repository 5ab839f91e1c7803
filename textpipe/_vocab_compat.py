"""The vocabulary with a named tokenizer, as train/evaluate/predict use it (thin helpers over `textpipe.vocab`).

`Vocab(itos, default_index=, tokenizer=)` remembers its tokenizer, `build_vocab_from_texts` counts texts
streamed, and `vocab.encode_flat` encodes with the vocabulary's own tokenizer. The helpers here only add the
training conventions: specials `<pad>`, `<unk>` first, `<unk>` the default index.
"""
from __future__ import annotations

from collections.abc import Iterable, Sequence

import numpy as np

from textpipe.tokenizer import get_tokenizer
from textpipe.vocab import Vocab, build_vocab_from_texts

SPECIALS = ("<pad>", "<unk>")


def check_tokenizer(name: str) -> None:
    """Raise ValueError for an unknown tokenizer name (before any slow work)."""
    get_tokenizer(name)


def make_vocab(itos: Sequence[str], *, default_index: int | None, tokenizer: str) -> Vocab:
    """A `Vocab` of `itos` that encodes with `tokenizer`."""
    return Vocab(itos, default_index=default_index, tokenizer=tokenizer)


def tokenizer_of(vocab: Vocab) -> str:
    """The name of the tokenizer `vocab` encodes with."""
    return vocab.tokenizer_name or "basic_english"


def build_vocab(texts: Iterable[str], *, tokenizer: str, min_freq: int, max_tokens: int | None,
                unk_idx: int = 1, chunk: int = 8192) -> Vocab:
    """The vocabulary of `texts` (specials `<pad>`, `<unk>` first; `<unk>` is the default index)."""
    texts = list(texts)
    chunks = (texts[i:i + chunk] for i in range(0, len(texts), chunk))
    vocab = build_vocab_from_texts(chunks, tokenizer=tokenizer, min_freq=min_freq, specials=SPECIALS,
                                   max_tokens=max_tokens)
    vocab.set_default_index(unk_idx)
    return vocab


def encode_flat(vocab: Vocab, texts: Sequence[str]) -> tuple[np.ndarray, np.ndarray]:
    """`(ids, offsets)` of `texts` with the vocabulary's own tokenizer."""
    return vocab.encode_flat(list(texts))


def encode_corpus(texts: Sequence[str], labels, vocab: Vocab):
    """An `EncodedCorpus` of `texts` and class ids `labels`."""
    from textpipe.corpus import EncodedCorpus

    ids, offsets = encode_flat(vocab, texts)
    return EncodedCorpus(ids, offsets, np.asarray(labels, dtype=np.int64))
