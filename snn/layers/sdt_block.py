r"""Membrane-shortcut transformer block of the spike-driven transformers (v1 and Meta-SpikeFormer).

.. math::

    x' = x + \mathrm{SDSA}(x), \qquad y = x' + \mathrm{MLP}(x')

Each branch starts with a spiking neuron, so the residual stream carries membrane-level real values and every
synaptic operation inside a branch takes spikes (Yao et al. 2023, "membrane shortcut"). ``attention="v1"`` uses
:class:`~snn.layers.attention.SpikeDrivenSelfAttention` (1×1 convs, v1 mask), ``"v2"``
:class:`~snn.layers.attention.SpikeDrivenSelfAttentionV2` (re-parameterisable convs, ``SN(0.125·Q(KᵀV))``).
"""
from __future__ import annotations

import torch
from torch import nn

from snn.layers.attention import SpikeDrivenSelfAttention, SpikeDrivenSelfAttentionV2, check_heads
from snn.layers.sdt_mlp import SpikeDrivenMLP

__all__ = ["SpikeDrivenBlock"]


class SpikeDrivenBlock(nn.Module):
    """One transformer block with membrane shortcuts (see the module docstring).

    Args:
        dim: channels ``C`` (a multiple of ``heads``).
        heads: attention heads.
        mlp_ratio: MLP hidden width ``C_h = int(C · mlp_ratio)``.
        attention: ``"v1"`` or ``"v2"``.
        erode: v1 only: the reference's DVS mode (see :mod:`snn.layers.attention`).
        reference_parameters: v1 only: keep the reference's unused ``talking_heads`` weights.

    Shape: ``[T, B, C, H, W]`` → ``[T, B, C, H, W]``.
    """

    def __init__(self, dim: int, heads: int = 8, mlp_ratio: float = 4.0, attention: str = "v1", erode: bool = False,
                 reference_parameters: bool = True):
        super().__init__()
        check_heads(dim, heads)
        if attention == "v1":
            self.attn = SpikeDrivenSelfAttention(dim, heads, erode=erode, reference_parameters=reference_parameters)
        elif attention == "v2":
            if erode:
                raise ValueError("erode: only the v1 attention has the DVS erode mode, got attention='v2'")
            self.attn = SpikeDrivenSelfAttentionV2(dim, heads)
        else:
            raise ValueError(f"attention: expected 'v1' or 'v2', got {attention!r}")
        hidden = int(dim * mlp_ratio)
        if hidden < 1:
            raise ValueError(f"mlp_ratio: expected a value giving at least one hidden channel, got {mlp_ratio!r}")
        # The v1 reference adds the MLP input to its hidden membrane whenever the widths agree.
        self.mlp = SpikeDrivenMLP(dim, hidden, hidden_shortcut=attention == "v1" and hidden == dim)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        x = x + self.attn(x)
        return x + self.mlp(x)
