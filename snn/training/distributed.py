"""Distributed data parallel through ``torch.distributed``, launched by ``torchrun`` (NCCL on GPUs, gloo on CPUs).

``torchrun --nproc_per_node=N -m snn.cli.main train CONFIG`` sets ``RANK``, ``WORLD_SIZE``, ``LOCAL_RANK`` and
``MASTER_ADDR/PORT``; :func:`init_from_env` joins the process group, each rank trains on its
``DistributedSampler`` share of every global batch, gradients are averaged by ``DistributedDataParallel``,
and only rank 0 writes files.
"""
from __future__ import annotations

import os
from dataclasses import dataclass

import torch
import torch.distributed as dist

__all__ = ["DistInfo", "init_from_env", "current", "all_reduce_sum", "barrier"]


@dataclass(frozen=True)
class DistInfo:
    """Rank, world size and local rank of this process (``world_size == 1``: not distributed)."""

    rank: int = 0
    world_size: int = 1
    local_rank: int = 0

    @property
    def enabled(self) -> bool:
        return self.world_size > 1

    @property
    def is_main(self) -> bool:
        return self.rank == 0


def current() -> DistInfo:
    """The process group this process belongs to (``DistInfo()`` when none is initialised)."""
    if dist.is_available() and dist.is_initialized():
        return DistInfo(dist.get_rank(), dist.get_world_size(), int(os.environ.get("LOCAL_RANK", dist.get_rank())))
    return DistInfo()


def init_from_env(device: str = "auto") -> DistInfo:
    """Join the process group described by torchrun's environment variables (no-op when ``WORLD_SIZE`` ≤ 1).

    The backend is NCCL when the run uses CUDA, gloo otherwise.
    """
    world = int(os.environ.get("WORLD_SIZE", "1"))
    if world <= 1:
        return current()
    if not dist.is_initialized():
        use_cuda = torch.cuda.is_available() and device != "cpu"
        backend = "nccl" if use_cuda else "gloo"
        if use_cuda:
            torch.cuda.set_device(int(os.environ.get("LOCAL_RANK", "0")))
        dist.init_process_group(backend=backend)
    return current()


def all_reduce_sum(values: list[float], device: torch.device | str = "cpu") -> list[float]:
    """Sum a list of numbers over all ranks (identity when not distributed)."""
    if not current().enabled:
        return values
    t = torch.tensor(values, dtype=torch.float64, device=device)
    dist.all_reduce(t, op=dist.ReduceOp.SUM)
    return t.tolist()


def barrier() -> None:
    if current().enabled:
        dist.barrier()
