"""The plan of a run: every setting that follows from the config, the processes and the data (device, fused
step, bucketing, sparse gradients, pinned memory), settled once in `make_plan` and read by the loop.

    >>> import torch
    >>> from textpipe.core.distributed import DistInfo
    >>> plan = make_plan(TrainConfig(), DistInfo(0, 0, 1, torch.device("cpu")), train_rows=5600)
    >>> plan.fused, plan.bucket, plan.sparse, plan.pin_memory
    (True, False, True, False)
"""
from __future__ import annotations

from dataclasses import dataclass

from textpipe.core.distributed import DistInfo
from textpipe.train.config import FUSED_MODELS, TrainConfig, settle_defaults

__all__ = ["Plan", "make_plan", "uses_fused_step", "uses_bucketing", "FUSED_MAX_ROWS", "FUSED_MODELS"]

# The fused step lists the whole epoch's batches and holds every training text's rows in memory: above this
# many rows (the loader's sampler window, past which batches are streamed a window at a time) it is not used.
FUSED_MAX_ROWS = 1 << 20


@dataclass(frozen=True)
class Plan:
    info: DistInfo  # rank, world size, this process's device
    fused: bool  # the fused SGD step trains (no autograd, no optimizer object)
    bucket: bool  # length-bucketed batches
    sparse: bool  # sparse embedding gradients
    pin_memory: bool  # page-locked batches (async host-to-GPU copies)
    train_rows: int


def uses_fused_step(cfg: TrainConfig, *, train_rows: int | None = None) -> bool:
    """`cfg.fused`, or when None: the fused SGD step for a model it can train, with sgd without weight decay or
    DataParallel, on training data of at most `FUSED_MAX_ROWS` rows (larger corpora stream through autograd)."""
    if cfg.fused is not None:
        return cfg.fused
    cfg = settle_defaults(cfg)  # optimizer, weight decay, ... None: the model's
    fits = train_rows is None or train_rows <= FUSED_MAX_ROWS
    return (fits and cfg.model in FUSED_MODELS and cfg.optimizer == "sgd" and not cfg.weight_decay
            and cfg.parallel != "dp" and not cfg.freeze_embeddings and not cfg.clip_grad and cfg.accumulate == 1
            and cfg.precision == "fp32" and not cfg.warmup and not cfg.compile)


def uses_bucketing(cfg: TrainConfig, *, train_rows: int | None = None) -> bool:
    """`cfg.bucket`, or when None: on for the autograd loop (less padding), off for the fused step.

    Why off: the fused step's batches have no padding, and length buckets put the copies of a repeated text
    in one batch (AG_NEWS cycled 4x: test accuracy 0.854 bucketed, 0.8815 random; docs/training-speed.md).
    """
    return cfg.bucket if cfg.bucket is not None else not uses_fused_step(cfg, train_rows=train_rows)


def make_plan(cfg: TrainConfig, info: DistInfo, *, train_rows: int) -> Plan:
    """Settle the derived settings; ValueError where the config asks for what this run cannot do."""
    cfg = settle_defaults(cfg)
    if cfg.fused and train_rows > FUSED_MAX_ROWS:
        raise ValueError(f"--fused holds every training text in memory and lists the whole epoch: the training data "
                         f"has {train_rows:,} rows, more than {FUSED_MAX_ROWS:,}; use --no-fused (the streaming loop)")
    fused = uses_fused_step(cfg, train_rows=train_rows)
    if cfg.hogwild > 1 and not (fused and info.device.type == "cpu"):
        raise ValueError(f"--hogwild {cfg.hogwild} needs the fused SGD step on the CPU; this run has "
                         f"{'the fused step' if fused else 'the autograd loop'} on {info.device} (drop --hogwild, "
                         "or use --device cpu with sgd, no weight decay, no --no-fused)")
    if cfg.precision == "fp16" and info.device.type != "cuda":
        raise ValueError(f"--precision fp16 needs a CUDA GPU (autocast with a gradient scaler); this run is on "
                         f"{info.device}: use --precision bf16 or fp32")
    if fused and (cfg.clip_grad or cfg.accumulate > 1 or cfg.precision != "fp32" or cfg.compile):
        raise ValueError("--clip-grad, --accumulate, --precision bf16/fp16 and --compile work in the autograd loop: "
                         "use --no-fused")
    sparse = cfg.sparse if cfg.sparse is not None else (info.device.type == "cpu" and cfg.optimizer == "sgd")
    pin = info.device.type == "cuda" if cfg.pin_memory is None else cfg.pin_memory
    return Plan(info, fused, uses_bucketing(cfg, train_rows=train_rows), sparse, pin, train_rows)
