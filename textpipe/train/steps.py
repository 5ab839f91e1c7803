"""One optimizer step of the autograd loop, with the habits of real models: micro-batches (gradient
accumulation), autocast (bf16/fp16, a gradient scaler for fp16), gradient clipping, and the out-of-memory
backoff (halve the micro-batch, keep the batch, free the cache, say so, go on); and `find_batch_size`, the
trial behind `--batch-size auto`.

    >>> find_batch_size(lambda b: None if b <= 96 else (_ for _ in ()).throw(torch.cuda.OutOfMemoryError()),
    ...                 start=16, limit=1024)
    64
"""
from __future__ import annotations

import contextlib
from collections.abc import Callable
from dataclasses import dataclass

import torch
from torch import nn

from textpipe.models import forward

__all__ = ["StepOptions", "cross_entropy", "autocast", "make_scaler", "train_step", "step_with_backoff", "find_batch_size",
           "peak_gpu_mb"]


@dataclass
class StepOptions:
    """How `train_step` runs: micro-batches per step (raised by the OOM backoff), precision, clipping."""
    accumulate: int = 1  # micro-batches per optimizer step
    precision: str = "fp32"  # fp32 | bf16 | fp16
    clip_grad: float = 0.0  # max gradient norm, 0 = off
    scaler: object = None  # torch.amp.GradScaler with fp16, else None
    class_weights: torch.Tensor | None = None  # the loss weight of each class (--class-weight), or None
    label_smoothing: float = 0.0  # --label-smoothing


def autocast(precision: str, device: torch.device):
    """The autocast context of `precision` on `device` (fp32: none). CPU autocast takes bf16 only."""
    if precision == "fp32":
        return contextlib.nullcontext()
    if device.type == "cpu" and precision != "bf16":
        raise ValueError(f"--precision {precision} needs a CUDA GPU; the CPU runs fp32 or bf16")
    return torch.autocast(device.type, dtype=torch.bfloat16 if precision == "bf16" else torch.float16)


def make_scaler(precision: str, device: torch.device):
    """A gradient scaler for fp16 on CUDA (small fp16 gradients would underflow to zero), else None."""
    return torch.amp.GradScaler(device.type) if precision == "fp16" else None


def cross_entropy(logits: torch.Tensor, y: torch.Tensor, *, class_weights: torch.Tensor | None = None,
                  label_smoothing: float = 0.0) -> torch.Tensor:
    """The batch's training loss, as the fused step (`textpipe.train.fused.sgd_step`) takes its gradient: the mean
    over texts of each text's (label-smoothed) cross-entropy times its class's weight."""
    loss = nn.functional.cross_entropy(logits, y, label_smoothing=label_smoothing,
                                       reduction="mean" if class_weights is None else "none")
    return loss if class_weights is None else (loss * class_weights.index_select(0, y)).mean()


def train_step(model: nn.Module, opt: torch.optim.Optimizer, ids: torch.Tensor, lengths: torch.Tensor,
               y: torch.Tensor, opts: StepOptions) -> tuple[float, int]:
    """One optimizer step on the batch, in `opts.accumulate` micro-batches; returns (loss sum, correct).

    The gradient is the batch's mean loss whatever the split: each micro-batch's mean loss is weighted by its
    share of the batch. With one micro-batch this is exactly `cross_entropy(model(ids), y).backward()`.
    """
    B, device = y.numel(), ids.device
    opt.zero_grad(set_to_none=True)
    chunks = [c for c in zip(*(t.tensor_split(opts.accumulate) for t in (ids, lengths, y))) if c[2].numel()]
    loss_sum, correct = 0.0, 0
    for i, (ids_c, len_c, y_c) in enumerate(chunks):
        # DDP: all-reduce the gradients once, after the last micro-batch
        sync = contextlib.nullcontext() if i == len(chunks) - 1 or not hasattr(model, "no_sync") else model.no_sync()
        with sync:
            with autocast(opts.precision, device):
                logits = forward(model, ids_c, len_c)  # (b, C)
            loss = cross_entropy(logits.float(), y_c, class_weights=opts.class_weights,
                                 label_smoothing=opts.label_smoothing)
            scaled = loss if len(chunks) == 1 else loss * (y_c.numel() / B)
            (opts.scaler.scale(scaled) if opts.scaler is not None else scaled).backward()
        # Python numbers: holding loss tensors would keep their graphs alive
        loss_sum += loss.item() * y_c.numel()
        correct += (logits.argmax(1) == y_c).sum().item()
    if opts.scaler is not None:
        opts.scaler.unscale_(opt)  # clip the true gradients
    if opts.clip_grad:
        nn.utils.clip_grad_norm_([p for g in opt.param_groups for p in g["params"]], opts.clip_grad)
    if opts.scaler is not None:
        opts.scaler.step(opt)
        opts.scaler.update()
    else:
        opt.step()
    return loss_sum, correct


def step_with_backoff(model, opt, ids, lengths, y, opts: StepOptions, *, step: int,
                      say: Callable[[str], object] = print) -> tuple[float, int]:
    """`train_step`, and on a CUDA out-of-memory error: zero the gradients, free the cached memory, double
    `opts.accumulate` (half the micro-batch, the same batch per step), say so in one line, and retry the batch.

    A DDP-wrapped `model` (this process is one rank): the error stops the run instead, saying which `--accumulate`
    to resume with. One rank cannot retry on its own: its peers are already inside the step's collectives (the gradient all-reduce,
    the buffers' broadcast), and after an OOM in the backward pass, the optimizer step or a model with buffers a
    retry would pair its collectives with their next ones (different steps' gradients averaged, no error).

    Raises:
        torch.cuda.OutOfMemoryError: when a micro-batch of one text does not fit, or under DDP.
    """
    while True:
        try:
            return train_step(model, opt, ids, lengths, y, opts)
        except torch.cuda.OutOfMemoryError as e:
            micro = -(-y.numel() // opts.accumulate)
            opt.zero_grad(set_to_none=True)
            if torch.cuda.is_available():
                torch.cuda.empty_cache()
            if micro <= 1:
                raise
            if isinstance(model, nn.parallel.DistributedDataParallel):
                raise torch.cuda.OutOfMemoryError(
                    f"out of memory at step {step + 1} with micro-batches of {micro} texts on this DDP rank, which "
                    f"cannot back off alone (its peers are inside the step's collectives): resume with --resume "
                    f"--accumulate {opts.accumulate * 2} (the same batch per step, half the memory)") from e
            opts.accumulate *= 2
            say(f"out of memory at step {step + 1} with micro-batches of {micro} texts: retrying with "
                f"{-(-y.numel() // opts.accumulate)} ({opts.accumulate} micro-batches per step, the same batch of "
                f"{y.numel()}); cache freed")


def find_batch_size(try_batch: Callable[[int], object], *, start: int, limit: int) -> int:
    """The largest of start, 2*start, 4*start, ... (at most `limit`) for which `try_batch(b)` runs without a
    CUDA out-of-memory error; the trial behind `--batch-size auto`.

    Raises:
        torch.cuda.OutOfMemoryError: even `start` does not fit.
    """
    best, b = None, start
    while b <= limit:
        try:
            try_batch(b)
        except torch.cuda.OutOfMemoryError:
            if torch.cuda.is_available():
                torch.cuda.empty_cache()
            break
        best, b = b, b * 2
    if best is None:
        raise torch.cuda.OutOfMemoryError(f"--batch-size auto: not even {start} texts fit on the device")
    return best


def peak_gpu_mb(device: torch.device, *, reset: bool = True) -> float | None:
    """The peak GPU memory allocated since the last reset, in MiB (None on the CPU); then resets the peak
    (`reset`: each epoch's record holds its own peak)."""
    if device.type != "cuda":
        return None
    peak = torch.cuda.max_memory_allocated(device) / 2**20
    if reset:
        torch.cuda.reset_peak_memory_stats(device)
    return round(peak, 1)
