"""Neuron models, each declared once and run by every backend (see :mod:`snn.kernels`)."""
from snn.neuron_models.base import NeuronOutput, NeuronState, SpikingNeuron
from snn.neuron_models.adaptive_lif import AdaptiveLIF, adaptive_lif_dynamics
from snn.neuron_models.lif import IF, LI, LIF, ParametricLIF, lif_dynamics
from snn.neuron_models.elm import ELM, ELMOutput

__all__ = ["SpikingNeuron", "NeuronOutput", "NeuronState", "LIF", "ParametricLIF", "IF", "LI", "AdaptiveLIF", "lif_dynamics", "adaptive_lif_dynamics", "ELM", "ELMOutput"]
