"""Synapse layers: time-major ``[T, B, C]`` modules that sit between neuron populations."""
from snn.layers.delay import DelayedLinear, LearnableDelay
from snn.layers.dropout import SequenceDropout
from snn.layers.per_step import PerStep
from snn.layers.recurrent import RecurrentLIF

__all__ = ["LearnableDelay", "DelayedLinear", "SequenceDropout", "RecurrentLIF", "PerStep"]
