r"""Spiking MLP branch of the spike-driven transformers (token-wise, as 1×1 convolutions).

On ``x`` ``[T, B, C, H, W]`` (membrane-level values), hidden width ``C_h``:

.. math::

    u = \mathrm{BN}_1(W_1\,\mathrm{SN}(x) + b_1)\ (+\,x \text{ if hidden\_shortcut}), \qquad
    \text{out} = \mathrm{BN}_2(W_2\,\mathrm{SN}(u) + b_2)

``SN`` is the spike-driven LIF, so both products take spikes. The branch output is returned; the block adds the
residual. ``hidden_shortcut`` (possible only when ``C_h = C``) adds the input to the hidden membrane, as the v1
reference code does whenever ``C_h = C``. Parameters: ``C·C_h + C_h`` and ``C_h·C + C`` (weights, biases) plus two
BatchNorms.
"""
from __future__ import annotations

import torch
from torch import nn

from snn.layers.sdt_neuron import spike_driven_lif
from snn.layers.per_step import apply_per_step

__all__ = ["SpikeDrivenMLP"]


class SpikeDrivenMLP(nn.Module):
    """Two spiking 1×1-conv layers with BatchNorm (see the module docstring).

    Args:
        dim: input/output channels ``C``.
        hidden: hidden channels ``C_h``.
        hidden_shortcut: add ``x`` to the hidden membrane (needs ``hidden == dim``).

    Shape: ``[T, B, C, H, W]`` → ``[T, B, C, H, W]``.
    """

    def __init__(self, dim: int, hidden: int, hidden_shortcut: bool = False):
        super().__init__()
        if hidden_shortcut and hidden != dim:
            raise ValueError(f"hidden_shortcut: needs hidden == dim, got hidden={hidden}, dim={dim}")
        self.dim, self.hidden, self.hidden_shortcut = int(dim), int(hidden), bool(hidden_shortcut)
        self.fc1_lif = spike_driven_lif()
        self.fc1_conv = nn.Conv2d(dim, hidden, 1)
        self.fc1_bn = nn.BatchNorm2d(hidden)
        self.fc2_lif = spike_driven_lif()
        self.fc2_conv = nn.Conv2d(hidden, dim, 1)
        self.fc2_bn = nn.BatchNorm2d(dim)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        if x.dim() != 5 or x.shape[2] != self.dim:
            raise ValueError(f"SpikeDrivenMLP: x must be [T, B, {self.dim}, H, W], got {tuple(x.shape)}")
        u = apply_per_step(lambda f: self.fc1_bn(self.fc1_conv(f)), self.fc1_lif(x))
        if self.hidden_shortcut:
            u = u + x
        return apply_per_step(lambda f: self.fc2_bn(self.fc2_conv(f)), self.fc2_lif(u))

    def extra_repr(self) -> str:
        return f"dim={self.dim}, hidden={self.hidden}, hidden_shortcut={self.hidden_shortcut}"
