"""A bidirectional LSTM or GRU over packed sequences (padding never enters the state), pooled over time or
from the final states, then dropout and a linear layer. `textpipe train --model rnn` (flags: --rnn-cell,
--hidden-dim, --num-layers, --pooling, --dropout).
"""
from __future__ import annotations

from dataclasses import dataclass

import torch
from torch import nn
from torch.nn.utils.rnn import pack_padded_sequence, pad_packed_sequence

from textpipe.core.specials import UNK_IDX
from textpipe.models._seq import check_common, masked_pool, unk_dropout, valid_mask

__all__ = ["RNNConfig", "RNNClassifier"]


@dataclass
class RNNConfig:
    vocab_size: int = 0  # number of token ids, specials included (set from the vocabulary)
    num_classes: int = 4  # output classes
    pad_idx: int = 0  # padding id
    unk_idx: int = UNK_IDX  # the <unk> id: what --unk-dropout turns tokens into
    embed_dim: int = 128  # token embedding size
    rnn_cell: str = "lstm"  # lstm | gru
    hidden_dim: int = 128  # hidden size per direction
    num_layers: int = 1  # stacked layers
    pooling: str = "max"  # max | mean (over the valid time steps) | last (final forward + backward states)
    dropout: float = 0.5  # on the embeddings, between layers and on the pooled features
    unk_dropout: float = 0.0  # training only: each real token becomes <unk> with this probability (--unk-dropout)

    def __post_init__(self):
        check_common(self)
        if self.rnn_cell not in ("lstm", "gru"):
            raise ValueError(f"rnn_cell must be one of ('lstm', 'gru'), got {self.rnn_cell!r}")
        if self.pooling not in ("max", "mean", "last"):
            raise ValueError(f"pooling must be one of ('max', 'mean', 'last') for rnn, got {self.pooling!r}")
        if self.hidden_dim < 1 or self.num_layers < 1:
            raise ValueError(f"hidden_dim and num_layers must be >= 1, got {self.hidden_dim} and {self.num_layers}")


class RNNClassifier(nn.Module):
    """Bidirectional RNN classifier. Takes `ids (B, T)` and `lengths (B,)`; returns logits `(B, num_classes)`.

    Example:
        >>> model = RNNClassifier(RNNConfig(vocab_size=10, num_classes=3, embed_dim=8, hidden_dim=4))
        >>> model(torch.tensor([[2, 3, 4], [5, 0, 0]]), torch.tensor([3, 1])).shape
        torch.Size([2, 3])
    """

    takes_lengths = True

    def __init__(self, config: RNNConfig):
        super().__init__()
        self.config = config
        self.embedding = nn.Embedding(config.vocab_size, config.embed_dim, padding_idx=config.pad_idx)
        cell = nn.LSTM if config.rnn_cell == "lstm" else nn.GRU
        self.rnn = cell(config.embed_dim, config.hidden_dim, num_layers=config.num_layers, batch_first=True,
                        bidirectional=True, dropout=config.dropout if config.num_layers > 1 else 0.0)
        self.dropout = nn.Dropout(config.dropout)
        # Kim (2014)'s U(-0.25, 0.25): torch's N(0, 1) default is so large that AdamW's small steps barely move
        # the embeddings (measured on the TREC carve-out: see the README)
        nn.init.uniform_(self.embedding.weight, -0.25, 0.25)
        with torch.no_grad():
            self.embedding.weight[config.pad_idx].zero_()
        self.fc = nn.Linear(2 * config.hidden_dim, config.num_classes)

    def forward(self, ids: torch.Tensor, lengths: torch.Tensor | None = None) -> torch.Tensor:
        mask = valid_mask(lengths, ids, self.config.pad_idx)  # (B, T)
        ids = unk_dropout(ids, mask, self.config.unk_dropout, self.config.unk_idx, self.training)
        n = mask.sum(1)  # (B,)
        T = ids.shape[1]
        if T == 0:  # a batch of empty texts: one padding step
            ids, T = ids.new_full((ids.shape[0], 1), self.config.pad_idx), 1
        x = self.dropout(self.embedding(ids))  # (B, T, E)
        # subtle: packing needs lengths >= 1 on the CPU; an empty text runs over its one padding step
        packed = pack_padded_sequence(x, n.clamp(min=1).cpu(), batch_first=True, enforce_sorted=False)
        out, state = self.rnn(packed)
        if self.config.pooling == "last":
            h_n = state[0] if isinstance(state, tuple) else state  # (layers * 2, B, H)
            pooled = torch.cat((h_n[-2], h_n[-1]), 1)  # last layer: forward end state, backward end state
        else:
            h, _ = pad_packed_sequence(out, batch_first=True, total_length=T)  # (B, T, 2H), zeros past the end
            pooled = masked_pool(h, mask if mask.shape[1] == T else mask.new_zeros(h.shape[:2]), self.config.pooling)
        return self.fc(self.dropout(pooled))
