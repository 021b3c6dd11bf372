"""Shared tail of the feed-forward and recurrent LIF classifiers: LI readout, scores, loss, parameter groups."""
from __future__ import annotations

import math
from typing import Any

import torch
import torch.nn.functional as F
from torch import nn

from snn.models.protocol import ParamGroup
from snn.models.readout import READOUTS, check_sequence_input, time_scores
from snn.neuron_models import LI

__all__ = ["SpikingClassifier", "check_positive_ints"]


def check_positive_ints(**values: Any) -> None:
    for name, value in values.items():
        if not isinstance(value, int) or isinstance(value, bool) or value < 1:
            raise ValueError(f"{name} must be a positive int, got {value!r}")


class SpikingClassifier(nn.Module):
    """Base of :class:`~snn.models.SpikingMLP` and :class:`~snn.models.RecurrentSNN`.

    Subclasses build ``self.hidden_layers`` and implement :meth:`hidden` (``x [T, B, C] -> spikes [T, B, H]``); the
    base adds the readout ``V = LI(W_out s + b)`` (a leaky integrator that never fires), its scores over each
    sample's valid steps (:func:`snn.models.readout.time_scores`) and the cross-entropy loss.
    """

    accepts_lengths = True

    def __init__(self, n_inputs: int, n_classes: int, hidden: int, tau: float, readout_tau: float | None,
                 decay_input: bool, bias: bool, readout: str, backend: str) -> None:
        super().__init__()
        check_positive_ints(n_inputs=n_inputs, n_classes=n_classes, hidden=hidden)
        if readout not in READOUTS:
            raise ValueError(f"readout must be one of {READOUTS}, got {readout!r}")
        for name, value in (("tau", tau), ("readout_tau", tau if readout_tau is None else readout_tau)):
            if not (isinstance(value, (int, float)) and math.isfinite(value) and value > 0):
                raise ValueError(f"{name} must be a finite number > 0 (time steps), got {value!r}")
        self.n_inputs, self.n_classes, self.hidden_size = n_inputs, n_classes, hidden
        self.readout_mode = readout
        self.output = nn.Linear(hidden, n_classes, bias=bias)
        self.readout = LI(tau=tau if readout_tau is None else readout_tau, v_reset=0.0, decay_input=decay_input,
                          backend=backend)

    def hidden(self, x: torch.Tensor, lengths: torch.Tensor | None) -> torch.Tensor:
        raise NotImplementedError

    def forward(self, x: torch.Tensor, lengths: torch.Tensor | None = None) -> torch.Tensor:
        """``x`` ``[T, B, n_inputs]`` → readout membrane ``[T, B, n_classes]``."""
        check_sequence_input(x, lengths, self.n_inputs)
        s = self.hidden(x.to(self.output.weight.dtype), lengths)
        return self.readout(self.output(s))

    def scores(self, out: torch.Tensor, lengths: torch.Tensor | None = None) -> torch.Tensor:
        """Class scores ``[B, n_classes]`` of the readout membrane (``readout`` mode, valid steps only)."""
        return time_scores(out, lengths, self.readout_mode)

    def loss(self, out: torch.Tensor, labels: torch.Tensor, lengths: torch.Tensor | None = None) -> torch.Tensor:
        """Cross-entropy of :meth:`scores`."""
        return F.cross_entropy(self.scores(out, lengths), labels)

    def parameter_groups(self) -> dict[str, ParamGroup]:
        """``weights`` (synaptic weights and biases, weight decay) and ``norm`` (BatchNorm, no weight decay)."""
        norm_ids = {id(p) for m in self.modules() if isinstance(m, nn.modules.batchnorm._BatchNorm) for p in m.parameters()}
        weights = [p for p in self.parameters() if p.requires_grad and id(p) not in norm_ids]
        norm = [p for p in self.parameters() if p.requires_grad and id(p) in norm_ids]
        return {"weights": ParamGroup(weights), "norm": ParamGroup(norm, weight_decay=0.0)}
