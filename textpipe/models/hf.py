"""`--model hf:NAME_OR_DIR`: a pretrained Hugging Face encoder with a classification head, fine-tuned whole or in
part (`--freeze`), with per-layer learning rates (`--layer-lr-decay`).

The model reads the ids of its own tokenizer (`textpipe.text.subword`, `hf:NAME_OR_DIR`: the training command
builds the vocabulary from it), padded per batch; the attention mask comes from the lengths. The first build
reads the pretrained weights from the directory or the local Hugging Face cache and keeps the transformers
config in `hf_config`, so that a checkpoint rebuilds the model without the original files. Needs the `hf`
extra (pip install "textpipe-classic[hf]").

    >>> model = build_model(model_config("hf:tiny-bert/", {"freeze": "encoder"}, vocab_size=30, num_classes=4))  # doctest: +SKIP
    >>> model(ids).shape                                                            # doctest: +SKIP
    torch.Size([8, 4])
"""
from __future__ import annotations

import re
from dataclasses import dataclass

import torch
from torch import nn

__all__ = ["HFConfig", "HFClassifier", "FREEZE", "check_freeze", "count_parameters"]

FREEZE = ("none", "embeddings", "encoder", "all-but-N")  # --freeze; all-but-N: e.g. all-but-2


@dataclass
class HFConfig:
    vocab_size: int = 0  # the tokenizer's size (the embedding grows to it if the tokenizer has added tokens)
    num_classes: int = 2
    pad_idx: int = 0  # what the collate pads with (the mask comes from the lengths, so any id works)
    source: str = ""  # NAME_OR_DIR of hf:NAME_OR_DIR, where the pretrained weights were read
    freeze: str = "none"  # none | embeddings | encoder (train the head only) | all-but-N (the top N layers + head)
    hf_config: dict | None = None  # the transformers config; None = not read from `source` yet


def check_freeze(value: str) -> int | None:
    """The N of `all-but-N` (None for the other choices); ValueError naming the choices otherwise."""
    m = re.fullmatch(r"all-but-(\d+)", value)
    if m:
        return int(m.group(1))
    if value not in FREEZE[:3]:
        raise ValueError(f"freeze (--freeze) must be one of none, embeddings, encoder, all-but-N (N >= 0 layers "
                         f"left trainable), got {value!r}")
    return None


def _transformers():
    try:
        import transformers
    except ImportError:
        raise ValueError('--model hf:... needs transformers: pip install "textpipe-classic[hf]"') from None
    return transformers


def count_parameters(model: nn.Module) -> tuple[int, int]:
    """`(trainable, total)` parameter counts."""
    params = list(model.parameters())
    return sum(p.numel() for p in params if p.requires_grad), sum(p.numel() for p in params)


class HFClassifier(nn.Module):
    """`AutoModelForSequenceClassification` of `config.source` behind textpipe's model interface."""

    takes_lengths = True  # the training loop, evaluate and predict pass `lengths`: the attention mask comes from them

    def __init__(self, config: HFConfig):
        super().__init__()
        tf = _transformers()
        self.config = config
        if config.hf_config is None:  # the first build: pretrained weights (the head is new, seeded by the caller)
            from textpipe.text.subword import from_pretrained  # lazily: only hf: models read a source
            net = from_pretrained(tf.AutoModelForSequenceClassification, config.source,
                                  num_labels=config.num_classes, ignore_mismatched_sizes=True)
            if config.vocab_size > net.config.vocab_size:
                net.resize_token_embeddings(config.vocab_size)
            config.hf_config = net.config.to_dict()
        else:  # a checkpoint's model: the architecture only, its weights are loaded next
            d = dict(config.hf_config)
            hc = tf.CONFIG_MAPPING[d["model_type"]].from_dict(d)
            net = tf.AutoModelForSequenceClassification.from_config(hc)
        self.net = net
        self.layers = self._layers()
        self._freeze(config.freeze)

    def _layers(self) -> nn.ModuleList:
        """The encoder's stack of layers (bert.encoder.layer, distilbert.transformer.layer, ...)."""
        n = getattr(self.net.config, "num_hidden_layers", None)
        for _, m in self.net.base_model.named_modules():
            if isinstance(m, nn.ModuleList) and len(m) == n:
                return m
        raise ValueError(f"hf:{self.config.source}: no stack of {n} layers found in {type(self.net).__name__}; "
                         "--freeze all-but-N and --layer-lr-decay need one")

    def _freeze(self, freeze: str) -> None:
        keep = check_freeze(freeze)
        base = self.net.base_model
        if freeze == "embeddings":
            frozen = list(base.get_input_embeddings().parameters())
            emb = getattr(base, "embeddings", None)  # position and type embeddings too, where they live there
            frozen += list(emb.parameters()) if emb is not None else []
        elif freeze == "encoder" or keep is not None:
            frozen = list(base.parameters())
        else:
            frozen = []
        for p in frozen:
            p.requires_grad_(False)
        if keep is not None and keep > len(self.layers):
            raise ValueError(f"--freeze {freeze}: hf:{self.config.source} has {len(self.layers)} layers, so at most "
                             f"all-but-{len(self.layers)} (or --freeze none to train them all)")
        if keep:  # the top `keep` layers, and what sits above them in the encoder (pooler, final norm)
            top = {id(p) for layer in list(self.layers)[len(self.layers) - keep:] for p in layer.parameters()}
            below = {id(p) for layer in list(self.layers)[:len(self.layers) - keep] for p in layer.parameters()}
            below |= {id(p) for p in base.get_input_embeddings().parameters()}
            below |= {id(p) for p in getattr(base, "embeddings", nn.Module()).parameters()}
            for p in base.parameters():
                if id(p) in top or id(p) not in below:
                    p.requires_grad_(True)

    def param_groups(self, lr: float, decay: float) -> list[dict]:
        """The trainable parameters, grouped by depth: the head at `lr`, layer i from the top at `lr * decay**i`,
        the embeddings at `lr * decay**(L + 1)` (layer-wise learning-rate decay; 1.0 = one rate)."""
        n = len(self.layers)
        depth = {}
        for i, layer in enumerate(self.layers):
            for p in layer.parameters():
                depth[id(p)] = n - i  # the top layer: 1
        for p in self.net.base_model.get_input_embeddings().parameters():
            depth[id(p)] = n + 1
        for p in getattr(self.net.base_model, "embeddings", nn.Module()).parameters():
            depth[id(p)] = n + 1
        groups: dict[int, list] = {}
        for p in self.parameters():
            if p.requires_grad:
                groups.setdefault(depth.get(id(p), 0), []).append(p)
        return [{"params": ps, "lr": lr * decay ** d} for d, ps in sorted(groups.items())]

    def forward(self, ids: torch.Tensor, lengths: torch.Tensor | None = None) -> torch.Tensor:  # (B, T) -> (B, C)
        T = ids.shape[1]
        if lengths is None:  # a direct call without lengths (the loop, evaluate and predict always pass them):
            # subtle: a guess that holds only when rows are right-padded and end in a special token ([SEP], </s>)
            # that is not the pad id; a row whose last real id equals the pad id loses it from the mask
            nonpad = (ids != self.config.pad_idx).int()
            lengths = torch.where(nonpad.any(1), T - nonpad.flip(1).argmax(1), 0)
        mask = (torch.arange(T, device=ids.device) < lengths.to(ids.device).unsqueeze(1)).long()  # (B, T)
        return self.net(input_ids=ids, attention_mask=mask).logits
