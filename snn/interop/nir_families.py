"""How :func:`snn.interop.to_nir` reads the built-in model families as a chain of layers (their inference form).

``SpikingMLP`` (``snn_mlp``): per hidden layer ``synapses.i`` (Linear) → ``norms.i`` (BatchNorm, folded) →
``neurons.i`` (LIF) → ``dropouts.i`` (dropped), then ``output`` (Linear) → ``readout`` (LI).
``RecurrentSNN`` (``rsnn``): per layer ``recurrent_layers.i`` (:class:`snn.layers.RecurrentLIF`: an ``Affine`` and a
recurrent subgraph) → ``dropouts.i`` (dropped), then ``output`` → ``readout``.

``DelayNet``: per hidden layer ``synapses.i`` (integer delays) → ``norms.i`` (BatchNorm, folded) → ``neurons.i``
(LIF) → ``dropouts.i`` (dropped), then ``synapses.L`` → ``readout`` (LI). The exported graph is the network as a
stream: DelayNet's forward appends ``R = (max_delay - 1) // 2`` zero steps at each delay layer of a finite sequence;
the graph fed the same input padded with ``R`` zero steps reproduces the first ``T + R`` output steps exactly (the
last ``L·R`` steps of DelayNet's output depend on where it cuts each hidden layer's spikes).
"""
from __future__ import annotations

from torch import nn

from snn.interop.nir_export import Layers, register_nir_layers
from snn.models import DelayNet, RecurrentSNN, SpikingMLP

__all__ = ["delaynet_layers", "mlp_layers", "rsnn_layers"]


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


def mlp_layers(model: nn.Module) -> Layers:
    """The chain of a :class:`snn.models.SpikingMLP`."""
    layers: Layers = []
    for i, (syn, norm, neuron, drop) in enumerate(zip(model.synapses, model.norms, model.neurons, model.dropouts)):
        layers.append((f"synapses.{i}", syn))
        if model.has_batchnorm:
            layers.append((f"norms.{i}", norm))
        layers += [(f"neurons.{i}", neuron), (f"dropouts.{i}", drop)]
    return layers + [("output", model.output), ("readout", model.readout)]


def rsnn_layers(model: nn.Module) -> Layers:
    """The chain of a :class:`snn.models.RecurrentSNN`."""
    layers: Layers = []
    for i, (layer, drop) in enumerate(zip(model.recurrent_layers, model.dropouts)):
        layers += [(f"recurrent_layers.{i}", layer), (f"dropouts.{i}", drop)]
    return layers + [("output", model.output), ("readout", model.readout)]


register_nir_layers(DelayNet, delaynet_layers)
register_nir_layers(SpikingMLP, mlp_layers)
register_nir_layers(RecurrentSNN, rsnn_layers)
