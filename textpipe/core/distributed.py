"""Distributed helpers for `torchrun`: init, rank-0 printing, unwrapping, replica digests, cleanup (nanochat-style).

Run: torchrun --nproc_per_node=N -m textpipe.train --parallel ddp   (NCCL on CUDA, gloo on CPU)
"""
from __future__ import annotations

import hashlib
import os
from dataclasses import dataclass

import torch
import torch.distributed as dist
from torch import nn

TORCHRUN_VARS = ("RANK", "LOCAL_RANK", "WORLD_SIZE")


@dataclass(frozen=True)
class DistInfo:
    rank: int  # global rank, 0..world_size-1
    local_rank: int  # rank on this node: picks the GPU
    world_size: int  # number of processes in all
    device: torch.device  # the device this process trains on


def init_distributed(device: str = "auto") -> DistInfo:
    """Join the process group that torchrun set up; NCCL with one GPU per process, else gloo on CPU.

    Raises:
        RuntimeError: when RANK/LOCAL_RANK/WORLD_SIZE are not set (not started by torchrun).
    """
    missing = [v for v in TORCHRUN_VARS if v not in os.environ]
    if missing:
        raise RuntimeError(f"--parallel ddp needs the torchrun environment, but {'/'.join(missing)} "
                           "is not set; start it with: torchrun --nproc_per_node=N -m textpipe.train "
                           "--parallel ddp ...")
    rank, local_rank = int(os.environ["RANK"]), int(os.environ["LOCAL_RANK"])
    world_size = int(os.environ["WORLD_SIZE"])
    if pick_device(device).type == "cuda":
        dev = torch.device("cuda", local_rank)
        torch.cuda.set_device(dev)
        dist.init_process_group("nccl", device_id=dev)
    else:
        dev = torch.device("cpu")
        dist.init_process_group("gloo")
    return DistInfo(rank, local_rank, world_size, dev)


def pick_device(name: str = "auto") -> torch.device:
    """`auto` = the GPU if one is visible, else the CPU; anything else as given (checked)."""
    if name == "auto":
        return torch.device("cuda" if torch.cuda.is_available() else "cpu")
    if name.startswith("cuda") and not torch.cuda.is_available():
        raise ValueError(f"--device {name}: no CUDA GPU is visible here; use --device cpu (or auto)")
    try:
        return torch.device(name)
    except RuntimeError:
        raise ValueError(f"--device must be auto, cpu, cuda or cuda:N, got {name!r}") from None


def is_main() -> bool:
    """True on rank 0, and in any process that is not part of a process group."""
    return not dist.is_initialized() or dist.get_rank() == 0


def print0(*args, **kwargs) -> None:
    """`print` on rank 0 only."""
    if is_main():
        print(*args, **kwargs)


def unwrap(model: nn.Module) -> nn.Module:
    """The bare module inside `nn.DataParallel` / `DistributedDataParallel` (save this one)."""
    if isinstance(model, (nn.DataParallel, nn.parallel.DistributedDataParallel)):
        return model.module
    return model


def weights_digest(model: nn.Module) -> str:
    """SHA-256 of all weights, bit for bit: ranks compare digests to check that replicas stayed identical."""
    h = hashlib.sha256()
    for name, t in unwrap(model).state_dict().items():
        h.update(name.encode())
        h.update(t.detach().cpu().contiguous().numpy().tobytes())
    return h.hexdigest()


def cleanup() -> None:
    """Destroy the process group, if there is one (safe to call twice and on error paths)."""
    if dist.is_initialized():
        dist.destroy_process_group()
