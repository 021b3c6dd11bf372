r"""SoftHebb (Journé, Rodriguez, Guo, Moraitis, ICLR 2023): soft winner-take-all Hebbian learning, unsupervised.

For one synapse with weights ``W [N, K]`` (a Conv2d's kernels flattened over its patches), each row ``r`` (sample,
or sample × output position) with presynaptic rates ``x_r = (1/T_r) Σ_t s^{pre}_r[t]`` ``[K]`` (``T_r``: the real
steps of the row's sample in a padded batch):

.. math::

    u_r = W x_r, \qquad y_r = \mathrm{softmax}\big(u_r / (\rho\,\tau)\big)

    \Delta W = \eta \sum_r \tilde y_r \otimes x_r \;-\; \frac{\eta}{\rho^2}\, \mathrm{diag}\Big(\sum_r \tilde y_r \odot u_r\Big) W

The first term is Hebbian; the second, the weight-norm term, drives every row of ``W`` towards the norm ``ρ``
(``‖w_j‖ → ρ``, Oja-like; the paper's rule is ``ρ = 1``). ``ρ`` sets the size of the currents ``u`` the
neurons after the synapse see, and so their firing: with non-negative rate inputs of norm ``‖x‖`` a neuron
aligned with its input receives about ``ρ ‖x‖``. The temperature acts on the normalised currents ``u / ρ``.
With ``anti_hebbian=True`` (the paper's variant) ``ỹ_{rj} = y_{rj}`` for the winner
``j = argmax u_r`` and ``−y_{rj}`` for the others; otherwise ``ỹ = y``. With ``normalise=True`` each neuron's
update (row of ``ΔW``) is divided by its largest magnitude, so every neuron moves towards the inputs it claims
at the same speed — neurons that rarely win still specialise instead of staying where they were initialised
(a per-neuron learning rate in the spirit of the paper's norm-dependent one); the step size is then set by the
optimiser's learning rate alone. Do not combine it with ``anti_hebbian``: a loser's small anti-Hebbian update,
scaled up to full size, silences it in a spiking layer (measured: 250 of 256 neurons silent on 8×8 digits).
With ``centre=True`` the rule sees centred rates ``x_r − x̄`` (``x̄`` the mean over the batch's rows, of every
process under DDP) in place of ``x_r`` — in ``u``, ``y`` and ``ΔW`` — as the paper's networks see standardised
inputs: non-negative rates make every prototype correlate positively with every input, so the learned rows differ
mostly by the amount of input, not its shape. Pair it with a BatchNorm on the synapse's currents in the forward
(``snn_mlp``'s ``batchnorm: true``), which centres what the spiking neurons see the same way
(``BN(Wx) ∝ W(x − x̄)``). ``batch_reduction="mean"`` averages over rows instead of summing. The spiking neurons after the synapse run as
the model defines them; the rule only reads the synapse's input. A supervised readout (``supervised=True``,
the default) trains the rest of the model by backprop on the model's loss in the same step.
"""
from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from typing import Literal

import torch

from snn.rules.local import LocalRule, Record, global_mean
from snn.rules.registry import RuleConfig, register_rule

__all__ = ["SoftHebb", "SoftHebbConfig"]


class SoftHebb(LocalRule):
    """SoftHebb on Linear/Conv2d synapses (equations in the module docstring).

    Args:
        tau: softmax temperature ``τ`` (> 0) on the normalised currents ``u / ρ``.
        norm: target row norm ``ρ`` (> 0).
        anti_hebbian: losers get ``−y`` (the paper's variant).
        normalise: divide each row of ``ΔW`` by its largest magnitude.
        centre: learn on batch-centred rates.
        layers, supervised, batch_reduction, w_min, w_max, lr, optimizer: see :class:`snn.rules.local.LocalRule`.
    """

    name = "softhebb"
    needs_post = False

    def __init__(self, layers: str | Sequence[str] | None = "auto", tau: float = 1.0, norm: float = 1.0,
                 anti_hebbian: bool = True, normalise: bool = False, centre: bool = False, supervised: bool = True,
                 batch_reduction: str = "mean",
                 w_min: float | None = None, w_max: float | None = None, lr: float = 0.01,
                 optimizer: str = "sgd") -> None:
        super().__init__(layers, supervised, batch_reduction, w_min, w_max, lr, optimizer)
        if not (isinstance(tau, (int, float)) and tau > 0):
            raise ValueError(f"tau must be a number > 0, got {tau!r}")
        if not (isinstance(norm, (int, float)) and norm > 0):
            raise ValueError(f"norm must be a number > 0, got {norm!r}")
        self.tau, self.norm = float(tau), float(norm)
        # not ``self.normalise``: that is LocalRule's row-sum normalisation of the weights (None here)
        self.anti_hebbian, self.normalise_updates, self.centre = bool(anti_hebbian), bool(normalise), bool(centre)

    def delta(self, rec: Record, weight: torch.Tensor) -> torch.Tensor:
        x = self.rates(rec, weight.dtype)  # [R, K] presynaptic rates over each sample's real steps
        if self.centre:
            x = x - global_mean(x)
        u = x @ weight.t()  # [R, N]
        y = torch.softmax(u / (self.norm * self.tau), dim=1)
        if self.anti_hebbian:
            winner = torch.nn.functional.one_hot(u.argmax(1), u.shape[1]).to(y.dtype)
            y = y * (2 * winner - 1)
        return y.t() @ x - (y * u).sum(0)[:, None] * weight / self.norm ** 2

    def reduce(self, dw: torch.Tensor, rows: int) -> torch.Tensor:
        if self.normalise_updates:
            return dw / dw.abs().amax(1, keepdim=True).clamp_min(1e-30)
        return super().reduce(dw, rows)

    def __repr__(self) -> str:
        return (f"SoftHebb(layers={self.layers!r}, tau={self.tau:g}, anti_hebbian={self.anti_hebbian}, "
                f"supervised={self.supervised})")


@dataclass
class SoftHebbConfig(RuleConfig):
    """``training.rule: {name: softhebb, ...}`` (:class:`SoftHebb`).

    Attributes:
        layers: synapses trained by SoftHebb (names, comma-separated, or ``"auto"``: all but ``output``).
        tau: softmax temperature (on ``u / norm``).
        norm: target norm of each neuron's weight vector.
        anti_hebbian: losers get ``−y``.
        normalise: scale each neuron's update by its largest magnitude.
        centre: learn on batch-centred rates (pair with ``model.batchnorm: true``).
        supervised: train the rest (the readout) by backprop in the same step.
        batch_reduction: ``"sum"`` or ``"mean"`` over rows (ignored with ``normalise``).
        w_min, w_max: hard bounds (``null``: none).
        lr: learning rate of the ``local`` group.
        optimizer: optimiser of the ``local`` group.
    """

    name: str = "softhebb"
    layers: str = "auto"
    tau: float = 1.0
    norm: float = 1.0
    anti_hebbian: bool = True
    normalise: bool = False
    centre: bool = False
    supervised: bool = True
    batch_reduction: Literal["sum", "mean"] = "mean"
    w_min: float | None = None
    w_max: float | None = None
    lr: float = 0.01
    optimizer: Literal["adam", "adamw", "adamax", "sgd"] = "sgd"

    def check(self) -> None:
        if not self.tau > 0:
            raise ValueError(f"tau: expected a value > 0, got {self.tau!r}")
        if not self.norm > 0:
            raise ValueError(f"norm: expected a value > 0, got {self.norm!r}")
        if not self.lr > 0:
            raise ValueError(f"lr: expected a value > 0, got {self.lr!r}")


register_rule("softhebb", SoftHebbConfig, SoftHebb)
