r"""The feed-forward learnable-delay network of Hammouamri, Khalfaoui-Hassani & Masquelier (ICLR 2024).

Layer ``l = 1 … L`` (hidden), on time-major input ``x`` ``[T, B, C]``:

.. math::

    u_l = \mathrm{BN}(\mathrm{Delay}_l(s_{l-1})), \qquad s_l = \mathrm{Dropout}(\mathrm{LIF}(u_l))

then the readout ``V = \mathrm{LI}(\mathrm{Delay}_{L+1}(s_L))`` (a LIF that never fires; no BatchNorm, no dropout,
as in the reference). Every delay layer appends ``R = (D - 1) // 2`` steps, so the output has
``T + (L + 1) R`` steps. The LIFs use ``decay_input=False`` (``H = V - V/τ + X``), hard reset to 0,
``V_th = 1``, ATan(α = 5), ``detach_reset``; BatchNorm normalises each channel over all ``T × B`` entries; dropout
draws one mask per sequence (SpikingJelly's multi-step ``Dropout``).

Class scores ``m_b = Σ_t softmax(V[t, b])`` over the valid steps ``t < T_b + (L + 1) R`` of each sample
(``T_b`` its unpadded length), and the loss is ``CrossEntropy(m, y)`` — the reference feeds these summed
probabilities to ``nn.CrossEntropyLoss`` as logits; so do we.

Delays: ``"learned"`` (Gaussian kernels whose width follows :meth:`DelayNet.set_epoch`; evaluation uses rounded
integer delays, see :meth:`DelayNet.evaluation`), ``"frozen_zero"`` (each synapse a plain weight with delay 0, the
ablation; same padding, so the same output length) or ``"frozen_random"`` (random integer delays, not trained).
"""
from __future__ import annotations

import contextlib
import math
from collections.abc import Iterator
from dataclasses import dataclass
from typing import Any, Literal

import torch
import torch.nn.functional as F
from torch import nn

from snn.callbacks import Callback
from snn.layers.delay import LearnableDelay
from snn.layers.dropout import SequenceDropout
from snn.models.protocol import ParamGroup
from snn.models.readout import check_sequence_input, time_scores
from snn.models.registry import ModelConfig, register_model
from snn.neuron_models import LI, LIF
from snn.surrogate import ATan

__all__ = ["DelayNet", "DelayNetConfig", "DelaySchedule", "SequenceDropout", "sigma_at_epoch", "DELAY_MODES"]

DELAY_MODES = ("learned", "frozen_zero", "frozen_random")


def sigma_at_epoch(epoch: int, sigma_init: float, sigma_final: float, decay_epochs: int) -> float:
    """Kernel width during (0-based) ``epoch``: ``σ_0 (σ_f/σ_0)^{min(e, E_d)/E_d}``; ``σ_0`` when ``E_d = 0``.

    The closed form of the reference's per-epoch multiplication by ``(σ_f/σ_0)^{1/E_d}``.
    """
    if decay_epochs <= 0 or sigma_init <= sigma_final:
        return float(sigma_init)
    e = min(max(epoch, 0), decay_epochs)
    return float(sigma_init * (sigma_final / sigma_init) ** (e / decay_epochs))


class DelaySchedule(Callback):
    """The delay network's training-time schedule, run by the Trainer as a callback.

    * epoch start: kernel width ``σ_e`` of :func:`sigma_at_epoch` (decay over ``⌊decay_fraction · epochs⌋`` epochs);
    * after every optimiser step: positions clamped to ``[-D//2, D//2]`` (the reference does it after each step);
    * epoch end: the epoch log shows ``sigma``.
    """

    def __init__(self, model: "DelayNet") -> None:
        self.model = model

    def on_epoch_start(self, trainer: Any, epoch: int) -> None:
        self.model.set_epoch(epoch, trainer.config.training.epochs, self.model.sigma_decay_fraction)

    def on_after_optimizer_step(self, trainer: Any) -> None:
        self.model.after_optimizer_step()

    def on_epoch_end(self, trainer: Any, epoch: int, row: dict[str, Any]) -> None:
        if self.model.delays == "learned":
            row["sigma"] = float(self.model.synapses[0].sigma)


class DelayNet(nn.Module):
    """Feed-forward SNN with learnable synaptic delays (see the module docstring for the equations).

    Args:
        n_inputs: input channels ``C``.
        n_classes: output classes.
        hidden: neurons per hidden layer.
        layers: hidden layers ``L``.
        max_delay: delay taps ``D`` (delays ``0 … D-1`` steps).
        tau: membrane time constant of the LIFs and the readout, in time steps (reference: 10.05 ms / 10 ms).
        v_threshold: hidden-layer threshold.
        surrogate_alpha: ATan surrogate sharpness.
        detach_reset: stop the gradient through the reset.
        dropout: dropout probability on hidden spikes.
        batchnorm: BatchNorm after the hidden delay layers.
        bias: bias in the delay layers.
        kernel_count: delay elements per synapse.
        delays: ``"learned"``, ``"frozen_zero"`` or ``"frozen_random"``.
        sigma_init: initial kernel width in taps (``None``: ``D // 2``).
        sigma_final: width after the decay.
        sigma_decay_fraction: share of the training epochs over which the width decays (the reference: 1/4).
        respect_lengths: with ``lengths``, mask each sample's padded steps (hidden spikes after its end, readout
            softmax over its valid steps only: outputs independent of the batch's padding). ``False`` reproduces the
            reference, which sums the readout's softmax over every padded step of the batch.
        eval_integer_delays: :meth:`evaluation` switches to rounded integer delays (triangle, σ = 0).
        backend: neuron kernel backend.

    Shapes: ``forward(x [T, B, n_inputs]) -> V [T + (L+1)·R, B, n_classes]`` (readout membrane).
    """

    def __init__(
        self,
        n_inputs: int,
        n_classes: int,
        hidden: int = 256,
        layers: int = 2,
        max_delay: int = 25,
        tau: float = 1.005,
        v_threshold: float = 1.0,
        surrogate_alpha: float = 5.0,
        detach_reset: bool = True,
        dropout: float = 0.4,
        batchnorm: bool = True,
        bias: bool = False,
        kernel_count: int = 1,
        delays: str = "learned",
        sigma_init: float | None = None,
        sigma_final: float = 0.23,
        sigma_decay_fraction: float = 0.25,
        eval_integer_delays: bool = True,
        backend: str = "auto",
        respect_lengths: bool = True,
    ) -> None:
        super().__init__()
        for name, value in (("n_inputs", n_inputs), ("n_classes", n_classes), ("hidden", hidden),
                            ("layers", layers), ("max_delay", max_delay), ("kernel_count", kernel_count)):
            if not isinstance(value, int) or isinstance(value, bool) or value < 1:
                raise ValueError(f"{name} must be a positive int, got {value!r}")
        if delays not in DELAY_MODES:
            raise ValueError(f"delays must be one of {DELAY_MODES}, got {delays!r}")
        if not (isinstance(tau, (int, float)) and math.isfinite(tau) and tau > 0):
            raise ValueError(f"tau must be a finite number > 0 (time steps), got {tau!r}")
        self.n_inputs, self.n_classes, self.hidden, self.layers = n_inputs, n_classes, hidden, layers
        self.max_delay, self.delays, self.tau = max_delay, delays, float(tau)
        self.right_pad = (max_delay - 1) // 2
        self.sigma_init = float(max_delay // 2) if sigma_init is None else float(sigma_init)
        self.sigma_final = float(sigma_final)
        if not 0.0 <= sigma_decay_fraction <= 1.0:
            raise ValueError(f"sigma_decay_fraction must lie in [0, 1], got {sigma_decay_fraction!r}")
        self.sigma_decay_fraction = float(sigma_decay_fraction)
        self.eval_integer_delays = bool(eval_integer_delays)
        self.respect_lengths = bool(respect_lengths)
        self.has_batchnorm = bool(batchnorm)

        sizes = [n_inputs] + [hidden] * layers + [n_classes]
        self.synapses = nn.ModuleList(self._delay_layer(a, b, kernel_count, bias, backend) for a, b in zip(sizes[:-1], sizes[1:]))
        self.norms = nn.ModuleList(nn.BatchNorm1d(hidden) if batchnorm else nn.Identity() for _ in range(layers))
        surrogate = ATan(alpha=surrogate_alpha)
        self.neurons = nn.ModuleList(
            LIF(tau=tau, v_threshold=v_threshold, v_reset=0.0, decay_input=False, detach_reset=detach_reset,
                surrogate=surrogate, backend=backend)
            for _ in range(layers)
        )
        self.dropouts = nn.ModuleList(SequenceDropout(dropout) for _ in range(layers))
        self.readout = LI(tau=tau, v_reset=0.0, decay_input=False, backend=backend)
        if delays == "learned":
            self.set_sigma(self.sigma_init)

    def _delay_layer(self, n_in: int, n_out: int, kernel_count: int, bias: bool, backend: str) -> LearnableDelay:
        if self.delays == "frozen_zero":
            # one tap = delay 0; the reference's right padding keeps the output length of the delayed network
            layer = LearnableDelay(n_in, n_out, max_delay=1, kernel_count=kernel_count, version="max", sigma=0.0,
                                   right_pad=self.right_pad, bias=bias)
        else:
            lim = self.max_delay // 2
            # SNN-delays draws positions on U(-max_delay//2, max_delay//2) with Python's floor division, then clamps
            layer = LearnableDelay(n_in, n_out, max_delay=self.max_delay, kernel_count=kernel_count,
                                   version="gauss" if self.delays == "learned" else "max",
                                   sigma=0.0, bias=bias, position_init_range=(-self.max_delay // 2, lim))
            if self.delays == "frozen_random":
                layer.to_integer_delays()
        if self.delays != "learned":
            layer.positions.requires_grad_(False)
        return layer

    # ------------------------------------------------------------------ schedule hooks (called by the Trainer)
    def set_sigma(self, sigma: float) -> None:
        """Set the kernel width of every delay layer (learned delays only)."""
        if self.delays == "learned":
            for s in self.synapses:
                s.set_sigma(sigma)

    def set_epoch(self, epoch: int, epochs: int, decay_fraction: float = 0.25) -> None:
        """Apply the width schedule for (0-based) ``epoch`` of ``epochs``: exponential decay over ``⌊decay_fraction·epochs⌋``."""
        self.set_sigma(sigma_at_epoch(epoch, self.sigma_init, self.sigma_final, int(epochs * decay_fraction)))

    def after_optimizer_step(self) -> None:
        """Clamp positions to ``[-D//2, D//2]`` (the reference does it after every step)."""
        if self.delays == "learned":
            for s in self.synapses:
                s.clamp_positions()

    @contextlib.contextmanager
    def evaluation(self) -> Iterator[None]:
        """Evaluate as the reference: rounded integer delays, triangle kernels, σ = 0; restored on exit.

        Inside, forwards without autograd apply the integer delays spike by spike
        (:meth:`snn.layers.LearnableDelay.integer_forward`, cost ∝ non-zero inputs) instead of the dense kernel:
        the same outputs, about 1.6× the throughput on the SHD shapes (``benchmarks/bench_training.py``).
        """
        if self.delays != "learned" or not self.eval_integer_delays:
            yield
            return
        saved = [(s.positions.detach().clone(), s.version, float(s.sigma), s.inference) for s in self.synapses]
        try:
            for s in self.synapses:
                s.to_integer_delays()
                s.inference = "sparse"  # forwards without autograd run the spike scatter (same outputs, faster)
            yield
        finally:
            with torch.no_grad():
                for s, (p, version, sigma, inference) in zip(self.synapses, saved):
                    s.positions.copy_(p)
                    s.version = version
                    s.set_sigma(sigma)
                    s.inference = inference

    def parameter_groups(self) -> dict[str, ParamGroup]:
        """``weights`` (synaptic weights and biases: weight decay), ``norm`` (BatchNorm: no decay) and ``positions``
        (their own optimiser as in the reference: lr 0.1, cosine schedule, no decay); empty groups are skipped."""
        weights, norm, positions = [], [], []
        for s in self.synapses:
            weights.append(s.weight)
            if s.bias is not None:
                weights.append(s.bias)
            if s.positions.requires_grad:
                positions.append(s.positions)
        for n in self.norms:
            norm.extend(n.parameters())
        return {"weights": ParamGroup(weights), "norm": ParamGroup(norm, weight_decay=0.0),
                "positions": ParamGroup(positions, lr=0.1, weight_decay=0.0, scheduler="cosine")}

    def callbacks(self) -> list[Callback]:
        """The σ schedule and position clamping (:class:`DelaySchedule`)."""
        return [DelaySchedule(self)]

    @staticmethod
    def checkpoint_io(state: dict[str, torch.Tensor]) -> tuple[int, int]:
        """``(n_inputs, n_classes)`` of a DelayNet state dict (first delay layer's columns, last layer's rows)."""
        weights = sorted((k for k in state if k.startswith("synapses.") and k.endswith(".weight")),
                         key=lambda k: int(k.split(".")[1]))
        if not weights:
            raise ValueError("the state dict holds no DelayNet weights (synapses.*.weight)")
        return int(state[weights[0]].shape[1]), int(state[weights[-1]].shape[0])

    def delay_layers(self) -> list[LearnableDelay]:
        return list(self.synapses)

    # ------------------------------------------------------------------ forward, readout, loss
    def output_lengths(self, lengths: torch.Tensor) -> torch.Tensor:
        """Valid output steps per sample: ``T_b + (L + 1) R``."""
        return lengths + (self.layers + 1) * self.right_pad

    @property
    def accepts_lengths(self) -> bool:
        """The Trainer passes ``lengths`` to :meth:`forward` unless ``respect_lengths=False``."""
        return self.respect_lengths

    def forward(self, x: torch.Tensor, lengths: torch.Tensor | None = None) -> torch.Tensor:
        """``x`` ``[T, B, n_inputs]`` → readout membrane ``[T + (L+1)·R, B, n_classes]``.

        With ``lengths`` (``[B]``, unpadded steps per sample) the spikes of hidden layer ``l`` are zeroed from step
        ``T_b + l·R`` on, where a sample run alone would have ended; a sample's output then does not depend on how
        much its batch is padded (BatchNorm statistics in training mode aside).
        """
        check_sequence_input(x, lengths, self.n_inputs)
        for i, (syn, norm, neuron, drop) in enumerate(zip(self.synapses, self.norms, self.neurons, self.dropouts)):
            y = syn(x.to(syn.weight.dtype))
            if self.has_batchnorm:
                T, B, C = y.shape
                y = norm(y.reshape(T * B, C)).reshape(T, B, C)
            x = drop(neuron(y))
            if lengths is not None and self.right_pad > 0:
                valid = lengths.to(x.device) + (i + 1) * self.right_pad
                keep = torch.arange(x.shape[0], device=x.device)[:, None] < valid[None, :]
                if not bool(keep.all()):
                    x = x * keep[:, :, None].to(x.dtype)
        last = self.synapses[-1]
        return self.readout(last(x.to(last.weight.dtype)))

    def scores(self, out: torch.Tensor, lengths: torch.Tensor | None = None) -> torch.Tensor:
        """Class scores ``[B, n_classes]``: ``Σ_t softmax(V[t])`` over each sample's valid steps (every step of the
        batch with ``respect_lengths=False``)."""
        valid = None if lengths is None or not self.respect_lengths else self.output_lengths(lengths)
        return time_scores(out.float(), valid, "sum_softmax")

    def loss(self, out: torch.Tensor, labels: torch.Tensor, lengths: torch.Tensor | None = None) -> torch.Tensor:
        """Cross-entropy of the summed softmax scores (the reference's ``CrossEntropyLoss(Σ_t softmax(V), y)``)."""
        return F.cross_entropy(self.scores(out, lengths), labels)

    def extra_repr(self) -> str:
        return (f"n_inputs={self.n_inputs}, n_classes={self.n_classes}, hidden={self.hidden}, layers={self.layers}, "
                f"max_delay={self.max_delay}, tau={self.tau:.4g}, delays={self.delays!r}, "
                f"sigma_init={self.sigma_init:.4g}, sigma_final={self.sigma_final:.4g}")

    @classmethod
    def from_config(cls, model_cfg: "DelayNetConfig", dt_ms: float, n_inputs: int, n_classes: int) -> "DelayNet":
        """Build from a :class:`DelayNetConfig` (``tau_ms / dt_ms`` → steps)."""
        return cls(
            n_inputs=n_inputs, n_classes=n_classes, hidden=model_cfg.hidden, layers=model_cfg.layers,
            max_delay=model_cfg.max_delay, tau=model_cfg.tau_ms / dt_ms, v_threshold=model_cfg.v_threshold,
            surrogate_alpha=model_cfg.surrogate_alpha, detach_reset=model_cfg.detach_reset, dropout=model_cfg.dropout,
            batchnorm=model_cfg.batchnorm, bias=model_cfg.bias, kernel_count=model_cfg.kernel_count,
            delays=model_cfg.delays, backend=model_cfg.backend, sigma_init=model_cfg.sigma_init,
            sigma_final=model_cfg.sigma_final, sigma_decay_fraction=model_cfg.sigma_decay_fraction,
            eval_integer_delays=model_cfg.eval_integer_delays, respect_lengths=model_cfg.respect_lengths,
        )


@dataclass
class DelayNetConfig(ModelConfig):
    """The ``model:`` section of ``name: delaynet`` (:class:`DelayNet`; times in ms).

    Attributes:
        hidden: neurons per hidden layer.
        layers: hidden layers (delay → BatchNorm → LIF → dropout each); a delay readout follows.
        max_delay: delay taps ``D`` (delays ``0 … D-1`` steps; odd, as in the reference).
        kernel_count: delay elements per synapse.
        delays: ``"learned"`` (DCLS), ``"frozen_zero"`` (the ablation: every delay 0, same layers and padding)
            or ``"frozen_random"`` (random integer delays that are not trained: the reference's ``snn_delays_lr0``).
        tau_ms: LIF and readout membrane time constant, ms (divided by ``data.dt_ms`` to steps).
        v_threshold: hidden LIF threshold.
        surrogate_alpha: ATan surrogate sharpness.
        detach_reset: stop the gradient through the reset.
        dropout: dropout probability on hidden spikes (one mask per sequence).
        batchnorm: BatchNorm1d over channels after each hidden delay layer.
        bias: bias in the delay layers.
        backend: neuron kernel backend (``"auto"``, ``"torch"``, ``"numba"``, ``"cupy"``).
        sigma_init: initial delay-kernel width in taps (``None``: ``max_delay // 2``, the reference's).
        sigma_final: width reached after ``sigma_decay_fraction`` of the epochs (exponential decay).
        sigma_decay_fraction: share of the epochs over which the width decays (reference: 1/4).
        eval_integer_delays: evaluate with rounded integer delays (triangle, σ = 0), as the reference.
        respect_lengths: mask each sample's padded steps (default); ``false`` sums the readout softmax over every
            padded step of the batch, as the reference does (batch-dependent; for exact reproduction only).

    Parameter groups (``optim.groups.<name>``): ``weights``, ``norm`` (no weight decay), ``positions`` (lr 0.1,
    cosine schedule, no weight decay).
    """

    name: str = "delaynet"
    hidden: int = 256
    layers: int = 2
    max_delay: int = 25
    kernel_count: int = 1
    delays: Literal["learned", "frozen_zero", "frozen_random"] = "learned"
    tau_ms: float = 10.05
    v_threshold: float = 1.0
    surrogate_alpha: float = 5.0
    detach_reset: bool = True
    dropout: float = 0.4
    batchnorm: bool = True
    bias: bool = False
    backend: Literal["auto", "torch", "numba", "cupy"] = "auto"
    sigma_init: float | None = None
    sigma_final: float = 0.23
    sigma_decay_fraction: float = 0.25
    eval_integer_delays: bool = True
    respect_lengths: bool = True

    def check(self) -> None:
        for key in ("hidden", "layers", "max_delay", "kernel_count", "tau_ms", "surrogate_alpha"):
            if getattr(self, key) <= 0:
                raise ValueError(f"{key}: expected a value > 0, got {getattr(self, key)!r}")
        if not 0.0 <= self.dropout < 1.0:
            raise ValueError(f"dropout: expected a value in [0, 1), got {self.dropout!r}")
        if not 0.0 <= self.sigma_decay_fraction <= 1.0:
            raise ValueError(f"sigma_decay_fraction: expected a value in [0, 1], got {self.sigma_decay_fraction!r}")
        if not self.sigma_final > 0:
            raise ValueError(f"sigma_final: expected a value > 0 (a zero width has no taps), got {self.sigma_final!r}")
        if self.sigma_init is not None and not self.sigma_init > 0:
            raise ValueError(f"sigma_init: expected a value > 0 or null, got {self.sigma_init!r}")


@register_model("delaynet", DelayNetConfig, description="feed-forward LIF network with learnable delays (DCLS)",
                checkpoint_io=DelayNet.checkpoint_io)
def build_delaynet(config: Any, n_inputs: int, n_classes: int) -> DelayNet:
    """The delay network of ``config.model`` for the data (times converted with ``config.data.dt_ms``)."""
    return DelayNet.from_config(config.model, config.data.dt_ms, n_inputs, n_classes)
