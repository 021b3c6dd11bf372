r"""Activity regulariser: a differentiable penalty on the expected synaptic operations of a forward pass.

.. math::

    P = w \cdot \frac{1}{B} \sum_{l} \sum_{t, b, i} |s^{(l)}_{t,b,i}| \; \mathrm{fanout}_l(i)

where ``s^{(l)}`` is the spike tensor entering synaptic layer ``l`` (``nn.Linear``, ``nn.Conv1d/2d``, or a layer
that declares its operations, e.g. :class:`snn.layers.LearnableDelay`, see :mod:`snn.energy.protocol`) and
``fanout_l(i)`` the real fan-out of input ``i`` (the map the energy counter uses: padding, stride and groups
included; a declared layer's own ``OpCount.fanout``). The spikes come out of the neurons' surrogate-gradient
forward, so ``∂P/∂s`` flows back through the neurons and lowers their firing. Spikes scaled by inverted dropout
(values ``{0, 1/(1-p)}``) count as spikes (divided by the scale). Inputs that are not binary (the encoded data) or
that carry no gradient are left out. ``B`` is the batch size of the model's time-major input
``[T, B, ...]``, so ``P / w`` is the expected number of synaptic operations per sample.

Usage with a training loop::

    penalty = SynOpsPenalty(model, weight=1e-7)
    for x, y in loader:
        penalty.reset()
        loss = criterion(model(x), y) + penalty.penalty()
        loss.backward()
"""
from __future__ import annotations

import math
from typing import Any

import torch
from torch import nn

from snn.energy.dispatch import conv_fanout
from snn.energy.inputs import is_binary
from snn.energy.protocol import CountContext, OpCount, declares_operations

__all__ = ["SynOpsPenalty"]


def synaptic_kind(module: nn.Module) -> str | None:
    """``linear``, ``conv1d``, ``conv2d`` or ``declared`` (a ``count_operations`` layer), else ``None``."""
    if declares_operations(module):
        return "declared"
    if isinstance(module, nn.Linear):
        return "linear"
    if isinstance(module, nn.Conv1d):
        return "conv1d"
    if isinstance(module, nn.Conv2d):
        return "conv2d"
    return None


def _spike_scale(x: torch.Tensor) -> float | None:
    """``c`` when every value of ``x`` is in ``{-c, 0, c}`` (spikes, or spikes after inverted dropout, which scales
    the kept ones by ``1 / (1 - p)``); ``1.0`` for an all-zero tensor; ``None`` when ``x`` is not such a tensor."""
    if is_binary(x):
        return 1.0
    c = float(x.abs().max()) if x.numel() else 0.0
    if not math.isfinite(c) or c <= 0.0 or not is_binary(x / c):
        return None
    return c


class SynOpsPenalty:
    """Penalty on expected synaptic operations per sample, collected by forward hooks during training.

    Args:
        model: the network (its first positional input must be time-major ``[T, B, ...]``).
        weight: multiplier ``w ≥ 0`` of the penalty (loss units per synaptic operation).
        layers: optional subset of module names to penalise (default: every synaptic layer).
    """

    def __init__(self, model: nn.Module, weight: float = 1e-6, layers: list[str] | None = None) -> None:
        if not isinstance(model, nn.Module):
            raise TypeError(f"model: expected a torch.nn.Module, got {type(model).__name__}")
        try:
            weight = float(weight)
        except (TypeError, ValueError):
            raise TypeError(f"weight: expected a number, got {type(weight).__name__}") from None
        if not math.isfinite(weight) or weight < 0:
            raise ValueError(f"weight: expected a finite number >= 0, got {weight!r}")
        named = {name: m for name, m in model.named_modules() if synaptic_kind(m) is not None}
        if layers is not None:
            missing = [n for n in layers if n not in named]
            if missing:
                raise ValueError(f"layers: {missing} are not synaptic layers of the model; available: {sorted(named)}")
            named = {n: named[n] for n in layers}
        if not named:
            raise ValueError("model: no synaptic layer (Linear, Conv1d/2d, a count_operations layer) to penalise")
        self.model = model
        self.weight = weight
        self.layer_names = list(named)
        self._terms: list[torch.Tensor] = []
        self._batch = 0
        self._handles = [model.register_forward_pre_hook(self._model_hook)]
        for name, module in named.items():
            self._handles.append(module.register_forward_hook(self._layer_hook(synaptic_kind(module))))

    def __repr__(self) -> str:
        return f"SynOpsPenalty(weight={self.weight:g}, layers={len(self.layer_names)})"

    def _model_hook(self, module: nn.Module, inputs: tuple) -> None:
        x = inputs[0] if inputs else None
        if isinstance(x, torch.Tensor) and x.dim() >= 2:
            self._batch = int(x.shape[1])

    def _layer_hook(self, kind: str):
        def hook(module: nn.Module, inputs: tuple, output: Any) -> None:
            x = inputs[0] if inputs else None
            if not isinstance(x, torch.Tensor) or not x.requires_grad or not torch.is_grad_enabled():
                return
            with torch.no_grad():
                scale = _spike_scale(x.detach())
            if scale is None:
                return
            if kind == "declared":
                ctx = CountContext(x.shape[0], x.shape[1] if x.dim() > 1 else 1)
                terms = [(op.x, op.fanout) for op in module.count_operations(inputs, output, ctx)
                         if isinstance(op, OpCount)]
            elif kind == "linear":
                terms = [(x, float(module.out_features))]
            else:
                xb = x if x.dim() > (1 if kind == "conv1d" else 2) + 1 else x.unsqueeze(0)
                with torch.no_grad():
                    fan = conv_fanout(tuple(xb.shape[1:]), module.weight, module.stride, module.padding,
                                      module.dilation, False, (0,) * len(module.stride), module.groups, x.device)
                terms = [(xb, fan)]
            for xi, fan in terms:
                a = xi.abs() if scale == 1.0 else xi.abs() / scale
                fan = fan.to(a.dtype) if isinstance(fan, torch.Tensor) else fan
                self._terms.append((a * fan).sum())
        return hook

    def reset(self) -> None:
        """Forget the spikes of the previous forward pass (call once per batch, before the forward)."""
        self._terms = []

    def synops(self) -> torch.Tensor:
        """Expected synaptic operations per sample of the forward passes since :meth:`reset` (differentiable)."""
        if not self._terms:
            return torch.zeros(())
        return torch.stack([t.float() for t in self._terms]).sum() / max(self._batch, 1)

    def penalty(self) -> torch.Tensor:
        """``weight × synops()``: the scalar to add to the loss."""
        return self.weight * self.synops()

    def remove(self) -> None:
        """Detach the hooks from the model."""
        for handle in self._handles:
            handle.remove()
        self._handles = []
        self._terms = []

    def state(self) -> dict[str, Any]:
        return {"weight": self.weight, "layers": list(self.layer_names)}
