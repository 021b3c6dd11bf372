"""Apply a frame-wise torch module to every time step of a time-major tensor at once.

Convolutions and BatchNorm see one image per (step, sample): ``[T, B, ...]`` is viewed as ``[T·B, ...]``, the
module runs once, and the result is viewed back as ``[T, B, ...']``. BatchNorm therefore normalises over the
``T·B`` frames together, as the spike-driven transformers' reference code does.
"""
from __future__ import annotations

import torch
from torch import nn

__all__ = ["per_step"]


def per_step(module: nn.Module, x: torch.Tensor) -> torch.Tensor:
    """``module`` applied to all ``T·B`` frames of ``x`` ``[T, B, ...]`` → ``[T, B, ...']``."""
    return module(x.flatten(0, 1)).unflatten(0, x.shape[:2])
