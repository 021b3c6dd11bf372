r"""The ELM neuron's torch reference: a loop over time of tensor ops, differentiated by autograd (the oracle).

One step, exactly as the authors' ``ELM.dynamics`` (AaronSpieler/elmneuron) orders it:

.. math::

    s_t &= \kappa_s \odot s_{t-1} + w_s \odot x_t \\
    b_t &= \textstyle\sum_{j \in \text{branch}} s_{t,j} \\
    \Delta m_t &= 1.7159 \tanh\!\big(\tfrac23\, \mathrm{MLP}([b_t,\ \kappa_m \odot m_{t-1}])\big) \\
    m_t &= \kappa_m \odot m_{t-1} + \lambda (1 - \kappa_m) \odot \Delta m_t \\
    y_t &= W_y m_t + b_y

The fused backends (:mod:`snn.kernels.elm_numba`) compute the same thing with the memory-independent parts
hoisted out of the loop; every one of them is tested against :func:`run`.
"""
from __future__ import annotations

from typing import NamedTuple

import torch
import torch.nn.functional as F

#: the scaled tanh of the reference code: ``A · tanh(B · z)`` (LeCun's constants)
TANH_SCALE = 1.7159
TANH_SLOPE = 2.0 / 3.0
ACTIVATIONS = ("relu", "silu")


class ELMTensors(NamedTuple):
    """Everything one ELM run needs, already in the input's dtype.

    Attributes:
        w_s: synaptic weights after the ReLU ``[n_syn]``.
        kappa_s: synapse decays ``exp(-Δt/τ_s)`` ``[n_syn]``.
        kappa_m: memory decays ``exp(-Δt/τ_m)`` ``[d_m]``.
        lam: the memory update scale λ.
        weights, biases: the MLP's linear layers, first ``[H, n_branch + d_m]`` … last ``[d_m, H]``.
        activation: the MLP's hidden nonlinearity (``"relu"`` or ``"silu"``).
        w_y, b_y: readout ``[C_out, d_m]``, ``[C_out]``.
        n_branch: number of branches (``n_syn`` is a multiple of it; synapse ``j`` is in branch ``j // (n_syn/n_branch)``).
    """

    w_s: torch.Tensor
    kappa_s: torch.Tensor
    kappa_m: torch.Tensor
    lam: float
    weights: tuple[torch.Tensor, ...]
    biases: tuple[torch.Tensor, ...]
    activation: str
    w_y: torch.Tensor
    b_y: torch.Tensor
    n_branch: int


def activate(z: torch.Tensor, activation: str) -> torch.Tensor:
    return F.relu(z) if activation == "relu" else F.silu(z)


def scaled_tanh(z: torch.Tensor) -> torch.Tensor:
    return TANH_SCALE * torch.tanh(TANH_SLOPE * z)


def memory_update(m: torch.Tensor, branch: torch.Tensor, p: ELMTensors) -> torch.Tensor:
    """``m_t`` from ``m_{t-1}`` ``[B, d_m]`` and the branch sums ``b_t`` ``[B, n_branch]``."""
    h = torch.cat([branch, p.kappa_m * m], dim=-1)
    for w, b in zip(p.weights[:-1], p.biases[:-1]):
        h = activate(F.linear(h, w, b), p.activation)
    delta = scaled_tanh(F.linear(h, p.weights[-1], p.biases[-1]))
    return p.kappa_m * m + p.lam * (1.0 - p.kappa_m) * delta


def run(x_syn: torch.Tensor, s0: torch.Tensor, m0: torch.Tensor, p: ELMTensors
        ) -> tuple[torch.Tensor, torch.Tensor, torch.Tensor, torch.Tensor]:
    """All steps of the routed synaptic input ``x_syn`` ``[T, B, n_syn]`` from the traces ``s0`` ``[B, n_syn]`` and the
    memory ``m0`` ``[B, d_m]``. Returns ``(y [T, B, C_out], memory [T, B, d_m], s_T, m_T)``."""
    T, B, n_syn = x_syn.shape
    s, m = s0, m0
    ys, ms = [], []
    for t in range(T):
        s = p.kappa_s * s + p.w_s * x_syn[t]
        branch = s.view(B, p.n_branch, n_syn // p.n_branch).sum(dim=-1)
        m = memory_update(m, branch, p)
        ys.append(F.linear(m, p.w_y, p.b_y))
        ms.append(m)
    d_m, c_out = m0.shape[-1], p.w_y.shape[0]
    y = torch.stack(ys) if T else x_syn.new_zeros(0, B, c_out)
    memory = torch.stack(ms) if T else x_syn.new_zeros(0, B, d_m)
    return y, memory, s, m
