"""Spatial sum-pooling of event frames, to bring a sensor to a model's input size (e.g. CIFAR10-DVS 128×128 → 64×64,
the resolution of the spike-driven transformer's CIFAR10-DVS configuration). Event counts are summed over each
``k × k`` block, so no event is lost."""

from __future__ import annotations

import torch
import torch.nn.functional as F

__all__ = ["PoolFrames"]


class PoolFrames:
    """``[T, P, H, W]`` → ``[T, P, H/k, W/k]`` by summing ``k × k`` blocks (``H``, ``W`` divisible by ``k``)."""

    def __init__(self, k: int):
        if not isinstance(k, int) or k < 1:
            raise ValueError(f"k: expected an int >= 1, got {k!r}")
        self.k = k

    def __call__(self, x: torch.Tensor) -> torch.Tensor:
        if x.dim() != 4 or x.shape[-1] % self.k or x.shape[-2] % self.k:
            raise ValueError(f"PoolFrames({self.k}): expected frames [T, P, H, W] with H, W divisible by {self.k}, "
                             f"got {tuple(x.shape)}")
        return F.avg_pool2d(x, self.k) * (self.k * self.k)

    def __repr__(self) -> str:
        return f"PoolFrames({self.k})"
