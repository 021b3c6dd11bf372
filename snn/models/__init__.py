"""Networks built from :mod:`snn.layers` and :mod:`snn.neuron_models`."""
from snn.models.delaynet import DelayNet, SequenceDropout, sigma_at_epoch
from snn.models.meta_spikeformer import META_SPIKEFORMER_SIZES, MetaSpikeFormer, meta_spikeformer
from snn.models.spike_driven_transformer import (
    SDT_V1_CONFIGS,
    SpikeDrivenAudioTransformer,
    SpikeDrivenTransformer,
    sdt_v1,
)
from snn.models.tet import tet_loss

__all__ = ["DelayNet", "SequenceDropout", "sigma_at_epoch", "SpikeDrivenTransformer", "SpikeDrivenAudioTransformer",
           "SDT_V1_CONFIGS", "sdt_v1", "MetaSpikeFormer", "META_SPIKEFORMER_SIZES", "meta_spikeformer", "tet_loss"]
