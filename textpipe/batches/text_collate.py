"""``TextCollate``: the tutorial's from-text collate (tokenize + encode + pad inside the collate), batched.

For raw ``(label, text)`` pairs, e.g. a corpus that is not pre-encoded. The batch is tokenized and looked
up as a whole by the vocabulary itself (``Vocab.encode_flat``: the byte rules of ``basic_english`` and
``split`` in numpy, an exact byte-key table the vocabulary owns, bounded chunks for huge texts), then
padded by the vectorized core. Pre-encoding with ``EncodedCorpus`` is faster still (see
``benchmarks/collate_throughput.py``).

Run the tests: python3 -m pytest -q tests/test_collate.py
"""
from __future__ import annotations

from collections.abc import Callable, Sequence
from itertools import chain

import numpy as np
import torch

from textpipe.batches.collate import CorpusBatch, check_label, offsets_collate, pad_collate
from textpipe.text.tokenizer import check_tokens

__all__ = ["TextCollate"]

_I64 = np.dtype(np.int64)


class TextCollate:
    """Picklable collate for raw ``(label, text)`` pairs: tokenize and encode the whole batch at once.

    This is the torchtext tutorial's path (text in, tensors out) without its per-sample loop: the batch
    goes to ``vocab.encode_flat`` in one call (for ``basic_english`` and ``split`` no Python string per
    token; the lookup tables are the vocabulary's own, rebuilt only when its tokens change), and the ids
    are padded by the vectorized core. Memory stays linear in the batch's text, however long one text is.

    Args:
        vocab: A ``textpipe.Vocab``. Its tokenizer is used; out-of-vocabulary tokens get its default
            index; with none set, the vocabulary's own error is raised.
        tokenizer: ``None`` (the default) for the vocabulary's tokenizer, or a callable ``str -> list[str]``
            that overrides it (text by text; must be picklable, i.e. a module-level function, for worker
            processes).
        form: ``"pad"`` gives :func:`pad_collate`'s output, ``"offsets"`` :func:`offsets_collate`'s.
        **options: Keyword options of the chosen collate (``pad_idx``, ``max_len``, ...).

    Example:
        >>> from textpipe.text.vocabulary import Vocab
        >>> vocab = Vocab(["<pad>", "<unk>", "hello", "world"], default_index=1)
        >>> collate = TextCollate(vocab, form="pad")
        >>> collate([(0, "Hello world"), (3, "Hi")])[0].shape
        torch.Size([2, 2])
    """

    def __init__(self, vocab, *, tokenizer: Callable[[str], list[str]] | None = None, form: str = "pad",
                 **options) -> None:
        if form not in ("pad", "offsets"):
            raise ValueError(f"form must be 'pad' or 'offsets', got {form!r}")
        allowed = {"pad": {"pad_idx", "max_len", "pad_to_multiple_of", "padding_side", "dtype"},
                   "offsets": {"max_len"}}[form]
        unknown = set(options) - allowed
        if unknown:
            raise TypeError(f"unknown option(s) {sorted(unknown)} for form={form!r}; "
                            f"expected some of {sorted(allowed)}")
        if tokenizer is not None and not callable(tokenizer):
            raise TypeError(f"tokenizer must be None or a callable str -> list[str], got {type(tokenizer).__name__}")
        self.vocab, self.tokenizer, self.form, self.options = vocab, tokenizer, form, options

    def _encode(self, texts: list[str]) -> tuple[np.ndarray, np.ndarray]:
        """Flat ids and lengths of ``texts``: one ``encode_flat`` call (or the override tokenizer's path)."""
        if not all(type(text) is str for text in texts):
            bad = next((i for i, text in enumerate(texts) if not isinstance(text, str)), None)
            if bad is not None:
                raise TypeError(f"batch[{bad}] text must be a str, got {type(texts[bad]).__name__}; "
                                f"TextCollate takes raw (label, text) pairs")
        tokenizer = self.tokenizer
        if tokenizer is None or tokenizer is self.vocab.tokenizer:
            ids, offsets = self.vocab.encode_flat(texts)
            return ids, np.diff(offsets)
        token_lists = [check_tokens(tokenizer(text), tokenizer, text) for text in texts]
        lengths = np.fromiter(map(len, token_lists), dtype=_I64, count=len(texts))
        ids = np.array(self.vocab.lookup_indices(list(chain.from_iterable(token_lists))), dtype=_I64)
        return ids, lengths

    def __call__(self, batch) -> tuple[torch.Tensor, torch.Tensor, torch.Tensor]:
        if isinstance(batch, (str, bytes)) or not isinstance(batch, Sequence) or len(batch) == 0:
            raise TypeError(f"batch must be a non-empty list of (label, text) pairs, got {type(batch).__name__}")
        for i, pair in enumerate(batch):
            if not isinstance(pair, (tuple, list)) or len(pair) != 2:
                got = f"{type(pair).__name__} of length {len(pair)}" if hasattr(pair, "__len__") else type(pair).__name__
                raise TypeError(f"batch[{i}] must be a (label, text) pair, got {got}")
        if all(type(pair[0]) is int for pair in batch):
            labels = np.array([pair[0] for pair in batch], dtype=_I64)  # (out of int64: numpy's OverflowError)
        else:  # floats, bools, strings are refused, not truncated (1.5 is not class 1)
            labels = np.array([check_label(pair[0], i) for i, pair in enumerate(batch)], dtype=_I64)
        ids, lengths = self._encode([pair[1] for pair in batch])
        starts = np.zeros(len(batch), _I64)
        np.cumsum(lengths[:-1], out=starts[1:])
        longest = int(lengths.max())
        # the guard of max(lengths) zeros lets pad_collate cut rows as windows; when one text is most of
        # the batch that would double its ids, and the gather without a guard costs no more
        source = ids if 2 * longest > ids.size else np.concatenate([ids, np.zeros(longest, _I64)])
        flat = CorpusBatch(source, starts, lengths, labels)
        if self.form == "pad":
            return pad_collate(flat, **self.options)
        return offsets_collate(flat, **self.options)
