r"""Recurrent LIF layer: a population whose spikes feed back into itself through a learnable weight matrix.

Per time step ``t`` over time-major input ``x`` ``[T, B, C_in]``, with ``s[-1] = 0`` and the LIF state at rest:

.. math::

    I[t] &= W_{in}\, x[t] + b + W_{rec}\, s[t-1] \\
    s[t], V[t] &= \mathrm{LIF}(I[t], V[t-1])

with the LIF equations of :class:`snn.LIF` (charge, fire with a surrogate gradient, hard or soft reset; τ in time
steps). This is the recurrent spiking layer of the SHD baselines (Cramer et al. 2020; Zenke & Vogels 2021) and
of snnTorch's ``RLeaky`` (``all_to_all=True``), Norse's ``LIFRecurrent`` and SpikingJelly's
``LinearRecurrentContainer``.

Computation: the input projection ``W_in x`` does not depend on the recurrence and runs as one matrix product over
all ``T·B`` rows before the time loop; only ``W_rec s[t-1]`` and the neuron step stay sequential. The neuron step
runs on the torch reference by default (``backend="torch"``): a fused kernel launched once per step costs more
than it saves at these sizes on CPU (``benchmarks/bench_rsnn.py`` measures both paths).
"""
from __future__ import annotations

from typing import Any

import torch
from torch import nn

from snn.kernels import reference
from snn.neuron_models import LIF

__all__ = ["RecurrentLIF"]


class RecurrentLIF(nn.Module):
    """Linear input projection + recurrent LIF population (see the module docstring for the equations).

    Args:
        in_features: input channels ``C_in``.
        out_features: neurons ``N``.
        tau: membrane time constant, in time steps.
        v_threshold: firing threshold.
        v_reset: reset potential (``None``: soft reset, subtract the threshold).
        decay_input: scale the input by ``1/τ`` (SpikingJelly's ``decay_input``).
        detach_reset: stop the gradient through the reset.
        surrogate: surrogate gradient (default ATan(2)).
        bias: bias of the input projection.
        backend: backend of the per-step neuron update (``"torch"``: the reference step, the fastest per step on
            CPU; ``"auto"``/``"numba"``/``"cupy"``: one fused launch per step).

    Shapes: ``forward(x [T, B, C_in]) -> spikes [T, B, N]``; with a state, ``forward(x, state) -> (spikes, state)``
    where ``state = {"v": [B, N], "s": [B, N]}`` (membrane and last spikes) continues a stream.
    """

    #: the forward returns this population's spikes (firing-rate monitors hook this module, not its neuron)
    emits_spikes = True
    #: energy counting: the input and recurrent matrix products are ordinary torch ops (counted at the dispatcher);
    #: the neuron updates, stepped outside the LIF module, are declared by :meth:`count_operations`
    count_torch_ops_inside = True

    def __init__(self, in_features: int, out_features: int, tau: float = 2.0, v_threshold: float = 1.0,
                 v_reset: float | None = 0.0, decay_input: bool = False, detach_reset: bool = True, surrogate=None,
                 bias: bool = True, backend: str = "torch") -> None:
        super().__init__()
        for name, value in (("in_features", in_features), ("out_features", out_features)):
            if not isinstance(value, int) or isinstance(value, bool) or value < 1:
                raise ValueError(f"{name} must be a positive int, got {value!r}")
        self.in_features, self.out_features = in_features, out_features
        self.input = nn.Linear(in_features, out_features, bias=bias)
        self.recurrent = nn.Linear(out_features, out_features, bias=False)
        self.neuron = LIF(tau=tau, v_threshold=v_threshold, v_reset=v_reset, decay_input=decay_input,
                          detach_reset=detach_reset, surrogate=surrogate, backend=backend)

    def initial_state(self, like: torch.Tensor) -> dict[str, torch.Tensor]:
        """Rest: membrane at its resting value and no previous spikes, shaped like ``like`` ``[B, N]``."""
        return {"v": self.neuron.initial_state(like)["v"], "s": torch.zeros_like(like)}

    def forward(self, x: torch.Tensor, state: dict[str, torch.Tensor] | None = None):
        if not isinstance(x, torch.Tensor) or x.dim() != 3:
            raise ValueError(f"RecurrentLIF: x must be a tensor [T, B, C_in], got {getattr(x, 'shape', type(x).__name__)}")
        if x.shape[2] != self.in_features:
            raise ValueError(f"RecurrentLIF: x must have in_features={self.in_features} channels (dim 2), got {x.shape[2]}")
        drive = self.input(x)  # [T, B, N]: the input GEMM hoisted out of the time loop
        st = self.initial_state(drive[0] if drive.shape[0] else drive.new_zeros(drive.shape[1:])) if state is None else state
        if state is not None and (set(state) != {"v", "s"} or state["v"].shape != drive.shape[1:]):
            raise ValueError(f"RecurrentLIF: state must be {{'v', 's'}} tensors of shape {tuple(drive.shape[1:])}")
        step = self._step_function(drive.dtype)
        v, s = st["v"], st["s"]
        out = []
        for drive_t in drive.unbind(0):  # unbind: one backward node (indexing drive[t] would zero-fill [T, B, N] per step)
            s, v = step(drive_t + self.recurrent(s), v)
            out.append(s)
        spikes = torch.stack(out) if out else drive
        if state is None:
            return spikes
        return spikes, {"v": v, "s": s}

    def _step_function(self, dtype: torch.dtype):
        """``(input [B, N], v [B, N]) -> (spikes, v)``: the reference step called directly (``backend="torch"``), or
        the neuron module's single-step call (a fused launch per step for the other backends)."""
        neuron = self.neuron
        if neuron.backend == "torch":
            step = reference.step_function(neuron.dynamics())
            params = [p.to(dtype) for p in neuron.lane_parameters(dtype).values()]
            scalars = list(neuron.scalar_values().values()) + list(neuron.surrogate.kernel_parameters)

            def reference_step(i_t: torch.Tensor, v: torch.Tensor):
                s, (v,), _ = step(i_t, v, *params, *scalars)
                return s, v
            return reference_step

        def fused_step(i_t: torch.Tensor, v: torch.Tensor):
            s, st = neuron.step(i_t, {"v": v})
            return s, st["v"]
        return fused_step

    def count_operations(self, inputs: tuple, output: Any, ctx: Any) -> list:
        """Energy counting protocol (:mod:`snn.energy.protocol`): one LIF update per neuron per real step, and its
        spikes; the synaptic operations of ``W_in x`` and ``W_rec s[t-1]`` are counted from the torch ops."""
        from snn.energy.protocol import NeuronCount

        spikes = output[0] if isinstance(output, tuple) else output
        return [NeuronCount(output=spikes, state_vars=1, spiking=True)]

    def reset(self) -> None:
        """No hidden state (SpikingJelly's ``functional.reset_net`` compatibility)."""

    def extra_repr(self) -> str:
        return f"in_features={self.in_features}, out_features={self.out_features}"
