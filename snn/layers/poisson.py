r"""Poisson rate coding: intensities in ``[0, 1]`` become independent Bernoulli spike trains.

For an intensity ``x_i ∈ [0, 1]``, a peak rate ``r_max`` (Hz) and a step ``Δt`` (ms), every step ``t = 0 … T-1``
draws, independently,

.. math::

    s_i[t] \sim \mathrm{Bernoulli}(p_i), \qquad p_i = \min(1,\; x_i \, r_{max} \, \Delta t / 1000)

so a pixel of intensity ``x`` fires about ``x · r_max`` spikes per second (Diehl & Cook 2015 present MNIST pixels
at up to 63.75 Hz). In training mode the draws use torch's global generator (``snn train`` seeds it and keeps its
state in checkpoints). In eval mode (with ``frozen_eval``) each sample's trains are a fixed function of its
intensities — drawn from a generator seeded with the CRC-32 of the sample's bytes — so an evaluation repeats exactly
(``snn eval`` reproduces a run's test accuracy) whatever the batch size or the state of the global generator.

Energy counting (:mod:`snn.energy.protocol`): the encoder makes its own time axis of ``T`` steps, all real for every
sample, from one frame of intensities — the frame an ANN equivalent would read (:class:`~snn.energy.protocol.OwnTimeAxis`).
"""
from __future__ import annotations

import zlib

import torch
from torch import nn

__all__ = ["PoissonEncoder"]


class PoissonEncoder(nn.Module):
    """Intensities ``[B, F]`` in ``[0, 1]`` → spikes ``[T, B, F]`` (equations in the module docstring).

    Args:
        steps: time steps ``T``.
        max_rate_hz: rate ``r_max`` of an intensity of 1, Hz.
        dt_ms: step ``Δt``, ms.
        frozen_eval: in eval mode, draw each sample's trains from a generator seeded by its intensities.
    """

    def __init__(self, steps: int, max_rate_hz: float, dt_ms: float = 1.0, frozen_eval: bool = True) -> None:
        super().__init__()
        if not isinstance(steps, int) or isinstance(steps, bool) or steps < 1:
            raise ValueError(f"steps: expected an int >= 1, got {steps!r}")
        for name, v in (("max_rate_hz", max_rate_hz), ("dt_ms", dt_ms)):
            if not (isinstance(v, (int, float)) and not isinstance(v, bool) and v > 0 and v != float("inf")):
                raise ValueError(f"{name}: expected a finite number > 0, got {v!r}")
        self.steps, self.max_rate_hz, self.dt_ms = steps, float(max_rate_hz), float(dt_ms)
        self.frozen_eval = bool(frozen_eval)

    def probability(self, x: torch.Tensor) -> torch.Tensor:
        """Spike probability per step ``p`` for intensities ``x`` (any shape)."""
        return (x * (self.max_rate_hz * self.dt_ms / 1000.0)).clamp(0.0, 1.0)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        if not isinstance(x, torch.Tensor):
            raise TypeError(f"PoissonEncoder: x must be a tensor of intensities, got {type(x).__name__}")
        p = self.probability(x)
        if self.training or not self.frozen_eval or p.dim() == 0:
            return torch.bernoulli(p.unsqueeze(0).expand(self.steps, *p.shape).contiguous())
        out = torch.empty((self.steps, *p.shape), dtype=p.dtype, device=p.device)
        for b in range(p.shape[0]):
            seed = zlib.crc32(x[b].detach().cpu().contiguous().numpy().tobytes())
            g = torch.Generator(device=p.device).manual_seed(seed)
            u = torch.rand((self.steps, *p.shape[1:]), generator=g, dtype=p.dtype, device=p.device)
            out[:, b] = (u < p[b]).to(p.dtype)
        return out

    def count_operations(self, inputs: tuple, output: torch.Tensor, ctx: object) -> list:
        """Energy counting protocol: no operations; a time axis of ``steps`` real steps made from one frame."""
        from snn.energy.protocol import OwnTimeAxis

        return [OwnTimeAxis(steps=self.steps, ann_frames=1.0)]

    def extra_repr(self) -> str:
        return (f"steps={self.steps}, max_rate_hz={self.max_rate_hz:g}, dt_ms={self.dt_ms:g}, "
                f"frozen_eval={self.frozen_eval}")
