"""Dropout for time-major spike tensors: one mask per sequence."""
from __future__ import annotations

import torch
from torch import nn

__all__ = ["SequenceDropout"]


class SequenceDropout(nn.Module):
    """Dropout with one mask per sequence: ``x`` ``[T, B, ...]`` → ``x · m / (1 - p)``, ``m ~ Bernoulli(1 - p)`` ``[1, B, ...]``.

    Keeps the set of dropped neurons fixed over the time steps of a sample (SpikingJelly ``layer.Dropout``
    in multi-step mode). Identity in eval mode or with ``p = 0``.
    """

    def __init__(self, p: float = 0.5) -> None:
        super().__init__()
        if not 0.0 <= p < 1.0:
            raise ValueError(f"p must lie in [0, 1), got {p!r}")
        self.p = float(p)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        if not self.training or self.p == 0.0:
            return x
        mask = torch.empty_like(x[:1]).bernoulli_(1.0 - self.p) / (1.0 - self.p)
        return x * mask

    def extra_repr(self) -> str:
        return f"p={self.p}"
