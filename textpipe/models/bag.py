"""The text classifier: a bag of embeddings (mean) plus a linear head, as in the torchtext tutorial.

It takes the padded batch `ids (B, T)` so that `nn.DataParallel` splits it along the batch dimension; the
tutorial's flat `ids (N,)` + `offsets (B,)` form is also accepted, for single-device use. Optional hashed
bigram features (fastText style) are computed from the ids inside `forward`, vectorized. Optional character
n-gram (subword) features, fastText's `-minn/-maxn`: each vocabulary word's n-grams of `<word>` hashed into the
same bucket table; the table word id -> subword rows follows from the vocabulary (`set_vocab`), so checkpoints
hold only `minn`/`maxn` in the model config. Optional NB weighting (`weighting="nb"`, after Wang & Manning
2012): each text's vector is a weighted mean of its rows, row r weighted by `1 + max_c |log(p(r | c) / p(r | not
c))|` (naive Bayes log-count ratios of the training texts, `nb_row_weights`; held in the state dict).
"""
from __future__ import annotations

from dataclasses import dataclass

import zlib
from collections.abc import Sequence

import torch
import torch.nn.functional as F
from torch import nn

from textpipe.core.specials import UNK_IDX

# fastText's hash multiplier for combining word ids into an n-gram id.
_NGRAM_PRIME = 116049371
WEIGHTINGS = ("mean", "nb")
NB_BLOCK_FLOATS = 2**22  # nb_row_weights: classes x rows per dense block (16 MB, and 3 temporaries)
NB_DENSE_FLOATS = 2**25  # nb_row_weights: counts in a dense classes x rows table up to this size (128 MB)


@dataclass
class ModelConfig:
    vocab_size: int = 0  # number of token ids, specials included (set from the vocabulary)
    num_classes: int = 4  # output classes (AG_NEWS: 4)
    embed_dim: int = 32  # size of each token / bigram embedding
    ngrams: int = 2  # 1 = unigrams only, 2 = unigrams + hashed bigrams
    buckets: int = 2**18  # hash buckets for the bigram embeddings (ignored when ngrams == 1)
    pad_idx: int = 0  # padding id: excluded from the mean
    sparse: bool = False  # sparse embedding gradients (optimizer must accept them: SGD, SparseAdam)
    minn: int = 0  # character n-grams of each word, from minn to maxn characters (0 = none; fastText's -minn)
    maxn: int = 0  # (fastText's -maxn), hashed into the bucket table
    weighting: str = "mean"  # mean: each text's rows averaged | nb: averaged with NB weights (`nb_row_weights`)

    @property
    def uses_buckets(self) -> bool:
        return self.ngrams == 2 or self.maxn > 0

    def __post_init__(self):
        if self.vocab_size < 2:
            raise ValueError(f"vocab_size must be >= 2 (pad + at least one token), got {self.vocab_size}")
        if self.num_classes < 2:
            raise ValueError(f"num_classes must be >= 2, got {self.num_classes}")
        if self.embed_dim < 1:
            raise ValueError(f"embed_dim must be >= 1, got {self.embed_dim}")
        if self.ngrams not in (1, 2):
            raise ValueError(f"ngrams must be 1 or 2, got {self.ngrams}")
        if self.uses_buckets and self.buckets < 1:
            raise ValueError(f"buckets must be >= 1 with bigrams or subwords, got {self.buckets}")
        if not (self.minn == self.maxn == 0 or 1 <= self.minn <= self.maxn):
            raise ValueError(f"minn, maxn must be 0, 0 (no subwords) or 1 <= minn <= maxn, got {self.minn}, {self.maxn}")
        if self.weighting not in WEIGHTINGS:
            raise ValueError(f"weighting must be one of {WEIGHTINGS}, got {self.weighting!r}")
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
        n_rows = config.vocab_size + (config.buckets if config.uses_buckets else 0)
        # pads never reach the bag (forward drops them), so no padding_idx here; an empty text gives zeros
        # `_weight`: reset_parameters below sets every weight (torch's own init of the 2.8M-float default
        # embedding costs ~16 ms, 3% of a default `fit`; nn.utils.skip_init costs more than it saves)
        self.embedding = nn.EmbeddingBag(n_rows, config.embed_dim, mode="mean", sparse=config.sparse,
                                         _weight=torch.empty(n_rows, config.embed_dim))
        self.fc = nn.Linear(config.embed_dim, config.num_classes)
        self.reset_parameters()
        # word id -> its subword rows (CSR); set from the vocabulary by `set_vocab` (not in the state dict)
        self.register_buffer("subword_offsets", torch.zeros(0, dtype=torch.int64), persistent=False)
        self.register_buffer("subword_rows", torch.zeros(0, dtype=torch.int64), persistent=False)
        if config.weighting == "nb":  # each row's weight in the mean: from the training data, saved with the model
            self.register_buffer("row_weight", torch.ones(n_rows))

    def set_vocab(self, itos: Sequence[str]) -> None:
        """Give the model its vocabulary's tokens (id order): with `minn`/`maxn`, each word's subword rows."""
        c = self.config
        if not c.maxn:
            return
        if len(itos) != c.vocab_size:
            raise ValueError(f"the vocabulary has {len(itos)} tokens, the model {c.vocab_size}")
        offsets, rows = subword_table(itos, c.minn, c.maxn, buckets=c.buckets, first_row=c.vocab_size,
                                      skip=(c.pad_idx, UNK_IDX))
        self.subword_offsets = offsets.to(self.fc.weight.device)
        self.subword_rows = rows.to(self.fc.weight.device)

    @staticmethod
    def state_shapes(config: ModelConfig) -> dict[str, tuple[int, ...]]:
        """The state-dict shapes of `TextClassifier(config)`, without building it (building one costs ~0.1-0.6 s
        for the default 2**18 buckets; tests/test_model.py checks this against a real model)."""
        rows = config.vocab_size + (config.buckets if config.uses_buckets else 0)
        shapes = {"embedding.weight": (rows, config.embed_dim), "fc.weight": (config.num_classes, config.embed_dim),
                  "fc.bias": (config.num_classes,)}
        return shapes | ({"row_weight": (rows,)} if config.weighting == "nb" else {})

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

    def _with_subwords(self, ids: torch.Tensor, offsets: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
        """The flat bag ids with each word's subword rows inserted after the word's own entries."""
        group = 1 + (self.config.ngrams == 2)  # ids holds (word, bigram) pairs with bigrams
        words = ids[::group]  # (P,) the word of each position
        n_sub = (self.subword_offsets[words + 1] - self.subword_offsets[words])  # (P,)
        sizes = n_sub + group
        ends = sizes.cumsum(0)
        starts = ends - sizes  # (P,) where each position's group starts in the output
        total = int(ends[-1]) if ends.numel() else 0
        out = ids.new_empty(total)
        for k in range(group):
            out[starts + k] = ids[k::group]
        # the subword rows: output slot -> (its position, its index in that word's subwords)
        n_all = total - group * words.numel()
        pos = torch.repeat_interleave(torch.arange(words.numel(), device=ids.device), n_sub, output_size=n_all)
        inner = torch.arange(n_all, device=ids.device) - (n_sub.cumsum(0) - n_sub)[pos]
        out[starts[pos] + group + inner] = self.subword_rows[self.subword_offsets[words[pos]] + inner]
        starts = torch.cat([starts, starts.new_full((1,), total)])
        return out, starts[offsets // group]

    def forward(self, ids: torch.Tensor, offsets: torch.Tensor | None = None) -> torch.Tensor:
        """Class logits `(B, num_classes)`.

        Args:
            ids: padded token ids `(B, T)`, or flat ids `(N,)` when `offsets` is given.
            offsets: start of each sequence in the flat `ids` `(B,)` (the tutorial form; single device only).
        """
        return self.fc(self.pool(*self.bags(ids, offsets)))

    def pool(self, bag_ids: torch.Tensor, bag_offsets: torch.Tensor) -> torch.Tensor:
        """`(B, D)` each text's vector: the mean of its bag's embedding rows (`weighting="nb"`: weighted by
        `row_weight`; a text whose rows all weigh 0, as rows unseen in training do, gets zeros)."""
        if self.config.weighting == "mean":
            return self.embedding(bag_ids, bag_offsets)
        w = self.row_weight.index_select(0, bag_ids)  # (M,)
        total = F.embedding_bag(bag_ids, self.embedding.weight, bag_offsets, mode="sum", per_sample_weights=w,
                                sparse=self.config.sparse)
        return total / bag_sums(w, bag_offsets).unsqueeze(1)

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
        if self.config.maxn and self.subword_offsets.numel() == 0:
            raise RuntimeError("this model has subword features (minn/maxn): call model.set_vocab(vocab.get_itos()) "
                               "first (textpipe.load_model and training do)")
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
        if self.config.maxn:
            ids, offsets = self._with_subwords(ids, offsets)
        # Drop the pads before the bag: this excludes them from the mean, and it is faster than
        # EmbeddingBag's own padding_idx, whose backward pass masks every position again.
        keep = ids != pad  # (N,)
        kept_before = torch.nn.functional.pad(keep.cumsum(0), (1, 0))  # (N + 1,) kept ids before each position
        return ids[keep], kept_before[offsets]


def subword_table(itos: Sequence[str], minn: int, maxn: int, *, buckets: int, first_row: int,
                  skip: Sequence[int] = ()) -> tuple[torch.Tensor, torch.Tensor]:
    """`(offsets (V + 1,), rows (K,))`: word k's subword rows are `rows[offsets[k]:offsets[k + 1]]`.

    As fastText: the character n-grams of `<word>` from `minn` to `maxn` characters (not `<word>` itself),
    each hashed (CRC-32 of its UTF-8 bytes) into `buckets` rows from `first_row` on. Ids in `skip` get none.

        >>> subword_table(["<pad>", "ab"], 3, 3, buckets=10, first_row=2, skip=(0,))
        (tensor([0, 0, 2]), tensor([6, 5]))
    """
    skip = set(skip)
    offsets, rows = [0], []
    for k, word in enumerate(itos):
        if k not in skip:
            w = f"<{word}>"
            for n in range(minn, maxn + 1):
                rows.extend(zlib.crc32(w[i:i + n].encode("utf-8")) % buckets + first_row
                            for i in range(len(w) - n + 1) if n < len(w))
        offsets.append(len(rows))
    return torch.tensor(offsets, dtype=torch.int64), torch.tensor(rows, dtype=torch.int64)


def bag_sums(weights: torch.Tensor, offsets: torch.Tensor) -> torch.Tensor:
    """`(B,)` each bag's total weight (at least 1e-6: an all-zero bag's vector stays 0, not NaN).

        >>> bag_sums(torch.tensor([1.0, 2.0, 4.0]), torch.tensor([0, 2, 3]))
        tensor([3.0000e+00, 4.0000e+00, 1.0000e-06])
    """
    n, B = weights.numel(), offsets.numel()
    lengths = torch.diff(offsets, append=offsets.new_full((1,), n))
    text = torch.repeat_interleave(torch.arange(B, device=weights.device), lengths, output_size=n)
    return weights.new_zeros(B).index_add_(0, text, weights).clamp_(min=1e-6)


@torch.no_grad()
def nb_row_weights(chunks, num_rows: int, num_classes: int, *, alpha: float = 1.0) -> torch.Tensor:
    """`(num_rows,)` the NB weight of each embedding row, from the training texts' bags.

    `chunks`: `(bag ids (M,), bag offsets (B,), labels (B,))` pieces of the training corpus (`model.bags` of
    its texts). With `df_c(r)` = the texts of class c holding row r and `n_c` = the texts of class c,
    `p(r | c) = (df_c(r) + alpha) / (n_c + 2 alpha)` (Wang & Manning 2012's smoothed, binarized counts); the
    weight is `1 + max_c |log p(r | c) - log p(r | not c)|`: 1 for a row that says nothing about the class,
    more for one that does. A row no training text holds weighs 0 (dropped from the mean: it was never trained).

        >>> ids, offsets, labels = torch.tensor([2, 3, 2, 4]), torch.tensor([0, 2]), torch.tensor([0, 1])
        >>> nb_row_weights([(ids, offsets, labels)], 5, 2)
        tensor([0.0000, 0.0000, 1.0000, 1.6931, 1.6931])
    """
    # df_c(r) by the key c * R + r: a dense table when it is small (one index_add per chunk: measured 0.5 s
    # faster at 120,000 texts), else sparse counts merged chunk by chunk (a dense C x R table would take 1.2 GB
    # at 1,000 classes with the default 2**18 buckets)
    dense = torch.zeros(num_classes * num_rows) if num_classes * num_rows <= NB_DENSE_FLOATS else None
    keys, counts = torch.zeros(0, dtype=torch.int64), torch.zeros(0)
    texts = torch.zeros(num_classes)
    for ids, offsets, labels in chunks:
        n, B = ids.numel(), labels.numel()
        lengths = torch.diff(offsets, append=offsets.new_full((1,), n))
        text = torch.repeat_interleave(torch.arange(B), lengths, output_size=n)
        pairs = torch.unique(text * num_rows + ids)  # (text, row) present: binarized
        new = labels.index_select(0, pairs // num_rows) * num_rows + pairs % num_rows
        if dense is not None:
            dense.index_add_(0, new, torch.ones(new.numel()))
        else:
            keys, inverse = torch.unique(torch.cat([keys, new]), return_inverse=True)
            counts = torch.zeros(keys.numel()).index_add_(0, inverse, torch.cat([counts, torch.ones(new.numel())]))
        texts += torch.bincount(labels, minlength=num_classes).float()
    if dense is not None:
        keys = dense.nonzero().squeeze(1)
        counts = dense[keys]
    cls, row = keys // num_rows, keys % num_rows
    seen = torch.zeros(num_rows).index_add_(0, row, counts)  # (R,) texts holding each row
    ratio = torch.zeros(num_rows)  # max over the classes, a block of classes at a time (dense C x R is large)
    block = max(1, NB_BLOCK_FLOATS // max(num_rows, 1))
    for c0 in range(0, num_classes, block):
        c = torch.arange(c0, min(c0 + block, num_classes)).unsqueeze(1)  # (b, 1)
        df = torch.zeros(c.numel(), num_rows)
        inside = (cls >= c0) & (cls < c0 + c.numel())
        df[cls[inside] - c0, row[inside]] = counts[inside]
        p = (df + alpha) / (texts[c] + 2 * alpha)
        q = (seen - df + alpha) / (texts.sum() - texts[c] + 2 * alpha)
        ratio = torch.maximum(ratio, (p.log_() - q.log_()).abs_().amax(0))
    return torch.where(seen > 0, ratio + 1.0, torch.zeros_like(ratio))
