"""Kim (2014)'s CNN for sentence classification: embeddings -> 1-D convolutions of several widths -> ReLU ->
max over time -> dropout -> linear. `textpipe train --model cnn` (flags: --kernel-sizes, --num-filters, --dropout,
--embed-dropout).

Padding never changes a text's logits: the embeddings of padding are zeroed, every filter sees the text padded
with `width - 1` zeros on both sides (Kim's wide convolution), and windows that hold no real token are left
out of the max. So a text gets the same prediction alone or in any batch.
"""
from __future__ import annotations

from dataclasses import dataclass, field

import torch
from torch import nn

from textpipe.core.specials import UNK_IDX
from textpipe.models._seq import check_common, unk_dropout, valid_mask

__all__ = ["CNNConfig", "CNNClassifier"]


@dataclass
class CNNConfig:
    vocab_size: int = 0  # number of token ids, specials included (set from the vocabulary)
    num_classes: int = 4  # output classes
    pad_idx: int = 0  # padding id
    unk_idx: int = UNK_IDX  # the <unk> id: what --unk-dropout turns tokens into
    embed_dim: int = 128  # token embedding size (Kim: 300)
    kernel_sizes: list = field(default_factory=lambda: [3, 4, 5])  # convolution widths, in tokens
    num_filters: int = 100  # feature maps per width
    dropout: float = 0.5  # dropout on the pooled features
    embed_dropout: float = 0.0  # dropout on the token embeddings (before the convolutions)
    unk_dropout: float = 0.0  # training only: each real token becomes <unk> with this probability (--unk-dropout)

    def __post_init__(self):
        check_common(self)
        self.kernel_sizes = [int(k) for k in self.kernel_sizes]  # a list: as JSON and TrainConfig hold it
        if not self.kernel_sizes or min(self.kernel_sizes) < 1:
            raise ValueError(f"kernel_sizes must be one or more widths >= 1, got {self.kernel_sizes}")
        if self.num_filters < 1:
            raise ValueError(f"num_filters must be >= 1, got {self.num_filters}")


class CNNClassifier(nn.Module):
    """Kim (2014) CNN. Takes `ids (B, T)` and `lengths (B,)`; returns logits `(B, num_classes)`.

    Example:
        >>> model = CNNClassifier(CNNConfig(vocab_size=10, num_classes=3, embed_dim=8, num_filters=4))
        >>> model(torch.tensor([[2, 3, 4], [5, 0, 0]]), torch.tensor([3, 1])).shape
        torch.Size([2, 3])
    """

    takes_lengths = True  # the training loop, evaluate and predict pass `lengths` (see textpipe.models.forward)

    def __init__(self, config: CNNConfig):
        super().__init__()
        self.config = config
        self.embedding = nn.Embedding(config.vocab_size, config.embed_dim, padding_idx=config.pad_idx)
        self.convs = nn.ModuleList(nn.Conv1d(config.embed_dim, config.num_filters, k, padding=k - 1)
                                   for k in config.kernel_sizes)
        self.dropout = nn.Dropout(config.dropout)
        self.embed_dropout = nn.Dropout(config.embed_dropout)
        # Kim (2014)'s U(-0.25, 0.25): torch's N(0, 1) default is so large that AdamW's small steps barely move
        # the embeddings (measured on the TREC carve-out: see the README)
        nn.init.uniform_(self.embedding.weight, -0.25, 0.25)
        with torch.no_grad():
            self.embedding.weight[config.pad_idx].zero_()
        self.fc = nn.Linear(config.num_filters * len(config.kernel_sizes), config.num_classes)

    def forward(self, ids: torch.Tensor, lengths: torch.Tensor | None = None) -> torch.Tensor:
        if ids.shape[1] == 0:  # a batch of empty texts: one padding position
            ids = ids.new_full((ids.shape[0], 1), self.config.pad_idx)
            lengths = None if lengths is None else torch.zeros_like(lengths)
        mask = valid_mask(lengths, ids, self.config.pad_idx)  # (B, T)
        ids = unk_dropout(ids, mask, self.config.unk_dropout, self.config.unk_idx, self.training)
        x = (self.embed_dropout(self.embedding(ids)) * mask.unsqueeze(-1)).transpose(1, 2)  # (B, E, T), padding 0
        n = mask.sum(1).clamp(min=1)  # (B,) real tokens (an empty text: its one all-zero window)
        pooled = []
        for conv, k in zip(self.convs, self.config.kernel_sizes):
            h = torch.relu(conv(x))  # (B, F, T + k - 1): window j covers tokens j-k+1 .. j
            windows = torch.arange(h.shape[2], device=h.device)
            keep = windows[None, :] < (n + k - 1)[:, None]  # (B, T + k - 1) windows with a real token
            pooled.append(h.masked_fill(~keep.unsqueeze(1), float("-inf")).amax(2))  # (B, F)
        return self.fc(self.dropout(torch.cat(pooled, 1)))
