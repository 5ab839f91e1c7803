"""The vocabulary with a named tokenizer, as train/evaluate/predict use it, whichever `Vocab` is installed.

TODO(lead): once `Vocab(itos, *, default_index, tokenizer=...)` and `build_vocab_from_texts` (issue 8 part 2)
are on main, delete the `_HAS_TOKENIZER` fallbacks below, so that `make_vocab` is `Vocab(...)`,
`build_vocab` is `build_vocab_from_texts(...)` and `encode_flat` is `vocab.encode_flat(texts)`; then
call those directly from train.py (`load_data`), evaluate.py (`evaluate`) and predict.py (`predict`).
Until then a non-basic_english tokenizer runs through `get_tokenizer(name)` here (slower, same ids).
"""
from __future__ import annotations

import inspect
from collections.abc import Iterable, Sequence

import numpy as np

from textpipe.tokenizer import basic_english_batch, get_tokenizer
from textpipe.vocab import Vocab, build_vocab_from_iterator

_HAS_TOKENIZER = "tokenizer" in inspect.signature(Vocab.__init__).parameters
SPECIALS = ("<pad>", "<unk>")


def check_tokenizer(name: str) -> None:
    """Raise ValueError for an unknown tokenizer name (before any slow work)."""
    get_tokenizer(name)


def make_vocab(itos: Sequence[str], *, default_index: int | None, tokenizer: str) -> Vocab:
    """A `Vocab` of `itos` that encodes with `tokenizer`."""
    if _HAS_TOKENIZER:
        return Vocab(itos, default_index=default_index, tokenizer=tokenizer)
    vocab = Vocab(itos, default_index=default_index)
    vocab._textpipe_tokenizer = tokenizer  # noqa: SLF001 - read back by encode_flat below
    return vocab


def tokenizer_of(vocab: Vocab) -> str:
    """The name of the tokenizer `vocab` encodes with."""
    if _HAS_TOKENIZER:
        return vocab.tokenizer_name or "basic_english"
    return getattr(vocab, "_textpipe_tokenizer", "basic_english")


def build_vocab(texts: Iterable[str], *, tokenizer: str, min_freq: int, max_tokens: int | None,
                unk_idx: int = 1) -> Vocab:
    """The vocabulary of `texts` (specials `<pad>`, `<unk>` first; `<unk>` is the default index)."""
    texts = list(texts)
    if _HAS_TOKENIZER:
        from textpipe.vocab import build_vocab_from_texts

        vocab = build_vocab_from_texts([texts], tokenizer=tokenizer, min_freq=min_freq, specials=SPECIALS,
                                       max_tokens=max_tokens)
    else:
        fn = get_tokenizer(tokenizer)
        tokens = basic_english_batch(texts) if tokenizer == "basic_english" else (fn(t) for t in texts)
        vocab = build_vocab_from_iterator(tokens, min_freq=min_freq, specials=list(SPECIALS), max_tokens=max_tokens)
    vocab.set_default_index(unk_idx)
    return make_vocab(vocab.get_itos(), default_index=unk_idx, tokenizer=tokenizer)


def encode_flat(vocab: Vocab, texts: Sequence[str]) -> tuple[np.ndarray, np.ndarray]:
    """`(ids, offsets)` of `texts` with the vocabulary's own tokenizer."""
    name = tokenizer_of(vocab)
    if _HAS_TOKENIZER or name == "basic_english":
        return vocab.encode_flat(list(texts))
    fn = get_tokenizer(name)
    rows = [vocab.lookup_indices(fn(t)) for t in texts]
    offsets = np.zeros(len(rows) + 1, dtype=np.int64)
    np.cumsum([len(r) for r in rows], out=offsets[1:])
    ids = np.fromiter((i for r in rows for i in r), dtype=np.int64, count=int(offsets[-1]))
    return ids, offsets


def encode_corpus(texts: Sequence[str], labels, vocab: Vocab):
    """An `EncodedCorpus` of `texts` and class ids `labels`."""
    from textpipe.corpus import EncodedCorpus

    ids, offsets = encode_flat(vocab, texts)
    return EncodedCorpus(ids, offsets, np.asarray(labels, dtype=np.int64))
