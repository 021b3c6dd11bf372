"""How :func:`snn.interop.to_nir` reads the built-in model families as a chain of layers (their inference form).

``DelayNet``: per hidden layer ``synapses.i`` (integer delays) → ``norms.i`` (BatchNorm, folded) → ``neurons.i``
(LIF) → ``dropouts.i`` (dropped), then ``synapses.L`` → ``readout`` (LI). The exported graph is the network as a
stream: DelayNet's forward appends ``R = (max_delay - 1) // 2`` zero steps at each delay layer of a finite sequence;
the graph fed the same input padded with ``R`` zero steps reproduces the first ``T + R`` output steps exactly (the
last ``L·R`` steps of DelayNet's output depend on where it cuts each hidden layer's spikes).
"""
from __future__ import annotations

from torch import nn

from snn.interop.nir_export import Layers, register_nir_layers
from snn.models import DelayNet

__all__ = ["delaynet_layers"]


def delaynet_layers(model: nn.Module) -> Layers:
    """The chain of a :class:`snn.models.DelayNet`."""
    layers: Layers = []
    for i in range(model.layers):
        layers.append((f"synapses.{i}", model.synapses[i]))
        if model.has_batchnorm:
            layers.append((f"norms.{i}", model.norms[i]))
        layers += [(f"neurons.{i}", model.neurons[i]), (f"dropouts.{i}", model.dropouts[i])]
    layers += [(f"synapses.{model.layers}", model.synapses[model.layers]), ("readout", model.readout)]
    return layers


register_nir_layers(DelayNet, delaynet_layers)
