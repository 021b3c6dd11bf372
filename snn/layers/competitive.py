r"""An excitatory LIF population with adaptive thresholds and lateral inhibition (Diehl & Cook 2015).

Per sample, for neuron ``j`` at step ``t`` (every time in steps; potentials in mV), with input current ``I_j[t]``
(the synapse's output ``W s^{in}[t]``, a voltage jump) and the population's spikes ``s[t]``:

.. math::

    v_j[t] &= v_{rest} + (v_j[t-1] - v_{rest})\, e^{-1/\tau}
              + \mathbb{1}[c_j[t-1] = 0]\,\Big(I_j[t] - w_{inh} \sum_{k \ne j} s_k[t-1]\Big) \\
    s_j[t] &= \Theta\big(v_j[t] - v_{th} - \theta_j[t-1]\big) \qquad (\Theta(0) = 1) \\
    v_j[t] &\leftarrow v_{reset} \text{ where } s_j[t] = 1, \qquad
    c_j[t] = t_{ref}\, s_j[t] + (1 - s_j[t]) \max(c_j[t-1] - 1, 0)

from rest (``v = v_rest``, ``c = 0``, no spikes) at the start of every sample. The inhibition term stands for Diehl
& Cook's inhibitory population (one inhibitory neuron per excitatory one, which inhibits all the others): each spike
lowers every *other* neuron's membrane by ``w_inh`` one step later; a refractory neuron (``c > 0``) ignores input and
inhibition alike.

Adaptive thresholds ``θ`` (a buffer ``[N]``, kept in the state dict) change only in training mode. Each sample ``b``
of a batch starts from the shared ``θ`` and adapts during its presentation,

.. math::

    \theta_{b,j}[t] = \theta_{b,j}[t-1]\, d + \theta_{+}\, s_{b,j}[t], \qquad \theta_{b,j}[-1] = \theta_j,
    \qquad d = e^{-1/\tau_\theta}

and after the forward the shared thresholds take every sample's increment, as if the ``B`` samples had been shown
one after the other: ``θ ← θ d^{B T} + Σ_b (θ_b[T-1] - θ d^{T})``. With ``B = 1`` this is exactly the online rule.
In eval mode ``θ`` is fixed (``θ_b[t] = θ``).
"""
from __future__ import annotations

import math
from typing import Any

import torch
from torch import nn

__all__ = ["CompetitiveLIF"]


def _finite(name: str, v: Any, positive: bool = False) -> float:
    if not (isinstance(v, (int, float)) and not isinstance(v, bool) and math.isfinite(v)) or (positive and v <= 0):
        raise ValueError(f"{name}: expected a finite number{' > 0' if positive else ''}, got {v!r}")
    return float(v)


class CompetitiveLIF(nn.Module):
    """Excitatory LIF population with adaptive thresholds and lateral inhibition (module docstring).

    Args:
        n_neurons: neurons ``N``.
        tau: membrane time constant, steps.
        v_rest, v_reset, v_threshold: resting, reset and base threshold potentials, mV.
        refractory: refractory period ``t_ref``, steps (an int ≥ 0).
        inhibition: ``w_inh ≥ 0``, mV removed from every other neuron per spike, one step later.
        theta_plus: threshold increase per spike, mV (``≥ 0``; 0: fixed thresholds).
        tau_theta: threshold decay time constant, steps.

    Shapes: ``forward(current [T, B, N]) -> spikes [T, B, N]`` (float 0/1). Buffer ``theta [N]``.
    """

    #: the layer steps its own neurons: rate monitors and local rules see its output as spikes
    emits_spikes = True

    def __init__(self, n_neurons: int, tau: float = 100.0, v_rest: float = -65.0, v_reset: float = -60.0,
                 v_threshold: float = -52.0, refractory: int = 5, inhibition: float = 17.5, theta_plus: float = 0.05,
                 tau_theta: float = 1e7) -> None:
        super().__init__()
        if not isinstance(n_neurons, int) or isinstance(n_neurons, bool) or n_neurons < 1:
            raise ValueError(f"n_neurons: expected an int >= 1, got {n_neurons!r}")
        if not isinstance(refractory, int) or isinstance(refractory, bool) or refractory < 0:
            raise ValueError(f"refractory: expected an int >= 0 (steps), got {refractory!r}")
        self.n_neurons, self.refractory = n_neurons, refractory
        self.tau = _finite("tau", tau, positive=True)
        self.tau_theta = _finite("tau_theta", tau_theta, positive=True)
        self.v_rest, self.v_reset = _finite("v_rest", v_rest), _finite("v_reset", v_reset)
        self.v_threshold = _finite("v_threshold", v_threshold)
        self.inhibition, self.theta_plus = _finite("inhibition", inhibition), _finite("theta_plus", theta_plus)
        if self.inhibition < 0 or self.theta_plus < 0:
            raise ValueError(f"inhibition and theta_plus: expected values >= 0, got {inhibition!r}, {theta_plus!r}")
        self.register_buffer("theta", torch.zeros(n_neurons))

    def run(self, current: torch.Tensor, adapt: bool | None = None) -> torch.Tensor:
        """The forward without module hooks (``adapt``: update ``θ``; default: in training mode)."""
        if not isinstance(current, torch.Tensor) or current.dim() != 3 or current.shape[2] != self.n_neurons:
            raise ValueError(f"CompetitiveLIF: current must be a tensor [T, B, {self.n_neurons}], "
                             f"got {tuple(current.shape) if isinstance(current, torch.Tensor) else type(current).__name__}")
        adapt = self.training if adapt is None else bool(adapt)
        T, B, N = current.shape
        decay, d_theta = math.exp(-1.0 / self.tau), math.exp(-1.0 / self.tau_theta)
        v = current.new_full((B, N), self.v_rest)
        refr = current.new_zeros((B, N))
        s = current.new_zeros((B, N))
        theta = self.theta.to(current.dtype).expand(B, N)
        out = []
        for I_t in current.unbind(0):
            inhib = self.inhibition * (s.sum(1, keepdim=True) - s)
            v = self.v_rest + (v - self.v_rest) * decay + (refr <= 0) * (I_t - inhib)
            s = (v >= self.v_threshold + theta).to(current.dtype)
            v = torch.where(s > 0, self.v_reset, v)
            refr = torch.where(s > 0, float(self.refractory), (refr - 1).clamp_min(0))
            if adapt:
                theta = theta * d_theta + self.theta_plus * s
            out.append(s)
        spikes = torch.stack(out) if out else current.new_zeros((0, B, N))
        if adapt and T:
            with torch.no_grad():
                start = self.theta.to(current.dtype)
                gained = (theta - start * d_theta ** T).sum(0)
                self.theta.copy_((start * d_theta ** (B * T) + gained).to(self.theta.dtype))
        return spikes

    def forward(self, current: torch.Tensor) -> torch.Tensor:
        return self.run(current)

    def count_operations(self, inputs: tuple, output: Any, ctx: Any) -> list:
        """Energy counting protocol (:mod:`snn.energy.protocol`): one update per neuron and step (membrane,
        refractory counter, threshold) and the lateral inhibition, ``N - 1`` synaptic operations per spike."""
        from snn.energy.protocol import NeuronCount, OpCount

        return [NeuronCount(output=output, state_vars=3, spiking=True),
                OpCount(x=output, fanout=float(self.n_neurons - 1), kind="inhibition", label="inhibition")]

    def extra_repr(self) -> str:
        return (f"n_neurons={self.n_neurons}, tau={self.tau:g}, v_rest={self.v_rest:g}, v_reset={self.v_reset:g}, "
                f"v_threshold={self.v_threshold:g}, refractory={self.refractory}, inhibition={self.inhibition:g}, "
                f"theta_plus={self.theta_plus:g}, tau_theta={self.tau_theta:g}")
