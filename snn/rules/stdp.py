r"""Pair-based STDP and reward-modulated (three-factor) STDP.

Traces, per presynaptic input ``i`` and postsynaptic neuron ``j``, reset at the start of every sequence
(``x_i[-1] = y_j[-1] = 0``) and updated *before* the weight change of each step (SpikingJelly's order):

.. math::

    x_i[t] = x_i[t-1]\,(1 - 1/\tau_{pre}) + s^{pre}_i[t], \qquad
    y_j[t] = y_j[t-1]\,(1 - 1/\tau_{post}) + s^{post}_j[t]

    \Delta w_{ji} = \sum_{r} \sum_t \Big( f_+(w_{ji})\, s^{post}_j[t]\, (x_i[t] - x_{tar}) \;-\; f_-(w_{ji})\, y_j[t]\, s^{pre}_i[t] \Big)

summed over the rows ``r`` (samples, and output positions of a Conv2d) or averaged (``batch_reduction="mean"``),
with the weight held fixed over the sequence. A pre spike before a post spike potentiates (``Δw > 0``), the
reverse depresses; a pre and post spike in the same step contribute ``f_+ − f_-`` (they cancel for equal
amplitudes). The offset ``x_tar`` (``pre_offset``, default 0) makes the postsynaptic-triggered term depress the
inputs whose trace is below it at a post spike — Diehl & Cook's rule ``Δw = η (x_pre − x_tar) f(w)`` on every post
spike is ``a_minus = 0`` with ``pre_offset = x_tar``. Weight dependence:

* ``additive``: ``f_+(w) = A_+``, ``f_-(w) = A_-``, usually with hard bounds ``w ∈ [w_min, w_max]`` (clamped
  after each optimiser step);
* ``multiplicative`` (soft bounds): ``f_+(w) = A_+ (w_max − w)``, ``f_-(w) = A_- (w − w_min)``;
* any callables ``f_plus(w)``, ``f_minus(w)`` (Python API). SpikingJelly's ``STDPLearner(f_post=f_+, f_pre=f_-)``
  computes the same ``Δw`` on the same spike trains (its default identity functions are ``f_±(w) = w``).

Reward-modulated STDP (:class:`RSTDP`): each sample's eligibility ``e_b`` is the bracket above summed over its
time steps; a per-sample reward ``r_b`` (the third factor) scales it: ``Δw = Σ_b r_b e_b`` (or, with a reward
``r_{bj}`` per sample and postsynaptic neuron, e.g. crediting only the neuron that acted,
``Δw_{ji} = Σ_b r_{bj} e_{b,ji}``). Inside the Trainer the
reward is ``+1`` for a correctly classified sample and ``−1`` otherwise (``reward_correct`` / ``reward_wrong``);
in a closed loop the caller passes its own rewards to :meth:`RSTDP.write_grads`.
"""
from __future__ import annotations

import math
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from typing import Any, Literal

import torch

from snn.rules.local import LocalRule, Record
from snn.rules.registry import RuleConfig, register_rule

__all__ = ["STDP", "RSTDP", "STDPConfig", "RSTDPConfig", "stdp_traces", "dependence_functions"]

WeightFn = Callable[[torch.Tensor], torch.Tensor]


def stdp_traces(s: torch.Tensor, tau: float) -> torch.Tensor:
    """Traces ``tr[t] = tr[t-1](1 - 1/τ) + s[t]`` from ``tr[-1] = 0`` for spikes ``s`` ``[T, ...]``."""
    decay = 1.0 - 1.0 / tau
    out = torch.empty_like(s)
    tr = torch.zeros_like(s[0])
    for t in range(s.shape[0]):
        tr = tr * decay + s[t]
        out[t] = tr
    return out


def dependence_functions(kind: str, a_plus: float, a_minus: float, w_min: float | None,
                      w_max: float | None) -> tuple[WeightFn, WeightFn]:
    """``(f_+, f_-)`` for ``"additive"`` or ``"multiplicative"`` (soft-bound) STDP (module docstring)."""
    if kind == "additive":
        return (lambda w: torch.full_like(w, a_plus)), (lambda w: torch.full_like(w, a_minus))
    if kind == "multiplicative":
        if w_min is None or w_max is None:
            raise ValueError("multiplicative (soft-bound) STDP needs w_min and w_max")
        return (lambda w: a_plus * (w_max - w)), (lambda w: a_minus * (w - w_min))
    raise ValueError(f"weight_dependence must be 'additive' or 'multiplicative', got {kind!r}")


class STDP(LocalRule):
    r"""Pair-based STDP on Linear/Conv2d synapses (equations in the module docstring).

    Args:
        tau_pre, tau_post: trace time constants, time steps (``≥ 1``; decay ``1 − 1/τ`` per step).
        a_plus, a_minus: amplitudes ``A_+``, ``A_-`` (``≥ 0``).
        weight_dependence: ``"additive"`` or ``"multiplicative"`` (soft bounds in ``[w_min, w_max]``).
        f_plus, f_minus: custom weight-dependence callables (override ``weight_dependence``).
        pre_offset: ``x_tar``, subtracted from the presynaptic trace in the postsynaptic-triggered term.
        layers, supervised, batch_reduction, w_min, w_max, lr, optimizer, normalise: see
            :class:`snn.rules.local.LocalRule`
            (``supervised`` defaults to ``False`` here: STDP alone is unsupervised).

    Example::

        rule = STDP(layers="fc1", a_plus=1e-3, a_minus=1.05e-3, w_min=0.0, w_max=1.0)
        rule.attach(model)
        with rule.record():
            model(x)               # x [T, B, C]
        rule.write_grads()         # weight.grad = -Δw; then optimiser.step()
    """

    name = "stdp"

    def __init__(self, layers: str | Sequence[str] | None = "auto", tau_pre: float = 2.0, tau_post: float = 2.0,
                 a_plus: float = 1e-3, a_minus: float = 1e-3, weight_dependence: str = "additive",
                 f_plus: WeightFn | None = None, f_minus: WeightFn | None = None, supervised: bool = False,
                 batch_reduction: str = "sum", w_min: float | None = None, w_max: float | None = None,
                 lr: float = 1.0, optimizer: str = "sgd", pre_offset: float = 0.0,
                 normalise: float | None = None) -> None:
        super().__init__(layers, supervised, batch_reduction, w_min, w_max, lr, optimizer, normalise)
        for key, v in (("tau_pre", tau_pre), ("tau_post", tau_post)):
            if not (isinstance(v, (int, float)) and math.isfinite(v) and v >= 1):
                raise ValueError(f"{key} must be a finite number >= 1 (time steps), got {v!r}")
        for key, v in (("a_plus", a_plus), ("a_minus", a_minus)):
            if not (isinstance(v, (int, float)) and math.isfinite(v) and v >= 0):
                raise ValueError(f"{key} must be a finite number >= 0, got {v!r}")
        if not (isinstance(pre_offset, (int, float)) and math.isfinite(pre_offset)):
            raise ValueError(f"pre_offset must be a finite number, got {pre_offset!r}")
        self.pre_offset = float(pre_offset)
        self.tau_pre, self.tau_post = float(tau_pre), float(tau_post)
        self.a_plus, self.a_minus = float(a_plus), float(a_minus)
        self.weight_dependence = weight_dependence
        fp, fm = (None, None) if f_plus is not None and f_minus is not None else \
            dependence_functions(weight_dependence, a_plus, a_minus, w_min, w_max)
        self.f_plus, self.f_minus = f_plus or fp, f_minus or fm

    def pair_terms(self, rec: Record) -> tuple[torch.Tensor, torch.Tensor, torch.Tensor, torch.Tensor]:
        """``(s_pre, x, s_post, y)``: spikes and traces, ``[T, R, K]`` / ``[T, R, N]``."""
        pre, post = rec.pre.to(rec.synapse.weight.dtype), rec.post.to(rec.synapse.weight.dtype)
        return pre, stdp_traces(pre, self.tau_pre), post, stdp_traces(post, self.tau_post)

    def delta(self, rec: Record, weight: torch.Tensor, row_weight: torch.Tensor | None = None) -> torch.Tensor:
        pre, x, post, y = self.pair_terms(rec)
        if row_weight is not None:  # per-row (or per-row and neuron) factor, e.g. the reward, over all steps
            rw = row_weight[None, :, None] if row_weight.dim() == 1 else row_weight[None]
            post, y = post * rw, y * rw
        K, N = pre.shape[-1], post.shape[-1]
        ltp = post.reshape(-1, N).t() @ x.reshape(-1, K)   # Σ_t,r s_post ⊗ x
        if self.pre_offset:
            ltp = ltp - self.pre_offset * post.reshape(-1, N).sum(0)[:, None]  # Σ_t,r s_post ⊗ (x - x_tar)
        ltd = y.reshape(-1, N).t() @ pre.reshape(-1, K)    # Σ_t,r y ⊗ s_pre
        return self.f_plus(weight) * ltp - self.f_minus(weight) * ltd

    def __repr__(self) -> str:
        return (f"{type(self).__name__}(layers={self.layers!r}, tau_pre={self.tau_pre:g}, tau_post={self.tau_post:g}, "
                f"a_plus={self.a_plus:g}, a_minus={self.a_minus:g}, weight_dependence={self.weight_dependence!r})")


class RSTDP(STDP):
    r"""Reward-modulated STDP: ``Δw = Σ_b r_b e_b`` with the per-sample STDP eligibility ``e_b`` (module docstring).

    Args:
        reward_correct, reward_wrong: rewards of a correctly / wrongly classified sample inside the Trainer.
        Others as :class:`STDP`.

    In a closed loop: ``with rule.record(): out = model(x)``, choose actions, then
    ``rule.write_grads(reward=r)`` with ``r`` ``[B]`` (or ``[B, N]``: per postsynaptic neuron) and step the
    optimiser.
    """

    name = "rstdp"

    def __init__(self, *args: Any, reward_correct: float = 1.0, reward_wrong: float = -1.0, **kwargs: Any) -> None:
        super().__init__(*args, **kwargs)
        self.reward_correct, self.reward_wrong = float(reward_correct), float(reward_wrong)

    def delta(self, rec: Record, weight: torch.Tensor, reward: torch.Tensor | float | None = None) -> torch.Tensor:
        if reward is None:
            raise ValueError("RSTDP: reward is required (a number or a tensor [B], one per sample)")
        rows = rec.pre.shape[1]
        r = torch.as_tensor(reward, dtype=weight.dtype, device=weight.device)
        if r.dim() == 0:
            r = r.expand(rows)
        elif r.dim() > 2 or rows % r.shape[0] or (r.dim() == 2 and r.shape[1] != weight.shape[0]):
            raise ValueError(f"RSTDP: reward must be a number, a tensor [B] or [B, {weight.shape[0]}] (per sample and "
                             f"postsynaptic neuron), got shape {tuple(r.shape)} for {rows} rows")
        r = r.repeat_interleave(rows // r.shape[0], dim=0)  # conv rows: sample-major (b, position)
        return super().delta(rec, weight, row_weight=r)

    def update_inputs(self, scores: torch.Tensor, labels: torch.Tensor) -> dict[str, Any]:
        correct = scores.argmax(1) == labels
        return {"reward": torch.where(correct, self.reward_correct, self.reward_wrong).to(scores.dtype)}


@dataclass
class STDPConfig(RuleConfig):
    """``training.rule: {name: stdp, ...}`` (:class:`STDP`).

    Attributes:
        layers: synapses to train: module names, comma-separated, or ``"auto"`` (every Linear/Conv2d but the
            model's ``output`` readout).
        tau_pre, tau_post: trace time constants, time steps (≥ 1).
        a_plus, a_minus: potentiation / depression amplitudes.
        weight_dependence: ``"additive"`` or ``"multiplicative"`` (soft bounds, needs w_min and w_max).
        w_min, w_max: hard bounds applied after each step (``null``: none).
        supervised: train the other parameters (e.g. the readout) by backprop in the same step.
        batch_reduction: ``"sum"`` or ``"mean"`` over samples (and conv positions).
        lr: learning rate of the ``local`` group.
        optimizer: optimiser of the ``local`` group.
        pre_offset: ``x_tar`` subtracted from the presynaptic trace at each post spike (Diehl & Cook's rule).
        normalise: after each step, scale each neuron's incoming weights to sum to this (``null``: off).
    """

    name: str = "stdp"
    layers: str = "auto"
    tau_pre: float = 2.0
    tau_post: float = 2.0
    a_plus: float = 1e-3
    a_minus: float = 1e-3
    weight_dependence: Literal["additive", "multiplicative"] = "additive"
    w_min: float | None = None
    w_max: float | None = None
    supervised: bool = False
    batch_reduction: Literal["sum", "mean"] = "sum"
    lr: float = 1.0
    optimizer: Literal["adam", "adamw", "adamax", "sgd"] = "sgd"
    pre_offset: float = 0.0
    normalise: float | None = None

    def check(self) -> None:
        if self.normalise is not None and not self.normalise > 0:
            raise ValueError(f"normalise: expected a value > 0 or null, got {self.normalise!r}")
        for key in ("tau_pre", "tau_post"):
            if not getattr(self, key) >= 1:
                raise ValueError(f"{key}: expected a value >= 1 (time steps), got {getattr(self, key)!r}")
        for key in ("a_plus", "a_minus"):
            if not getattr(self, key) >= 0:
                raise ValueError(f"{key}: expected a value >= 0, got {getattr(self, key)!r}")
        if not self.lr > 0:
            raise ValueError(f"lr: expected a value > 0, got {self.lr!r}")
        if self.w_min is not None and self.w_max is not None and not self.w_min < self.w_max:
            raise ValueError(f"w_min: expected a value < w_max ({self.w_max!r}), got {self.w_min!r}")
        if self.weight_dependence == "multiplicative" and (self.w_min is None or self.w_max is None):
            raise ValueError("weight_dependence: 'multiplicative' needs w_min and w_max")


@dataclass
class RSTDPConfig(STDPConfig):
    """``training.rule: {name: rstdp, ...}`` (:class:`RSTDP`): the keys of ``stdp`` plus the rewards.

    Attributes:
        reward_correct: reward of a correctly classified sample.
        reward_wrong: reward of a wrongly classified sample.
    """

    name: str = "rstdp"
    reward_correct: float = 1.0
    reward_wrong: float = -1.0


register_rule("stdp", STDPConfig, STDP)
register_rule("rstdp", RSTDPConfig, RSTDP)
