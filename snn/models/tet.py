r"""Temporal efficient training loss (TET, Deng et al., ICLR 2022), as the spike-driven transformers use it.

For per-step outputs ``O[t]`` ``[T, B, K]`` and labels ``y``:

.. math::

    \mathcal{L} = (1 - \lambda)\,\frac{1}{T}\sum_{t=1}^{T} \mathrm{CE}(O[t], y)
                 + \lambda\,\frac{1}{T B K}\sum_{t,b,k} (O[t,b,k] - \phi)^2

``λ`` (``lamb``) weighs the MSE regulariser pulling outputs towards ``φ`` (``means``); the CIFAR10-DVS configuration
of the reference uses ``φ = 1``, ``λ = 0.001``. Evaluation uses the mean over time, ``mean_t O[t]``.
"""
from __future__ import annotations

import torch
import torch.nn.functional as F

__all__ = ["tet_loss"]


def tet_loss(outputs: torch.Tensor, labels: torch.Tensor, means: float = 1.0, lamb: float = 0.0,
             label_smoothing: float = 0.0) -> torch.Tensor:
    """TET loss of per-step logits ``outputs`` ``[T, B, K]`` against integer ``labels`` ``[B]`` (see module docstring)."""
    if outputs.dim() != 3 or labels.shape != outputs.shape[1:2]:
        raise ValueError(f"outputs: expected [T, B, K] with labels [B], got {tuple(outputs.shape)} and {tuple(labels.shape)}")
    T, B, K = outputs.shape
    per_step = F.cross_entropy(outputs.reshape(T * B, K), labels.repeat(T), label_smoothing=label_smoothing)
    if lamb == 0:
        return per_step
    return (1.0 - lamb) * per_step + lamb * F.mse_loss(outputs, torch.full_like(outputs, means))
