"""Synapse layers: time-major ``[T, B, C]`` modules that sit between neuron populations, and the building blocks of
the spike-driven transformers (``[T, B, C, H, W]``)."""
from snn.layers.competitive import CompetitiveLIF
from snn.layers.attention import SpikeDrivenSelfAttention, SpikeDrivenSelfAttentionV2, sdsa_v1, sdsa_v2_scores
from snn.layers.delay import DelayedLinear, LearnableDelay
from snn.layers.dropout import SequenceDropout
from snn.layers.event_conv import EventConv2d
from snn.layers.event_linear import EventLinear, event_driven
from snn.layers.meta_conv import MetaConvBlock, SepConv, SpikingDownsample
from snn.layers.patch_split import SpikingPatchSplit
from snn.layers.poisson import PoissonEncoder
from snn.layers.per_step import PerStep, apply_per_step
from snn.layers.recurrent import RecurrentLIF
from snn.layers.rep_conv import RepConv, fold_rep_conv, reparameterize
from snn.layers.sdt_block import SpikeDrivenBlock
from snn.layers.sdt_mlp import SpikeDrivenMLP
from snn.layers.sdt_neuron import spike_driven_lif

__all__ = [
    "LearnableDelay", "DelayedLinear", "SequenceDropout", "RecurrentLIF", "EventLinear", "EventConv2d", "event_driven", "PerStep", "apply_per_step",
    "SpikeDrivenSelfAttention", "SpikeDrivenSelfAttentionV2", "sdsa_v1", "sdsa_v2_scores",
    "SpikeDrivenBlock", "SpikeDrivenMLP", "SpikingPatchSplit", "RepConv", "fold_rep_conv", "reparameterize",
    "SepConv", "MetaConvBlock", "SpikingDownsample", "spike_driven_lif", "CompetitiveLIF", "PoissonEncoder",
]
