"""Synapse layers: time-major ``[T, B, C]`` modules that sit between neuron populations."""
from snn.layers.delay import DelayedLinear, LearnableDelay

__all__ = ["LearnableDelay", "DelayedLinear"]
