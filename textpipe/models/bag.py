"""The text classifier: a bag of embeddings (mean) plus a linear head, as in the torchtext tutorial.

It takes the padded batch `ids (B, T)` so that `nn.DataParallel` splits it along the batch dimension; the
tutorial's flat `ids (N,)` + `offsets (B,)` form is also accepted, for single-device use. Optional hashed
bigram features (fastText style) are computed from the ids inside `forward`, vectorized.
"""
from __future__ import annotations

from dataclasses import dataclass

import torch
from torch import nn

# fastText's hash multiplier for combining word ids into an n-gram id.
_NGRAM_PRIME = 116049371


@dataclass
class ModelConfig:
    vocab_size: int = 0  # number of token ids, specials included (set from the vocabulary)
    num_classes: int = 4  # output classes (AG_NEWS: 4)
    embed_dim: int = 32  # size of each token / bigram embedding
    ngrams: int = 2  # 1 = unigrams only, 2 = unigrams + hashed bigrams
    buckets: int = 2**18  # hash buckets for the bigram embeddings (ignored when ngrams == 1)
    pad_idx: int = 0  # padding id: excluded from the mean
    sparse: bool = False  # sparse embedding gradients (optimizer must accept them: SGD, SparseAdam)

    def __post_init__(self):
        if self.vocab_size < 2:
            raise ValueError(f"vocab_size must be >= 2 (pad + at least one token), got {self.vocab_size}")
        if self.num_classes < 2:
            raise ValueError(f"num_classes must be >= 2, got {self.num_classes}")
        if self.embed_dim < 1:
            raise ValueError(f"embed_dim must be >= 1, got {self.embed_dim}")
        if self.ngrams not in (1, 2):
            raise ValueError(f"ngrams must be 1 or 2, got {self.ngrams}")
        if self.ngrams == 2 and self.buckets < 1:
            raise ValueError(f"buckets must be >= 1 when ngrams == 2, got {self.buckets}")
        if not 0 <= self.pad_idx < self.vocab_size:
            raise ValueError(f"pad_idx must be in [0, vocab_size={self.vocab_size}), got {self.pad_idx}")


class TextClassifier(nn.Module):
    """Mean of token (and hashed bigram) embeddings -> linear layer -> class logits.

    Example:
        >>> model = TextClassifier(ModelConfig(vocab_size=10, num_classes=4, embed_dim=8))
        >>> model(torch.tensor([[2, 3, 4], [5, 0, 0]])).shape
        torch.Size([2, 4])
    """

    def __init__(self, config: ModelConfig):
        super().__init__()
        self.config = config
        n_rows = config.vocab_size + (config.buckets if config.ngrams == 2 else 0)
        # pads never reach the bag (forward drops them), so no padding_idx here; an empty text gives zeros
        # `_weight`: reset_parameters below sets every weight (torch's own init of the 2.8M-float default
        # embedding costs ~16 ms, 3% of a default `fit`; nn.utils.skip_init costs more than it saves)
        self.embedding = nn.EmbeddingBag(n_rows, config.embed_dim, mode="mean", sparse=config.sparse,
                                         _weight=torch.empty(n_rows, config.embed_dim))
        self.fc = nn.Linear(config.embed_dim, config.num_classes)
        self.reset_parameters()

    @staticmethod
    def state_shapes(config: ModelConfig) -> dict[str, tuple[int, ...]]:
        """The state-dict shapes of `TextClassifier(config)`, without building it (building one costs ~0.1-0.6 s
        for the default 2**18 buckets; tests/test_model.py checks this against a real model)."""
        rows = config.vocab_size + (config.buckets if config.ngrams == 2 else 0)
        return {"embedding.weight": (rows, config.embed_dim), "fc.weight": (config.num_classes, config.embed_dim),
                "fc.bias": (config.num_classes,)}

    def reset_parameters(self) -> None:
        # fastText's initialization: small uniform embeddings, a zero output layer.
        bound = 1.0 / self.config.embed_dim
        nn.init.uniform_(self.embedding.weight, -bound, bound)
        with torch.no_grad():
            self.embedding.weight[self.config.pad_idx].zero_()
        nn.init.zeros_(self.fc.weight)
        nn.init.zeros_(self.fc.bias)

    def _bigrams(self, ids: torch.Tensor, next_ids: torch.Tensor, valid: torch.Tensor) -> torch.Tensor:
        """Hashed bigram ids (offset past the vocabulary), or pad where `valid` is False."""
        c = self.config
        h = (ids * _NGRAM_PRIME + next_ids) % c.buckets + c.vocab_size
        return torch.where(valid, h, torch.full_like(h, c.pad_idx))

    def forward(self, ids: torch.Tensor, offsets: torch.Tensor | None = None) -> torch.Tensor:
        """Class logits `(B, num_classes)`.

        Args:
            ids: padded token ids `(B, T)`, or flat ids `(N,)` when `offsets` is given.
            offsets: start of each sequence in the flat `ids` `(B,)` (the tutorial form; single device only).
        """
        return self.fc(self.embedding(*self.bags(ids, offsets)))

    def bags(self, ids: torch.Tensor, offsets: torch.Tensor | None = None) -> tuple[torch.Tensor, torch.Tensor]:
        """The embedding rows each text averages: `(bag ids (M,), bag offsets (B,))`, pads dropped.

        A text's bag is its token ids and (with bigrams) the hashed bigram ids after them, interleaved.
        `forward` is `fc(embedding(*bags(ids, offsets)))`; the fused trainer (`textpipe.train.fused`) computes
        the bags of a whole corpus once instead of once per step.

        Example:
            >>> model = TextClassifier(ModelConfig(vocab_size=10, buckets=7))
            >>> model.bags(torch.tensor([[2, 3, 4], [5, 0, 0]]))
            (tensor([ 2, 14,  3, 12,  4,  5]), tensor([0, 5]))
        """
        pad = self.config.pad_idx
        if offsets is None:
            if ids.dim() != 2:
                raise ValueError(f"ids must be (B, T) when offsets is None, got shape {tuple(ids.shape)}")
            if self.config.ngrams == 2:
                # bigram at position t pairs ids[t] with ids[t+1]; the last column has no successor.
                nxt = torch.nn.functional.pad(ids[:, 1:], (0, 1), value=pad)  # (B, T)
                big = self._bigrams(ids, nxt, (ids != pad) & (nxt != pad))
                ids = torch.stack((ids, big), dim=2)  # (B, T, 2): token, bigram starting there
            row_len = ids.numel() // max(ids.shape[0], 1)  # T, or 2T with bigrams
            offsets = torch.arange(ids.shape[0], device=ids.device) * row_len  # row starts, (B,)
            ids = ids.flatten()
        else:
            if ids.dim() != 1 or offsets.dim() != 1:
                raise ValueError(f"with offsets, ids must be (N,) and offsets (B,), got {tuple(ids.shape)} "
                                 f"and {tuple(offsets.shape)}")
            if self.config.ngrams == 2 and ids.numel() > 0:
                # subtle: a bigram must not span two sequences, so the last token of each one gets pad.
                is_last = torch.zeros_like(ids, dtype=torch.bool)
                starts = offsets[1:]
                is_last[starts[starts > 0] - 1] = True
                is_last[-1] = True
                nxt = torch.nn.functional.pad(ids[1:], (0, 1), value=pad)
                big = self._bigrams(ids, nxt, ~is_last & (ids != pad) & (nxt != pad))
                ids, offsets = torch.stack((ids, big), dim=1).flatten(), offsets * 2
        # Drop the pads before the bag: this excludes them from the mean, and it is faster than
        # EmbeddingBag's own padding_idx, whose backward pass masks every position again.
        keep = ids != pad  # (N,)
        kept_before = torch.nn.functional.pad(keep.cumsum(0), (1, 0))  # (N + 1,) kept ids before each position
        return ids[keep], kept_before[offsets]
