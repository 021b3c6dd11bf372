r"""Diehl & Cook (2015), "Unsupervised learning of digit recognition using spike-timing-dependent plasticity".

The network, on time-major input ``x [T_in, B, C(, H, W)]`` whose ``F = C·H·W`` features are intensities in ``[0, 1]``:

.. math::

    s^{in}[t] \sim \mathrm{Poisson}(x \cdot r_{max}) \quad (t = 0 … T-1), \qquad
    I[t] = W s^{in}[t], \qquad s[t] = \mathrm{CompetitiveLIF}(I)[t]

* input: Poisson rate coding of the time-mean of ``x`` over each sample's real steps ``L_b``
  (:class:`snn.layers.poisson.PoissonEncoder`), or, with ``encoding="none"``, ``x`` itself as the input spike trains
  ``[T, B, F]``. With ``time_windows = W > 1`` the real steps are cut into ``W`` equal windows and each window's mean
  is a separate group of ``F`` input channels (``W·F`` Poisson trains, all presented for the whole ``T`` steps):

  .. math::

      \bar x_{b,w,i} = \frac{1}{|\mathcal{W}_{b,w}|} \sum_{t \in \mathcal{W}_{b,w}} x_{t,b,i}, \qquad
      \mathcal{W}_{b,w} = \{t < L_b : \lfloor t W / L_b \rfloor = w\}

  so a coarse temporal code (e.g. which frequency bands are active early or late in a spoken word) survives the
  rate coding, which the whole-sample mean (``W = 1``) discards;
* ``W [N, F]`` (``synapse``, an ``nn.Linear`` without bias, initialised uniform in ``[0, w_init]``) is trained by a
  local rule: STDP (:class:`snn.rules.STDP`) with hard bounds ``[0, 1]`` and per-neuron input-weight normalisation
  ``Σ_i W_{ji} = c`` after every step (the rule's ``normalise`` option) — the model does not know its trainer;
* the excitatory layer (:class:`snn.layers.competitive.CompetitiveLIF`): LIF neurons with adaptive thresholds ``θ``
  (raised by every spike, decaying slowly, adapted in training mode only) and lateral inhibition;
* labels after learning (:mod:`snn.models.label_vote`): each neuron is assigned the class it fires most for on the
  training set; a sample's class scores are the mean spike counts of each class's neurons. :class:`AssignLabels`,
  a callback the model returns from :meth:`DiehlCookNetwork.callbacks`, reassigns before every evaluation that
  follows a training epoch (an extra pass over the training set, ``θ`` fixed); the assignments are a buffer, so
  checkpoints predict without the training data.

Loss (for logging; nothing is trained on it): the negative log of the true class's share of the votes,
``-log((v_y + ε) / (Σ_c v_c + K ε))`` with ``ε = 10^{-3}`` (``log K`` before any assignment).
"""
from __future__ import annotations

from dataclasses import dataclass
from typing import Any, Literal

import torch
import torch.nn.functional as F
from torch import nn

from snn.callbacks import Callback
from snn.layers.competitive import CompetitiveLIF
from snn.layers.poisson import PoissonEncoder
from snn.models.label_vote import assign_labels, class_votes
from snn.models.registry import ModelConfig, register_model

__all__ = ["DiehlCookNetwork", "DiehlCookConfig", "AssignLabels"]

_EPS = 1e-3


class DiehlCookNetwork(nn.Module):
    """The Diehl & Cook network (module docstring).

    Args:
        n_inputs: input features ``F`` (pixels × channels).
        n_classes: classes ``K`` of the label assignment.
        n_neurons: excitatory neurons ``N``.
        time_steps: presentation length ``T`` per sample, steps (Poisson encoding).
        dt_ms: step, ms.
        max_rate_hz: Poisson rate of an intensity of 1, Hz.
        encoding: ``"poisson"`` (rate-code the time-mean of the input) or ``"none"`` (the input is spikes).
        w_init: initial weights uniform in ``[0, w_init]``.
        tau_ms, refractory_ms, tau_theta_ms: membrane, refractory and threshold-decay times, ms.
        v_rest, v_reset, v_threshold, inhibition, theta_plus: see :class:`snn.layers.competitive.CompetitiveLIF` (mV).

        time_windows: ``W``, windows of the input whose means are separate input channels (Poisson encoding).

    Shapes: ``forward(x [T_in, B, ...], lengths [B] | None) -> spikes [T, B, N]``; ``scores(spikes) -> votes [B, K]``.
    The synapse has ``W · n_inputs`` inputs.
    """

    accepts_lengths = True

    def __init__(self, n_inputs: int, n_classes: int, n_neurons: int = 100, time_steps: int = 250,
                 dt_ms: float = 1.0, max_rate_hz: float = 63.75, encoding: str = "poisson", w_init: float = 0.3,
                 tau_ms: float = 100.0, refractory_ms: float = 5.0, tau_theta_ms: float = 1e7, v_rest: float = -65.0,
                 v_reset: float = -60.0, v_threshold: float = -52.0, inhibition: float = 17.5,
                 theta_plus: float = 0.05, time_windows: int = 1) -> None:
        super().__init__()
        for name, v in (("n_inputs", n_inputs), ("n_classes", n_classes), ("n_neurons", n_neurons),
                        ("time_steps", time_steps), ("time_windows", time_windows)):
            if not isinstance(v, int) or isinstance(v, bool) or v < 1:
                raise ValueError(f"{name}: expected an int >= 1, got {v!r}")
        if encoding not in ("poisson", "none"):
            raise ValueError(f"encoding: expected 'poisson' or 'none', got {encoding!r}")
        if time_windows > 1 and encoding != "poisson":
            raise ValueError(f"time_windows: expected 1 with encoding='none' (windows are rate-coded), got {time_windows}")
        if not (isinstance(w_init, (int, float)) and w_init >= 0):
            raise ValueError(f"w_init: expected a number >= 0, got {w_init!r}")
        if not (isinstance(dt_ms, (int, float)) and dt_ms > 0):
            raise ValueError(f"dt_ms: expected a number > 0, got {dt_ms!r}")
        self.n_inputs, self.n_classes, self.encoding = n_inputs, n_classes, encoding
        self.time_windows = time_windows
        self.encoder = PoissonEncoder(time_steps, max_rate_hz, dt_ms)
        self.synapse = nn.Linear(n_inputs * time_windows, n_neurons, bias=False)
        with torch.no_grad():
            self.synapse.weight.uniform_(0.0, float(w_init))
        self.excitatory = CompetitiveLIF(n_neurons, tau=tau_ms / dt_ms, v_rest=v_rest, v_reset=v_reset,
                                         v_threshold=v_threshold, refractory=int(round(refractory_ms / dt_ms)),
                                         inhibition=inhibition, theta_plus=theta_plus, tau_theta=tau_theta_ms / dt_ms)
        self.register_buffer("assignments", torch.full((n_neurons,), -1, dtype=torch.long))

    def input_spikes(self, x: torch.Tensor, lengths: torch.Tensor | None = None) -> torch.Tensor:
        """The input spike trains ``[T, B, W·F]`` of ``x`` ``[T_in, B, ...]`` (checks the feature count)."""
        if not isinstance(x, torch.Tensor) or x.dim() < 3:
            raise ValueError(f"DiehlCookNetwork: x must be a tensor [T, B, features...], got "
                             f"{tuple(x.shape) if isinstance(x, torch.Tensor) else type(x).__name__}")
        flat = x.reshape(x.shape[0], x.shape[1], -1)
        if flat.shape[2] != self.n_inputs:
            raise ValueError(f"DiehlCookNetwork: expected n_inputs={self.n_inputs} input features per step "
                             f"(the product of dims 2..), got {flat.shape[2]} from x of shape {tuple(x.shape)}")
        return self.encoder(self.window_means(flat, lengths)) if self.encoding == "poisson" else flat

    def window_means(self, flat: torch.Tensor, lengths: torch.Tensor | None = None) -> torch.Tensor:
        """Intensities ``[B, W·F]`` (window-major) of ``flat [T_in, B, F]``: each window's mean over the real steps
        (module docstring; ``lengths None``: every step is real)."""
        T, B = flat.shape[0], flat.shape[1]
        L = (torch.full((B,), T, device=flat.device) if lengths is None
             else lengths.to(flat.device, torch.long).clamp(0, T))
        t = torch.arange(T, device=flat.device)[:, None]
        window = torch.div(t * self.time_windows, L.clamp_min(1)[None, :], rounding_mode="floor")  # [T, B]
        onehot = F.one_hot(window.clamp_max(self.time_windows - 1), self.time_windows).to(flat.dtype)
        onehot = onehot * (t < L[None, :]).to(flat.dtype)[:, :, None]  # [T, B, W]: padded steps in no window
        sums = (onehot[:, :, :, None] * flat[:, :, None, :]).sum(0)  # [B, W, F] (elementwise: encoding, not synapses)
        return (sums / onehot.sum(0).clamp_min(1)[:, :, None]).reshape(B, -1)

    def forward(self, x: torch.Tensor, lengths: torch.Tensor | None = None) -> torch.Tensor:
        return self.excitatory(self.synapse(self.input_spikes(x, lengths)))

    @torch.no_grad()
    def spike_counts(self, x: torch.Tensor, lengths: torch.Tensor | None = None) -> torch.Tensor:
        """Spike counts ``[B, N]`` of ``x`` without module hooks and without adapting ``θ`` (label assignment)."""
        current = F.linear(self.input_spikes(x, lengths), self.synapse.weight)
        return self.excitatory.run(current, adapt=False).sum(0)

    def scores(self, out: torch.Tensor, lengths: torch.Tensor | None = None) -> torch.Tensor:
        """Class votes ``[B, K]`` of the spikes ``out [T, B, N]`` (:func:`snn.models.label_vote.class_votes`)."""
        return class_votes(out.sum(0), self.assignments, self.n_classes)

    def loss(self, out: torch.Tensor, labels: torch.Tensor, lengths: torch.Tensor | None = None) -> torch.Tensor:
        """``-log`` of the true class's vote share (module docstring); logged only."""
        v = self.scores(out) + _EPS
        return -(v.gather(1, labels[:, None]).squeeze(1) / v.sum(1)).log().mean()

    @torch.no_grad()
    def assign(self, batches, device: torch.device | str | None = None) -> torch.Tensor:
        """Assign labels from ``(x, labels[, lengths])`` batches (e.g. the training set); returns the assignments."""
        counts, labels = [], []
        for batch in batches:
            x, y = batch[0], batch[1]
            lengths = batch[2] if len(batch) > 2 and isinstance(batch[2], torch.Tensor) else None
            if device is not None:
                x, lengths = x.to(device), (None if lengths is None else lengths.to(device))
            counts.append(self.spike_counts(x, lengths).cpu())
            labels.append(y.cpu())
        if not counts:
            raise ValueError("DiehlCookNetwork.assign: no batches to assign labels from")
        self.assignments.copy_(assign_labels(torch.cat(counts), torch.cat(labels), self.n_classes))
        return self.assignments

    def callbacks(self) -> list[Callback]:
        return [AssignLabels(self)]


class AssignLabels(Callback):
    """Reassigns the network's labels on the training set before the first evaluation after each training epoch.

    It reads only the Trainer's public ``train_data``, ``eval_loader()`` and ``device``; the pass runs the model's
    :meth:`DiehlCookNetwork.spike_counts` (no module hooks: rate monitors and energy counters of the evaluation that
    follows do not see it). With no validation set it assigns at the end of the epoch instead (after ``best.pt``
    was written: that checkpoint then holds the previous epoch's assignments)."""

    def __init__(self, model: DiehlCookNetwork) -> None:
        self.model = model
        self.stale = False

    def on_epoch_start(self, trainer: Any, epoch: int) -> None:
        self.stale = True

    def on_evaluate_start(self, trainer: Any, split: str) -> None:
        if self.stale:
            self.model.assign(trainer.eval_loader(trainer.train_data), trainer.device)
            self.stale = False

    def on_epoch_end(self, trainer: Any, epoch: int, row: dict[str, Any]) -> None:
        if self.stale:  # no validation set this epoch: assign now (evaluations after this use them)
            self.model.assign(trainer.eval_loader(trainer.train_data), trainer.device)
            self.stale = False
        row["assigned_neurons"] = int((self.model.assignments >= 0).sum())


@dataclass
class DiehlCookConfig(ModelConfig):
    """The ``model:`` section of ``name: diehl_cook`` (:class:`DiehlCookNetwork`). Train it with a local rule, e.g.
    ``training.rule: {name: stdp, w_min: 0, w_max: 1, normalise: ...}``. Times in ms (``/ data.dt_ms`` → steps).

    Attributes:
        n_neurons: excitatory neurons.
        image_size: side ``S`` of square image inputs ``[T, B, C, S, S]`` (features ``C·S²``); ``null``: the input is
            ``[T, B, n_inputs]``.
        presentation_ms: how long each sample is shown (Poisson encoding), ms.
        max_rate_hz: Poisson rate of an intensity of 1, Hz.
        encoding: ``"poisson"`` or ``"none"`` (the data are spike trains already).
        w_init: initial weights uniform in ``[0, w_init]``.
        tau_ms: membrane time constant, ms.
        refractory_ms: refractory period, ms.
        tau_theta_ms: decay time constant of the adaptive thresholds, ms.
        v_rest: resting potential, mV.
        v_reset: reset potential, mV.
        v_threshold: base threshold, mV.
        inhibition: lateral inhibition per spike, mV (on every other neuron, next step).
        theta_plus: threshold increase per spike, mV.
        time_windows: windows of each sample whose means are rate-coded as separate input channels (1: the whole
            sample's mean).
        dt_ms: the network's step, ms (``null``: ``data.dt_ms``, the input's bin; a rate-coded input makes its own
            steps, so its bin and the network's step may differ).
    """

    name: str = "diehl_cook"
    n_neurons: int = 100
    image_size: int | None = None
    presentation_ms: float = 250.0
    max_rate_hz: float = 63.75
    encoding: Literal["poisson", "none"] = "poisson"
    w_init: float = 0.3
    tau_ms: float = 100.0
    refractory_ms: float = 5.0
    tau_theta_ms: float = 1e7
    v_rest: float = -65.0
    v_reset: float = -60.0
    v_threshold: float = -52.0
    inhibition: float = 17.5
    theta_plus: float = 0.05
    time_windows: int = 1
    dt_ms: float | None = None

    def check(self) -> None:
        for key in ("n_neurons", "presentation_ms", "max_rate_hz", "tau_ms", "tau_theta_ms", "time_windows"):
            if not getattr(self, key) > 0:
                raise ValueError(f"{key}: expected a value > 0, got {getattr(self, key)!r}")
        if self.dt_ms is not None and not self.dt_ms > 0:
            raise ValueError(f"dt_ms: expected a value > 0 or null, got {self.dt_ms!r}")
        if self.time_windows > 1 and self.encoding != "poisson":
            raise ValueError(f"time_windows: expected 1 with encoding 'none', got {self.time_windows!r}")
        if self.image_size is not None and self.image_size < 1:
            raise ValueError(f"image_size: expected a value >= 1 or null, got {self.image_size!r}")
        for key in ("w_init", "refractory_ms", "inhibition", "theta_plus"):
            if not getattr(self, key) >= 0:
                raise ValueError(f"{key}: expected a value >= 0, got {getattr(self, key)!r}")
        if not self.v_reset < self.v_threshold:
            raise ValueError(f"v_reset: expected a value below v_threshold ({self.v_threshold!r}), got {self.v_reset!r}")


@register_model("diehl_cook", DiehlCookConfig,
                description="Diehl & Cook 2015: Poisson input, STDP, adaptive thresholds, lateral inhibition")
def build_diehl_cook(config: Any, n_inputs: int, n_classes: int) -> DiehlCookNetwork:
    """:class:`DiehlCookNetwork` from ``config.model`` (times converted with ``config.data.dt_ms``)."""
    m = config.model
    dt = m.dt_ms if m.dt_ms is not None else config.data.dt_ms
    features = n_inputs * (m.image_size ** 2 if m.image_size is not None else 1)
    return DiehlCookNetwork(features, n_classes, n_neurons=m.n_neurons,
                            time_steps=max(1, int(round(m.presentation_ms / dt))), dt_ms=dt,
                            max_rate_hz=m.max_rate_hz, encoding=m.encoding, w_init=m.w_init, tau_ms=m.tau_ms,
                            refractory_ms=m.refractory_ms, tau_theta_ms=m.tau_theta_ms, v_rest=m.v_rest,
                            v_reset=m.v_reset, v_threshold=m.v_threshold, inhibition=m.inhibition,
                            theta_plus=m.theta_plus, time_windows=m.time_windows)
