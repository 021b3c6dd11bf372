r"""Apply a stateless per-sample module (convolution, pooling, flatten) to every time step of a sequence.

.. math::

    y[t] = f(x[t]) \quad\text{for } t = 0 \dots T-1,

computed as one call on the time steps folded into the batch: ``f(x.flatten(0, 1))`` ``[T·B, ...]``, then unfolded
to ``[T, B, ...]``. ``torch.nn.Conv2d`` and friends accept only ``[N, C, H, W]``; wrapped in :class:`PerStep` they
take time-major input like every other layer of this package (SpikingJelly's ``SeqToANNContainer`` plays this
role there).
"""
from __future__ import annotations

import torch
from torch import nn

__all__ = ["PerStep", "apply_per_step"]


def apply_per_step(module: nn.Module, x: torch.Tensor) -> torch.Tensor:
    """``module`` applied to all ``T·B`` frames of ``x`` ``[T, B, ...]`` → ``[T, B, ...']`` (one call; BatchNorm
    inside normalises over the ``T·B`` frames together, as the spike-driven transformers' reference code does)."""
    return module(x.flatten(0, 1)).unflatten(0, x.shape[:2])


class PerStep(nn.Module):
    """Run ``module`` on each step of ``x`` ``[T, B, ...]`` (time folded into the batch): ``[T, B, ...] → [T, B, ...']``.

    Args:
        module: a module without state across calls that maps ``[N, ...]`` to ``[N, ...']``.
    """

    def __init__(self, module: nn.Module) -> None:
        super().__init__()
        if not isinstance(module, nn.Module):
            raise TypeError(f"module: expected a torch.nn.Module, got {type(module).__name__}")
        self.module = module

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        if not isinstance(x, torch.Tensor) or x.dim() < 2:
            raise ValueError(f"x: expected a tensor [T, B, ...], got {getattr(x, 'shape', type(x).__name__)}")
        return apply_per_step(self.module, x)
