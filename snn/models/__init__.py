"""Networks built from :mod:`snn.layers` and :mod:`snn.neuron_models`, registered as model families.

``snn.models.register(name, ConfigClass)(builder)`` adds a family (see :mod:`snn.models.registry`);
``snn.models.available_models()`` lists them. Built in: ``delaynet`` (learnable delays), ``snn_mlp``
(feed-forward LIF), ``rsnn`` (recurrent LIF), ``sdt_v1`` / ``sdt_audio`` / ``meta_spikeformer`` (spike-driven
transformers), ``elm`` (Expressive Leaky Memory neuron), ``diehl_cook`` (Diehl & Cook's unsupervised STDP network).
"""
from snn.models.registry import (ModelConfig, ModelFamily, ModelRegistryError, available_models, build_model,
                                 family_of, get_family, register, register_model)
from snn.models.protocol import ParamGroup
from snn.models.delaynet import DelayNet, DelayNetConfig, DelaySchedule, SequenceDropout, sigma_at_epoch
from snn.models.meta_spikeformer import META_SPIKEFORMER_SIZES, MetaSpikeFormer, meta_spikeformer
from snn.models.mlp import SpikingMLP, SpikingMLPConfig
from snn.models.rsnn import RecurrentSNN, RecurrentSNNConfig
from snn.models.spike_driven_transformer import (SDT_V1_CONFIGS, SpikeDrivenAudioTransformer, SpikeDrivenTransformer,
                                                 sdt_v1)
from snn.models.tet import tet_loss
from snn.models.elm_net import ELMNet, ELMNetConfig
from snn.models.diehl_cook import AssignLabels, DiehlCookConfig, DiehlCookNetwork

__all__ = ["ModelConfig", "ModelFamily", "ModelRegistryError", "ParamGroup", "available_models", "build_model",
           "family_of", "get_family", "register", "register_model", "DelayNet", "DelayNetConfig", "DelaySchedule",
           "SequenceDropout", "sigma_at_epoch", "SpikingMLP", "SpikingMLPConfig", "RecurrentSNN", "RecurrentSNNConfig",
           "SpikeDrivenTransformer", "SpikeDrivenAudioTransformer", "SDT_V1_CONFIGS", "sdt_v1", "MetaSpikeFormer",
           "META_SPIKEFORMER_SIZES", "meta_spikeformer", "tet_loss", "ELMNet", "ELMNetConfig", "DiehlCookNetwork",
           "DiehlCookConfig", "AssignLabels"]
