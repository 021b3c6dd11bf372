r"""Event-driven ``nn.Conv2d``: a drop-in whose forward and weight gradient skip the zero inputs.

.. math:: y_{n,:,i,j} = b + \sum_{(c, k_h, k_w):\, x_{n,c,h,w} \ne 0} x_{n,c,h,w}\, W_{:, c, k_h, k_w},
    \qquad h = s_h i - p_h + d_h k_h,\; w = s_w j - p_w + d_w k_w

on frames ``x`` ``[N, C_in, H, W]`` (``N = T·B``: the spiking conv nets fold time into the batch). A spike adds one
weight slice ``W_{:, c, k_h, k_w}`` to each output position it reaches instead of the whole convolution being
multiplied out; the layer falls back to ``F.conv2d`` when the input is too dense, for ``groups ≠ 1``, padding
strings or non-zero padding modes, on CUDA and in half precision
(:func:`snn.layers.event_conv_functional.event_conv2d` has the kernels and the rule). Any values are exact, not only
binary spikes.

:func:`snn.layers.event_driven` converts the ``nn.Conv2d`` layers of a model in place, like its ``nn.Linear`` ones.
"""
from __future__ import annotations

from typing import Any

import torch
from torch import nn

from snn.layers.event_conv_functional import conv_crossover_density, event_conv2d
from snn.layers.event_functional import check_threshold

__all__ = ["EventConv2d"]


class EventConv2d(nn.Conv2d):
    """``nn.Conv2d`` with an event-driven CPU path for sparse inputs (see the module docstring).

    Args:
        in_channels, out_channels, kernel_size, stride, padding, dilation, groups, bias, padding_mode, device,
            dtype: as ``nn.Conv2d`` (same parameters, initialisation and state dict).
        threshold: largest fraction of non-zero inputs that takes the event path; ``None`` (default): the measured
            crossover for this layer (:func:`snn.layers.event_conv_functional.conv_crossover_density`); ``0``:
            always dense.

    Shape: ``[N, C_in, H, W]`` → ``[N, C_out, H_o, W_o]`` (unbatched ``[C_in, H, W]`` runs dense). The event path
    supports one backward (no double backward); ``threshold=0`` gives plain ``nn.Conv2d`` behaviour.
    """

    def __init__(self, in_channels: int, out_channels: int, kernel_size, stride=1, padding=0, dilation=1,
                 groups: int = 1, bias: bool = True, padding_mode: str = "zeros", device=None, dtype=None,
                 threshold: float | None = None) -> None:
        super().__init__(in_channels, out_channels, kernel_size, stride=stride, padding=padding, dilation=dilation,
                         groups=groups, bias=bias, padding_mode=padding_mode, device=device, dtype=dtype)
        self.threshold = check_threshold(threshold)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        if self.padding_mode != "zeros":
            return super().forward(x)
        return event_conv2d(x, self.weight, self.bias, self.stride, self.padding, self.dilation, self.groups,
                            self.threshold)

    def count_operations(self, inputs: tuple, output: Any, ctx: Any) -> list:
        """Operations for the energy counter (:mod:`snn.energy.protocol`): what it counts for ``nn.Conv2d`` — each
        input element × the (output channel, position) pairs it reaches, padded borders included — whichever path
        ran (the event path's work is invisible to torch's dispatcher). ``inputs[0]`` is ``[S·B, C, H, W]``
        (time folded into the batch) or a single frame ``[C, H, W]``."""
        from snn.energy.dispatch import conv_fanout
        from snn.energy.protocol import OpCount

        x = inputs[0]
        if x.dim() == 3:
            x, output = x.unsqueeze(0), output.unsqueeze(0)
        B = ctx.batch_size
        # time-major [S, B, C, H, W] for the counter; frames that do not split into B samples stay one group (the
        # counter then names the mismatch; a consumer that only sums |x| · fan-out, the SynOps penalty, is served)
        steps = x.reshape(x.shape[0] // B, B, *x.shape[1:]) if x.shape[0] % B == 0 else x.unsqueeze(0)
        fanout = conv_fanout(tuple(x.shape[1:]), self.weight, self.stride, self.padding, self.dilation, False, (0, 0),
                             self.groups, x.device)
        params = self.weight.numel() + (self.bias.numel() if self.bias is not None else 0)
        return [OpCount(x=steps, fanout=fanout, kind="conv2d",
                        dense_macs=float(output[0].numel()) * self.weight[0].numel(), params=params,
                        output_elements=float(output[0].numel()))]

    def extra_repr(self) -> str:
        if self.threshold is None:
            t = f"{conv_crossover_density(self.out_channels, self.kernel_size):.3g} (crossover)"
        else:
            t = f"{self.threshold:g}"
        return f"{super().extra_repr()}, threshold={t}"
