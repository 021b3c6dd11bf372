r"""Feed-forward LIF network, the common SHD baseline: ``(Linear → [BatchNorm] → LIF → dropout) × L``, LI readout.

Layer ``l = 1 … L`` on time-major input ``x`` ``[T, B, C]``:

.. math::

    u_l = \mathrm{BN}(W_l\, s_{l-1} + b_l), \qquad s_l = \mathrm{Dropout}(\mathrm{LIF}(u_l)), \qquad s_0 = x

then ``V = LI(W_{out} s_L + b_{out})`` and class scores from ``V`` over each sample's valid steps
(:mod:`snn.models.readout`). BatchNorm normalises each channel over all ``T × B`` entries; dropout draws one mask
per sequence. LIF equations: :class:`snn.LIF` (τ in time steps; the config gives ``tau_ms``).
"""
from __future__ import annotations

from dataclasses import dataclass
from typing import Any, Literal

import torch
from torch import nn

from snn.layers.dropout import SequenceDropout
from snn.layers.event_linear import event_driven as make_event_driven
from snn.models.classifier import SpikingClassifier, check_positive_ints
from snn.models.registry import ModelConfig, register_model
from snn.neuron_models import LIF
from snn.surrogate import ATan

__all__ = ["SpikingMLP", "SpikingMLPConfig", "LIFClassifierConfig"]


class SpikingMLP(SpikingClassifier):
    """Feed-forward LIF classifier (see the module docstring for the equations).

    Args:
        n_inputs, n_classes: input channels and classes.
        hidden: neurons per hidden layer.
        layers: hidden layers ``L``.
        tau: hidden LIF membrane time constant, time steps.
        readout_tau: readout time constant, time steps (``None``: ``tau``).
        v_threshold: hidden threshold.
        v_reset: reset potential (``None``: soft reset).
        decay_input: scale inputs by ``1/τ`` in the LIF charge.
        surrogate_alpha: ATan surrogate sharpness.
        detach_reset: stop the gradient through the reset.
        dropout: dropout on hidden spikes (one mask per sequence).
        batchnorm: BatchNorm1d after each hidden Linear.
        bias: biases in the Linear layers.
        readout: scores from the readout membrane: ``"sum_softmax"``, ``"mean"``, ``"max"`` or ``"last"``.
        backend: neuron kernel backend.
        event_driven: the Linear layers skip zero inputs on CPU where that is faster (:class:`snn.layers.EventLinear`:
            same parameters and results, dense above the measured crossover density).

    Shapes: ``forward(x [T, B, n_inputs], lengths [B] | None) -> V [T, B, n_classes]``.
    """

    def __init__(self, n_inputs: int, n_classes: int, hidden: int = 256, layers: int = 2, tau: float = 2.0,
                 readout_tau: float | None = None, v_threshold: float = 1.0, v_reset: float | None = 0.0,
                 decay_input: bool = False, surrogate_alpha: float = 5.0, detach_reset: bool = True,
                 dropout: float = 0.2, batchnorm: bool = True, bias: bool = True, readout: str = "sum_softmax",
                 backend: str = "auto", event_driven: bool = True) -> None:
        super().__init__(n_inputs, n_classes, hidden, tau, readout_tau, decay_input, bias, readout, backend)
        check_positive_ints(layers=layers)
        sizes = [n_inputs] + [hidden] * layers
        self.synapses = nn.ModuleList(nn.Linear(a, b, bias=bias) for a, b in zip(sizes[:-1], sizes[1:]))
        self.norms = nn.ModuleList(nn.BatchNorm1d(hidden) if batchnorm else nn.Identity() for _ in range(layers))
        self.neurons = nn.ModuleList(
            LIF(tau=tau, v_threshold=v_threshold, v_reset=v_reset, decay_input=decay_input, detach_reset=detach_reset,
                surrogate=ATan(alpha=surrogate_alpha), backend=backend) for _ in range(layers))
        self.dropouts = nn.ModuleList(SequenceDropout(dropout) for _ in range(layers))
        self.has_batchnorm = bool(batchnorm)
        if event_driven:
            make_event_driven(self)

    def hidden(self, x: torch.Tensor, lengths: torch.Tensor | None) -> torch.Tensor:
        for syn, norm, neuron, drop in zip(self.synapses, self.norms, self.neurons, self.dropouts):
            y = syn(x)
            if self.has_batchnorm:
                T, B, C = y.shape
                y = norm(y.reshape(T * B, C)).reshape(T, B, C)
            x = drop(neuron(y))
        return x


@dataclass
class LIFClassifierConfig(ModelConfig):
    """Keys shared by the ``snn_mlp`` and ``rsnn`` sections (times in ms).

    Attributes:
        hidden: neurons per hidden layer.
        layers: hidden layers.
        tau_ms: hidden LIF membrane time constant, ms (``/ data.dt_ms`` → steps).
        readout_tau_ms: readout time constant, ms (``null``: ``tau_ms``).
        v_threshold: hidden threshold.
        v_reset: reset potential (``null``: soft reset, subtract the threshold).
        decay_input: scale inputs by ``1/τ`` in the LIF charge.
        surrogate_alpha: ATan surrogate sharpness.
        detach_reset: stop the gradient through the reset.
        dropout: dropout on hidden spikes (one mask per sequence).
        bias: biases in the Linear layers.
        readout: class scores from the readout membrane: ``"sum_softmax"``, ``"mean"``, ``"max"`` or ``"last"``.
        backend: neuron kernel backend (``"auto"``, ``"torch"``, ``"numba"``, ``"cupy"``).
    """

    hidden: int = 256
    layers: int = 2
    tau_ms: float = 20.0
    readout_tau_ms: float | None = None
    v_threshold: float = 1.0
    v_reset: float | None = 0.0
    decay_input: bool = False
    surrogate_alpha: float = 5.0
    detach_reset: bool = True
    dropout: float = 0.2
    bias: bool = True
    readout: Literal["sum_softmax", "mean", "max", "last"] = "sum_softmax"
    backend: Literal["auto", "torch", "numba", "cupy"] = "auto"

    def check(self) -> None:
        check_lif_section(self)


@dataclass
class SpikingMLPConfig(LIFClassifierConfig):
    """The ``model:`` section of ``name: snn_mlp`` (:class:`SpikingMLP`). Parameter groups: ``weights``, ``norm``
    (no weight decay).

    Attributes:
        batchnorm: BatchNorm after each hidden Linear.
        event_driven: event-driven Linear layers on CPU (:class:`snn.layers.EventLinear`; same results).
    """

    name: str = "snn_mlp"
    batchnorm: bool = True
    event_driven: bool = True


def check_lif_section(cfg: Any) -> None:
    """Range checks shared by the LIF classifier sections (raise ValueError naming the key)."""
    for key in ("hidden", "layers", "tau_ms", "surrogate_alpha", "v_threshold"):
        if getattr(cfg, key) <= 0:
            raise ValueError(f"{key}: expected a value > 0, got {getattr(cfg, key)!r}")
    if cfg.readout_tau_ms is not None and cfg.readout_tau_ms <= 0:
        raise ValueError(f"readout_tau_ms: expected a value > 0 or null, got {cfg.readout_tau_ms!r}")
    if not 0.0 <= cfg.dropout < 1.0:
        raise ValueError(f"dropout: expected a value in [0, 1), got {cfg.dropout!r}")


def lif_kwargs(cfg: Any, dt_ms: float) -> dict[str, Any]:
    """Constructor keywords of the LIF classifiers from their config section (ms → steps)."""
    return dict(hidden=cfg.hidden, layers=cfg.layers, tau=cfg.tau_ms / dt_ms,
                readout_tau=None if cfg.readout_tau_ms is None else cfg.readout_tau_ms / dt_ms,
                v_threshold=cfg.v_threshold, v_reset=cfg.v_reset, decay_input=cfg.decay_input,
                surrogate_alpha=cfg.surrogate_alpha, detach_reset=cfg.detach_reset, dropout=cfg.dropout,
                bias=cfg.bias, readout=cfg.readout, backend=cfg.backend)


@register_model("snn_mlp", SpikingMLPConfig, description="feed-forward LIF network (Linear, BatchNorm, LIF, dropout)")
def build_snn_mlp(config: Any, n_inputs: int, n_classes: int) -> SpikingMLP:
    """:class:`SpikingMLP` from ``config.model`` (times converted with ``config.data.dt_ms``)."""
    return SpikingMLP(n_inputs, n_classes, batchnorm=config.model.batchnorm, event_driven=config.model.event_driven,
                      **lif_kwargs(config.model, config.data.dt_ms))
