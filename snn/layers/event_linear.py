r"""Event-driven ``nn.Linear``: a drop-in whose forward and weight gradient skip the zero inputs.

.. math:: y = x W^\top + b, \qquad y_r = b + \sum_{i:\, x_{ri} \ne 0} x_{ri} W_{:, i}

on ``x`` ``[..., C_in]`` (time-major ``[T, B, C_in]`` in a network). Spiking layers feed their successors mostly
zeros (3-20 % spikes): :class:`EventLinear` adds one weight column per non-zero input instead of multiplying the
whole matrix, and falls back to the dense ``F.linear`` when the input is too dense, on CUDA or in half precision
(:func:`snn.layers.event_functional.event_linear` has the kernels and the rule). Any values are exact, not only
binary spikes: dropout-scaled spikes and integer spike counts are multiplied in as they are.

:func:`event_driven` converts the ``nn.Linear`` layers of a model in place (same parameters, same state dict,
optimizer state kept).
"""
from __future__ import annotations

from typing import Any

import torch
from torch import nn

from snn.layers.event_conv import EventConv2d
from snn.layers.event_functional import check_threshold, crossover_density, event_linear

__all__ = ["EventLinear", "event_driven"]


class EventLinear(nn.Linear):
    """``nn.Linear`` with an event-driven CPU path for sparse inputs (see the module docstring).

    Args:
        in_features, out_features, bias, device, dtype: as ``nn.Linear`` (same parameters, initialisation and
            state dict).
        threshold: largest fraction of non-zero inputs that takes the event path; ``None`` (default): the measured
            crossover for this ``out_features`` (:func:`snn.layers.event_functional.crossover_density`); ``0``:
            always dense.

    Shape: ``x`` ``[..., in_features]`` → ``[..., out_features]``. The event path supports one backward (no
    double backward); ``threshold=0`` gives plain ``nn.Linear`` behaviour.
    """

    def __init__(self, in_features: int, out_features: int, bias: bool = True, device=None, dtype=None,
                 threshold: float | None = None) -> None:
        super().__init__(in_features, out_features, bias=bias, device=device, dtype=dtype)
        self.threshold = check_threshold(threshold)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return event_linear(x, self.weight, self.bias, self.threshold)

    def count_operations(self, inputs: tuple, output: Any, ctx: Any) -> list:
        """Operations for the energy counter (:mod:`snn.energy.protocol`): every input element × ``out_features``,
        whichever path ran (the event path's work is invisible to torch's dispatcher)."""
        from snn.energy.protocol import OpCount

        return [OpCount(x=inputs[0], fanout=float(self.out_features), kind="linear", params=self.weight.numel(),
                        output_elements=float(self.out_features))]

    def extra_repr(self) -> str:
        t = f"{crossover_density(self.out_features):.3g} (crossover)" if self.threshold is None else f"{self.threshold:g}"
        return f"{super().extra_repr()}, threshold={t}"


def event_driven(model: nn.Module, threshold: float | None = None, conv: bool = True) -> nn.Module:
    """Turn every plain ``nn.Linear`` of ``model`` (itself included) into an :class:`EventLinear`, and every plain
    ``nn.Conv2d`` into an :class:`~snn.layers.EventConv2d` (unless ``conv=False``), in place.

    The modules keep their identity, parameters (so an optimizer built before keeps working), hooks and state dict;
    only their forward changes. Subclasses other than the event layers themselves are left alone (they may
    override the forward). ``threshold``: as :class:`EventLinear` / ``EventConv2d``, applied to every converted
    layer (``None``: each layer's measured crossover). Returns ``model``.
    """
    if not isinstance(model, nn.Module):
        raise TypeError(f"model: expected a torch.nn.Module, got {type(model).__name__}")
    threshold = check_threshold(threshold)
    for module in model.modules():
        if type(module) is nn.Linear or type(module) is EventLinear:
            module.__class__ = EventLinear  # as torch.nn.utils.parametrize does: same object, new forward
            module.threshold = threshold
        elif conv and (type(module) is nn.Conv2d or type(module) is EventConv2d):
            module.__class__ = EventConv2d
            module.threshold = threshold
    return model
