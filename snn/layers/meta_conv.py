r"""Meta-SpikeFormer's convolutional stages (Yao et al., ICLR 2024): separable conv, conv block, downsampling.

All act on ``[T, B, C, H, W]`` membrane-level values and begin each branch with the spike-driven LIF ``SN``.

* :class:`SepConv` (inverted separable conv, MobileNetV2 style, expansion 2, 7×7 depth-wise)::

      SepConv(x) = BN_2(W_pw2 · DW_7x7(SN(BN_1(W_pw1 · SN(x)))))

* :class:`MetaConvBlock` (two membrane shortcuts)::

      x' = x + SepConv(x),   y = x' + BN_b(W_b ⊛ SN(BN_a(W_a ⊛ SN(x'))))     (W_a: C → rC, W_b: rC → C, 3×3)

* :class:`SpikingDownsample`: ``BN(W ⊛ SN(x))`` with a strided convolution (with bias); the first one of the
  network takes the raw input and has no neuron in front.

No convolution has a bias except the downsampling ones, as in the reference code.
"""
from __future__ import annotations

import torch
from torch import nn

from snn.layers.sdt_neuron import spike_driven_lif
from snn.layers.per_step import apply_per_step

__all__ = ["SepConv", "MetaConvBlock", "SpikingDownsample"]


class SepConv(nn.Module):
    """Spiking inverted separable convolution (see the module docstring). Shape ``[T, B, C, H, W]`` → same."""

    def __init__(self, dim: int, expansion: float = 2.0, kernel_size: int = 7):
        super().__init__()
        mid = int(expansion * dim)
        self.lif1 = spike_driven_lif()
        self.pwconv1 = nn.Conv2d(dim, mid, 1, bias=False)
        self.bn1 = nn.BatchNorm2d(mid)
        self.lif2 = spike_driven_lif()
        self.dwconv = nn.Conv2d(mid, mid, kernel_size, padding=kernel_size // 2, groups=mid, bias=False)
        self.pwconv2 = nn.Conv2d(mid, dim, 1, bias=False)
        self.bn2 = nn.BatchNorm2d(dim)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        h = self.lif2(apply_per_step(lambda f: self.bn1(self.pwconv1(f)), self.lif1(x)))
        return apply_per_step(lambda f: self.bn2(self.pwconv2(self.dwconv(f))), h)


class MetaConvBlock(nn.Module):
    """Meta-SpikeFormer conv block (see the module docstring).

    Args:
        dim: channels ``C``.
        mlp_ratio: hidden width ``r`` of the channel MLP made of two 3×3 convolutions.

    Shape: ``[T, B, C, H, W]`` → ``[T, B, C, H, W]``.
    """

    def __init__(self, dim: int, mlp_ratio: int = 4):
        super().__init__()
        hidden = int(dim * mlp_ratio)
        self.conv = SepConv(dim)
        self.lif1 = spike_driven_lif()
        self.conv1 = nn.Conv2d(dim, hidden, 3, padding=1, bias=False)
        self.bn1 = nn.BatchNorm2d(hidden)
        self.lif2 = spike_driven_lif()
        self.conv2 = nn.Conv2d(hidden, dim, 3, padding=1, bias=False)
        self.bn2 = nn.BatchNorm2d(dim)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        x = x + self.conv(x)
        h = self.lif2(apply_per_step(lambda f: self.bn1(self.conv1(f)), self.lif1(x)))
        return x + apply_per_step(lambda f: self.bn2(self.conv2(f)), h)


class SpikingDownsample(nn.Module):
    """Strided conv + BatchNorm, preceded by a LIF unless it is the first layer (which sees the raw input).

    Shape: ``[T, B, C_in, H, W]`` → ``[T, B, C_out, H', W']`` with the usual convolution arithmetic.
    """

    def __init__(self, in_channels: int, out_channels: int, kernel_size: int = 3, stride: int = 2, padding: int = 1,
                 first_layer: bool = False):
        super().__init__()
        self.lif = None if first_layer else spike_driven_lif()
        self.conv = nn.Conv2d(in_channels, out_channels, kernel_size, stride, padding)
        self.bn = nn.BatchNorm2d(out_channels)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        if self.lif is not None:
            x = self.lif(x)
        return apply_per_step(lambda f: self.bn(self.conv(f)), x)
