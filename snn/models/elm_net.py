r"""ELM classifier: one (Branch-)ELM neuron whose readout gives the class scores, as in the authors' SHD notebook.

On time-major input ``x`` ``[T, B, C]``:

.. math::

    \tilde x = \mathrm{InputDropout}(x), \qquad y = \mathrm{ELM}(\tilde x) \in \mathbb{R}^{T \times B \times K}

then class scores from ``y`` over each sample's valid steps (:mod:`snn.models.readout`; the reference reads the
last step). ELM equations: :class:`snn.neuron_models.ELM`. Time constants are in ms and ``Δt`` is the data's bin
width ``data.dt_ms`` (the reference SHD recipe: 10 ms bins, ``Δt = 10``, ``τ_m ∈ [1, 500]`` ms, ``τ_s = 5`` ms).

Input dropout zeroes each input entry with probability ``p`` during training without rescaling, as the reference
notebook does; in evaluation the input is scaled by ``1 - p`` instead, which is the expected synapse trace of
the dropped input (the traces are linear in the input), so evaluation is deterministic. (The notebook also drops at
test time.)
"""
from __future__ import annotations

from dataclasses import dataclass
from typing import Any, Literal

import torch
import torch.nn.functional as F
from torch import nn

from snn.models.classifier import check_positive_ints
from snn.models.protocol import ParamGroup
from snn.models.readout import READOUTS, time_scores
from snn.models.registry import ModelConfig, register_model
from snn.neuron_models.elm import ELM

__all__ = ["ELMNet", "ELMNetConfig"]


class ELMNet(nn.Module):
    """ELM classifier (see the module docstring).

    Args:
        n_inputs, n_classes: input channels and classes.
        input_dropout: probability of zeroing an input entry in training.
        readout: class scores from the ELM output: ``"last"`` (reference), ``"mean"``, ``"max"``, ``"sum_softmax"``.
        **elm: keyword arguments of :class:`snn.neuron_models.ELM` (``memory``, ``mlp_layers``, ``dt``, ``tau_m_min``,
            ``branches``, ``routing``, ``backend`` ...).

    Shapes: ``forward(x [T, B, n_inputs], lengths [B] | None) -> y [T, B, n_classes]``.
    """

    accepts_lengths = True

    def __init__(self, n_inputs: int, n_classes: int, input_dropout: float = 0.0, readout: str = "last",
                 **elm: Any) -> None:
        super().__init__()
        check_positive_ints(n_inputs=n_inputs, n_classes=n_classes)
        if not 0.0 <= input_dropout < 1.0:
            raise ValueError(f"input_dropout: expected a value in [0, 1), got {input_dropout!r}")
        if readout not in READOUTS:
            raise ValueError(f"readout: expected one of {READOUTS}, got {readout!r}")
        self.n_inputs, self.n_classes = n_inputs, n_classes
        self.input_dropout = float(input_dropout)
        self.readout_mode = readout
        self.elm = ELM(n_inputs, n_classes, **elm)

    def forward(self, x: torch.Tensor, lengths: torch.Tensor | None = None) -> torch.Tensor:
        if not isinstance(x, torch.Tensor) or x.dim() != 3 or x.shape[2] != self.n_inputs:
            raise ValueError(f"x must be a tensor [T, B, n_inputs={self.n_inputs}], got "
                             f"{tuple(x.shape) if isinstance(x, torch.Tensor) else type(x).__name__}")
        x = x.to(self.elm.w_s_raw.dtype)
        if self.input_dropout > 0:
            if self.training:
                x = x * (torch.rand_like(x) >= self.input_dropout)
            else:
                x = x * (1.0 - self.input_dropout)
        return self.elm(x)

    def scores(self, out: torch.Tensor, lengths: torch.Tensor | None = None) -> torch.Tensor:
        """Class scores ``[B, n_classes]`` of the ELM output (``readout`` mode, valid steps only)."""
        return time_scores(out, lengths, self.readout_mode)

    def loss(self, out: torch.Tensor, labels: torch.Tensor, lengths: torch.Tensor | None = None) -> torch.Tensor:
        """Cross-entropy of :meth:`scores`."""
        return F.cross_entropy(self.scores(out, lengths), labels)

    def parameter_groups(self) -> dict[str, ParamGroup]:
        """One group ``weights``: every trainable parameter (the reference trains them all with one Adamax)."""
        return {"weights": ParamGroup([p for p in self.parameters() if p.requires_grad])}

    @classmethod
    def from_config(cls, config: Any, n_inputs: int, n_classes: int) -> "ELMNet":
        """Build from a run config (its ``model:`` section is an :class:`ELMNetConfig`; ``Δt`` = ``data.dt_ms``)."""
        m = config.model
        return cls(n_inputs, n_classes, input_dropout=m.input_dropout, readout=m.readout, memory=m.memory,
                   mlp_layers=m.mlp_layers, mlp_hidden=m.mlp_hidden, activation=m.activation,
                   lambda_value=m.lambda_value, tau_s=m.tau_s_ms, w_s_init=m.w_s_init, tau_m_min=m.tau_m_min_ms,
                   tau_m_max=m.tau_m_max_ms, learn_tau_m=m.learn_tau_m, dt=config.data.dt_ms, branches=m.branches,
                   synapses_per_branch=m.synapses_per_branch, routing=m.routing, allow_unrouted=m.allow_unrouted,
                   backend=m.backend)


@dataclass
class ELMNetConfig(ModelConfig):
    """The ``model:`` section of ``name: elm`` (:class:`ELMNet`; times in ms, ``Δt`` = ``data.dt_ms``). Parameter
    group: ``weights``.

    Attributes:
        memory: memory units ``d_m``.
        mlp_layers: hidden layers of the ELM's MLP.
        mlp_hidden: their width (``null``: ``2 · memory``).
        activation: ``"relu"`` or ``"silu"``.
        lambda_value: memory update scale λ.
        tau_s_ms: synapse time constant, ms.
        w_s_init: initial synaptic weight.
        tau_m_min_ms, tau_m_max_ms: range of the log-spaced memory time constants, ms.
        learn_tau_m: learn the memory time constants.
        branches: branches (``null``: one per input, plain ELM).
        synapses_per_branch: synapses per branch.
        routing: ``null`` (plain ELM), ``"random"`` or ``"window"`` (Branch-ELM).
        allow_unrouted: accept inputs that reach no synapse.
        input_dropout: probability of zeroing an input entry in training.
        readout: class scores from the output: ``"last"`` (reference), ``"mean"``, ``"max"``, ``"sum_softmax"``.
        backend: ``"auto"``, ``"torch"`` (reference loop) or ``"numba"``.
    """

    name: str = "elm"
    memory: int = 100
    mlp_layers: int = 1
    mlp_hidden: int | None = None
    activation: Literal["relu", "silu"] = "relu"
    lambda_value: float = 5.0
    tau_s_ms: float = 5.0
    w_s_init: float = 0.5
    tau_m_min_ms: float = 1.0
    tau_m_max_ms: float = 500.0
    learn_tau_m: bool = False
    branches: int | None = None
    synapses_per_branch: int = 1
    routing: Literal["random", "window"] | None = None
    allow_unrouted: bool = False
    input_dropout: float = 0.5
    readout: Literal["last", "mean", "max", "sum_softmax"] = "last"
    backend: Literal["auto", "torch", "numba"] = "auto"

    def check(self) -> None:
        for key in ("memory", "mlp_layers", "synapses_per_branch"):
            if getattr(self, key) < 1:
                raise ValueError(f"{key}: expected a positive int, got {getattr(self, key)!r}")
        for key in ("lambda_value", "tau_s_ms", "tau_m_min_ms", "tau_m_max_ms"):
            if getattr(self, key) <= 0:
                raise ValueError(f"{key}: expected a value > 0, got {getattr(self, key)!r}")
        if self.tau_m_min_ms >= self.tau_m_max_ms:
            raise ValueError(f"tau_m_min_ms, tau_m_max_ms: expected min < max, got {self.tau_m_min_ms!r} >= "
                             f"{self.tau_m_max_ms!r}")
        if not 0.0 <= self.input_dropout < 1.0:
            raise ValueError(f"input_dropout: expected a value in [0, 1), got {self.input_dropout!r}")


@register_model("elm", ELMNetConfig, description="Expressive Leaky Memory neuron (ELM / Branch-ELM) classifier")
def build_elm(config: Any, n_inputs: int, n_classes: int) -> ELMNet:
    """:class:`ELMNet` from ``config.model`` (``Δt`` = ``config.data.dt_ms``)."""
    return ELMNet.from_config(config, n_inputs, n_classes)
