"""Learning rules as plug-ins of the Trainer: backprop (surrogate-gradient BPTT) and local rules (STDP, reward-
modulated STDP, SoftHebb, spiking forward-forward) that attach by forward hooks and write ``-Δw`` into ``.grad``.

``rule_from_config(config.training)`` builds the configured rule; ``available_rules()`` lists them
(:mod:`snn.rules.registry`). The protocol is in :mod:`snn.rules.base`, the hook machinery in :mod:`snn.rules.local`.
"""
from snn.rules.base import LearningRule, StepContext, forward, model_loss, model_scores, unwrap
from snn.rules.registry import RuleConfig, available_rules, get_rule, get_rule_family, register_rule, rule_from_config
from snn.rules.backprop import Backprop, BackpropConfig
from snn.rules.local import SUPPORTED_SYNAPSES, LocalRule
from snn.rules.stdp import RSTDP, STDP, RSTDPConfig, STDPConfig
from snn.rules.softhebb import SoftHebb, SoftHebbConfig
from snn.rules.forward_forward import ForwardForward, ForwardForwardConfig, embed_label

__all__ = ["LearningRule", "StepContext", "forward", "model_loss", "model_scores", "unwrap", "RuleConfig",
           "available_rules", "get_rule", "get_rule_family", "register_rule", "rule_from_config", "Backprop",
           "BackpropConfig", "SUPPORTED_SYNAPSES", "LocalRule", "STDP", "RSTDP", "STDPConfig", "RSTDPConfig",
           "SoftHebb", "SoftHebbConfig", "ForwardForward", "ForwardForwardConfig", "embed_label"]
