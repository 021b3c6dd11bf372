r"""Spiking patch splitting (SPS) stem with relative position embedding (Yao et al. 2023, ``MS_SPS``).

Four stages of 3×3 convolution + BatchNorm, widths ``D/8, D/4, D/2, D``; stage ``i`` is followed by a 3×3
stride-2 max-pool when ``pooling[i] == "1"``. The first three stages fire (LIF) before pooling; the last one
pools its BatchNorm output ``u`` and then

.. math::

    \text{out} = u + \mathrm{BN}(W_{rpe} * \mathrm{SN}(u))

(the relative position embedding, a 3×3 convolution of the spikes). The output is membrane-level ``[T, B, D, H', W']``
with ``H' = H / 2^p`` (``p`` pools), the tokens of the blocks that follow. The first convolution sees the raw input
(real-valued frames under direct encoding, or event counts).

``widths`` replaces the first three stage widths ``D/8, D/4, D/2`` (default: the reference's). The audio variant
uses it because its input has many channels (tens of frequency bands) where an image has three: the reference's
first stage of ``D/8`` spiking channels would then be a bottleneck right after the input.

``kernel`` replaces the stage convolutions' size 3 (odd, padding ``kernel // 2`` keeps the size; the RPE conv
stays 3). In 1-D it sets the stem's receptive field over frames: with pooling ``"0011"`` an output token sees
``1 + 3(k-1) + 2 + 2(k-1) + 4 + 4·2 = 5k + 10`` frames (25 at the reference's k = 3).

``dims=1`` is the same stem over one axis (``Conv1d``/``MaxPool1d``, kernel 3): input ``[T, B, C, L]``, output
``[T, B, D, 1, L / 2^p]`` — the audio variant, whose tokens are time frames.
"""
from __future__ import annotations

import torch
from torch import nn

from snn.layers.sdt_neuron import spike_driven_lif
from snn.layers.per_step import apply_per_step

__all__ = ["SpikingPatchSplit"]


class SpikingPatchSplit(nn.Module):
    """SPS stem (see the module docstring).

    Args:
        in_channels: input channels (3 for RGB, 2 for DVS polarities, the frequency channels for audio).
        dim: output channels ``D`` (a multiple of 8).
        size: input spatial size ``(H, W)`` (``dims=2``) or length ``L`` (``dims=1``); each must be divisible by
            ``2^p``, ``p`` the number of pools.
        pooling: four characters ``"0"``/``"1"``: which stages end with a stride-2 max-pool (reference: ``"1111"``
            for ImageNet, ``"0011"`` for CIFAR and CIFAR10-DVS, ``"0111"`` for DVS128 Gesture).
        dims: 2 (images) or 1 (sequences).
        widths: channels of the first three stages (``None``: the reference's ``(D/8, D/4, D/2)``).
        kernel: size of the four stage convolutions (odd; reference 3).

    Shape: ``[T, B, C, H, W]`` → ``[T, B, D, H/2^p, W/2^p]`` (``dims=2``); ``[T, B, C, L]`` → ``[T, B, D, 1, L/2^p]``.
    """

    def __init__(self, in_channels: int, dim: int, size: int | tuple[int, int], pooling: str = "1111", dims: int = 2,
                 widths: tuple[int, int, int] | None = None, kernel: int = 3):
        super().__init__()
        if dims not in (1, 2):
            raise ValueError(f"dims: expected 1 or 2, got {dims!r}")
        if not isinstance(dim, int) or dim < 8 or dim % 8:
            raise ValueError(f"dim: expected a positive multiple of 8 (stage widths dim/8, dim/4, dim/2), got {dim!r}")
        if not isinstance(pooling, str) or len(pooling) != 4 or set(pooling) - {"0", "1"}:
            raise ValueError(f"pooling: expected four characters '0'/'1' such as '1111', got {pooling!r}")
        if widths is not None and (len(tuple(widths)) != 3 or not all(isinstance(w, int) and w > 0 for w in widths)):
            raise ValueError(f"widths: expected three positive ints (the first three stages' channels), got {widths!r}")
        if not isinstance(kernel, int) or kernel < 1 or kernel % 2 == 0:
            raise ValueError(f"kernel: expected an odd positive int (the stage convolutions' size), got {kernel!r}")
        sizes = (size,) if isinstance(size, int) else tuple(size)
        if len(sizes) != dims or not all(isinstance(s, int) and s > 0 for s in sizes):
            raise ValueError(f"size: expected {dims} positive int(s), got {size!r}")
        factor = 2 ** pooling.count("1")
        if any(s % factor for s in sizes):
            raise ValueError(f"size: every dimension must be divisible by the stem's downsampling {factor} "
                             f"(pooling={pooling!r}), got {size!r}")
        self.in_channels, self.dim, self.size, self.pooling, self.dims = int(in_channels), dim, sizes, pooling, dims
        self.out_size = tuple(s // factor for s in sizes)
        conv, bn, pool = (nn.Conv2d, nn.BatchNorm2d, nn.MaxPool2d) if dims == 2 else (nn.Conv1d, nn.BatchNorm1d, nn.MaxPool1d)
        self.widths = tuple(widths) if widths is not None else (dim // 8, dim // 4, dim // 2)
        widths = [in_channels, *self.widths, dim]
        self.kernel = kernel
        self.convs = nn.ModuleList(conv(widths[i], widths[i + 1], kernel, padding=kernel // 2, bias=False)
                                   for i in range(4))
        self.bns = nn.ModuleList(bn(widths[i + 1]) for i in range(4))
        self.lifs = nn.ModuleList(spike_driven_lif() for _ in range(4))
        self.pool = pool(3, 2, 1)
        self.rpe_conv = conv(dim, dim, 3, padding=1, bias=False)
        self.rpe_bn = bn(dim)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        expected = (self.in_channels, *self.size)
        if not isinstance(x, torch.Tensor) or x.dim() != 3 + self.dims or tuple(x.shape[2:]) != expected:
            got = tuple(x.shape) if isinstance(x, torch.Tensor) else type(x).__name__
            raise ValueError(f"SpikingPatchSplit: x must be [T, B, {', '.join(map(str, expected))}], got {got}")
        for i in range(3):
            x = self.lifs[i](apply_per_step(lambda f: self.bns[i](self.convs[i](f)), x))
            if self.pooling[i] == "1":
                x = apply_per_step(self.pool, x)
        u = apply_per_step(lambda f: self.bns[3](self.convs[3](f)), x)
        if self.pooling[3] == "1":
            u = apply_per_step(self.pool, u)
        out = u + apply_per_step(lambda f: self.rpe_bn(self.rpe_conv(f)), self.lifs[3](u))
        return out if self.dims == 2 else out.unsqueeze(3)

    def extra_repr(self) -> str:
        return f"in_channels={self.in_channels}, dim={self.dim}, widths={self.widths}, kernel={self.kernel}, size={self.size}, pooling={self.pooling!r}, dims={self.dims}"
