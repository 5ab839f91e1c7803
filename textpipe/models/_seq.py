"""What the sequence models share: the padding mask, masked pooling over time, and the checks of their configs."""
from __future__ import annotations

import torch

__all__ = ["valid_mask", "masked_pool", "unk_dropout", "check_common", "POOLINGS"]

POOLINGS = ("max", "mean", "first", "last")


def valid_mask(lengths: torch.Tensor | None, ids: torch.Tensor, pad_idx: int) -> torch.Tensor:
    """`(B, T)` True at real tokens: the first `lengths[b]` positions, or (no lengths) the non-pad ids."""
    if lengths is None:
        return ids != pad_idx
    positions = torch.arange(ids.shape[1], device=ids.device)  # (T,)
    return positions[None, :] < lengths.to(ids.device)[:, None]


def unk_dropout(ids: torch.Tensor, mask: torch.Tensor, p: float, unk_idx: int, training: bool) -> torch.Tensor:
    """In training, each real token of `ids (B, T)` (where `mask` is True) becomes `unk_idx` with probability `p`;
    otherwise (eval, or p = 0: no random numbers drawn) `ids` as it is.

    Texts met later have words the training data never had, all read as `<unk>`, whose embedding would otherwise
    never be trained (on TREC's test file 263 of 499 questions hold such a word); and no text can be learnt by a
    few of its rare words alone. Like dropout, it is off in `model.eval()`.

    Example:
        >>> ids = torch.tensor([[5, 6, 0]]); m = ids != 0
        >>> unk_dropout(ids, m, 0.999999, 1, True), unk_dropout(ids, m, 0.5, 1, False)
        (tensor([[1, 1, 0]]), tensor([[5, 6, 0]]))
    """
    if not training or p == 0:
        return ids
    drop = (torch.rand(ids.shape, device=ids.device) < p) & mask
    return ids.masked_fill(drop, unk_idx)


def masked_pool(h: torch.Tensor, mask: torch.Tensor, how: str) -> torch.Tensor:
    """Pool `h (B, T, D)` over its valid positions `mask (B, T)` into `(B, D)`; an empty row pools to zeros.

    Example:
        >>> h = torch.tensor([[[1.0], [3.0], [9.0]]]); m = torch.tensor([[True, True, False]])
        >>> masked_pool(h, m, "mean"), masked_pool(h, m, "max")
        (tensor([[2.]]), tensor([[3.]]))
    """
    m = mask.unsqueeze(-1)  # (B, T, 1)
    if how == "mean":
        return (h * m).sum(1) / m.sum(1).clamp(min=1)
    if how == "max":
        # subtle: -inf for padding, then 0 for rows with no valid position (avoids -inf * 0 = nan downstream)
        out = h.masked_fill(~m, float("-inf")).amax(1)
        return torch.where(mask.any(1, keepdim=True), out, torch.zeros_like(out))
    if how == "first":
        return h[:, 0]
    raise ValueError(f"pooling must be one of {POOLINGS[:3]}, got {how!r}")


def check_common(cfg) -> None:
    """The checks every sequence model's config shares (vocab_size, num_classes, pad_idx, unk_idx, embed_dim,
    dropout, unk_dropout, and embed_dropout where it has one)."""
    if cfg.vocab_size < 2:
        raise ValueError(f"vocab_size must be >= 2 (pad + at least one token), got {cfg.vocab_size}")
    if cfg.num_classes < 2:
        raise ValueError(f"num_classes must be >= 2, got {cfg.num_classes}")
    if not 0 <= cfg.pad_idx < cfg.vocab_size:
        raise ValueError(f"pad_idx must be in [0, vocab_size={cfg.vocab_size}), got {cfg.pad_idx}")
    if not 0 <= cfg.unk_idx < cfg.vocab_size:
        raise ValueError(f"unk_idx must be in [0, vocab_size={cfg.vocab_size}), got {cfg.unk_idx}")
    if cfg.embed_dim < 1:
        raise ValueError(f"embed_dim must be >= 1, got {cfg.embed_dim}")
    if not 0.0 <= cfg.dropout < 1.0:
        raise ValueError(f"dropout must be in [0, 1), got {cfg.dropout}")
    if not 0.0 <= cfg.unk_dropout < 1.0:
        raise ValueError(f"unk_dropout must be in [0, 1), got {cfg.unk_dropout}")
    if not 0.0 <= getattr(cfg, "embed_dropout", 0.0) < 1.0:
        raise ValueError(f"embed_dropout must be in [0, 1), got {cfg.embed_dropout}")
