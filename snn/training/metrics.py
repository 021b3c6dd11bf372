"""Metrics collected during training: accuracy, loss, and the firing rate of every spiking layer.

Firing rates come from forward hooks on :class:`snn.neuron_models.SpikingNeuron` modules that emit spikes
(readouts with an infinite threshold, like :class:`snn.neuron_models.LI`, are skipped) and on any module that
declares ``emits_spikes = True`` (layers that run their neurons step by step inside their own forward, such as
:class:`snn.layers.RecurrentLIF`; neurons inside such a module are not hooked twice): the rate of a layer is
``Σ spikes / (T · B · N)`` over the batches seen since :meth:`FiringRateMonitor.reset`.
"""
from __future__ import annotations

import math

import torch
from torch import nn

from snn.neuron_models import SpikingNeuron

__all__ = ["FiringRateMonitor", "spiking_layers", "Accumulator"]


def spiking_layers(model: nn.Module) -> dict[str, nn.Module]:
    """Named modules of ``model`` whose forward outputs spikes (readouts that never fire excluded)."""
    out: dict[str, nn.Module] = {}
    for name, m in model.named_modules():
        if any(name.startswith(owner + ".") for owner in out if getattr(out[owner], "emits_spikes", False)):
            continue  # inside a module that reports its own spikes
        if getattr(m, "emits_spikes", False) or (isinstance(m, SpikingNeuron) and math.isfinite(getattr(m, "v_threshold", 0.0))):
            out[name] = m
    return out


class FiringRateMonitor:
    """Counts spikes of every spiking layer through forward hooks.

    Args:
        model: the (unwrapped) model.
        record_sample: keep the spikes of batch element 0 of the next forward (for rasters) when true.

    Use :meth:`rates` for the mean rate per layer since :meth:`reset`, :meth:`last_rate` for the mean over layers
    of the latest batch, and :meth:`remove` to detach the hooks.
    """

    def __init__(self, model: nn.Module, record_sample: bool = False) -> None:
        self.layers = spiking_layers(model)
        self.record_sample = record_sample
        self.sample: dict[str, torch.Tensor] = {}
        self._handles = [m.register_forward_hook(self._hook(name)) for name, m in self.layers.items()]
        self.reset()

    def _hook(self, name: str):
        def hook(module, inputs, output):
            s = output[0] if isinstance(output, tuple) else output
            s = s.detach()
            total = float(s.sum())
            self._sum[name] += total
            self._count[name] += s.numel()
            self._last[name] = total / max(s.numel(), 1)
            if self.record_sample and name not in self.sample and s.dim() >= 2:
                self.sample[name] = s[:, 0].float().cpu().reshape(s.shape[0], -1)
        return hook

    def reset(self) -> None:
        self._sum = {n: 0.0 for n in self.layers}
        self._count = {n: 0 for n in self.layers}
        self._last = {n: 0.0 for n in self.layers}

    def rates(self) -> dict[str, float]:
        return {n: self._sum[n] / self._count[n] if self._count[n] else 0.0 for n in self.layers}

    def last_rate(self) -> float:
        return sum(self._last.values()) / len(self._last) if self._last else 0.0

    def remove(self) -> None:
        for h in self._handles:
            h.remove()
        self._handles = []


class Accumulator:
    """Sample-weighted running loss and accuracy."""

    def __init__(self) -> None:
        self.loss_sum = 0.0
        self.correct = 0
        self.n = 0

    def update(self, loss: torch.Tensor, scores: torch.Tensor, labels: torch.Tensor) -> None:
        b = int(labels.shape[0])
        self.loss_sum += float(loss) * b
        self.correct += int((scores.argmax(1).cpu() == labels.cpu()).sum())
        self.n += b

    @property
    def loss(self) -> float:
        return self.loss_sum / self.n if self.n else float("nan")

    @property
    def accuracy(self) -> float:
        return self.correct / self.n if self.n else float("nan")
