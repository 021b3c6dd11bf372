"""The learning rules of :mod:`snn.rules`, under the name the Trainer has always imported them by."""
from snn.rules import (RSTDP, STDP, Backprop, LearningRule, LocalRule, StepContext, available_rules, get_rule,
                       model_loss, model_scores, rule_from_config, unwrap)

__all__ = ["LearningRule", "Backprop", "StepContext", "unwrap", "model_scores", "model_loss", "get_rule",
           "rule_from_config", "available_rules", "LocalRule", "STDP", "RSTDP"]
