"""Synapse layers: time-major ``[T, B, C]`` modules that sit between neuron populations."""
from snn.layers.delay import DelayedLinear, LearnableDelay
from snn.layers.per_step import PerStep

__all__ = ["LearnableDelay", "DelayedLinear", "PerStep"]
