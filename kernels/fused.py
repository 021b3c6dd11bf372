"""Autograd glue for the fused backends: one ``torch.autograd.Function`` for every :class:`Dynamics`.

A fused backend ("runner") exposes ``forward`` and ``backward`` over a whole sequence viewed as ``[T, L]``; this
module turns them into a differentiable op. Saved for the backward: the spikes, the dynamics' ``saved``
variables, the lane parameters and the initial state — nothing per step beyond ``saved``.
"""
from __future__ import annotations

from typing import Any, Sequence

import torch

from snn.kernels.dynamics import Dynamics


class FusedDynamics(torch.autograd.Function):
    @staticmethod
    def forward(ctx, dynamics: Dynamics, runner: Any, scalars: tuple, record: bool, n_params: int, x, *tensors):
        # lane tensors [L] go as they are (a constant may be a stride-0 view): the runner makes them contiguous
        # when its kernels need it (FusedRunner.lanes)
        params, states = tensors[:n_params], tensors[n_params:]
        spikes, saved, finals, rec = runner.forward(dynamics, x.contiguous(), params, states, scalars, record)
        ctx.save_for_backward(spikes, *saved, *params, *states)
        ctx.meta = (dynamics, runner, scalars, record, len(saved), n_params)
        return (spikes, *finals, *rec)

    @staticmethod
    def backward(ctx, grad_spikes, *grads):
        dynamics, runner, scalars, record, n_saved, n_params = ctx.meta
        tensors = ctx.saved_tensors
        spikes = tensors[0]
        saved = tensors[1 : 1 + n_saved]
        params = tensors[1 + n_saved : 1 + n_saved + n_params]
        states = tensors[1 + n_saved + n_params :]
        n_states = len(states)
        grad_spikes = _dense(grad_spikes, spikes)
        grad_finals = [_dense_lanes(g, s) for g, s in zip(grads[:n_states], states)]
        grad_rec = [_dense(g, spikes) for g in grads[n_states:]] if record else []
        param_grads = any(ctx.needs_input_grad[6 : 6 + n_params])
        gx, g_params, g_states = runner.backward(
            dynamics, grad_spikes, grad_finals, grad_rec, spikes, saved, params, states, scalars, record, param_grads
        )
        return (None, None, None, None, None, gx, *g_params, *g_states)


def _dense(grad: torch.Tensor | None, like: torch.Tensor) -> torch.Tensor:
    return torch.zeros_like(like) if grad is None else grad.contiguous()


def _dense_lanes(grad: torch.Tensor | None, like: torch.Tensor) -> torch.Tensor:
    """A final-state gradient ``[L]``; an unused final state (the usual case) gets a stride-0 zero."""
    return like.new_zeros(()).expand(like.shape) if grad is None else grad


def run(
    dynamics: Dynamics,
    runner: Any,
    x: torch.Tensor,
    lane_params: Sequence[torch.Tensor],
    init_states: Sequence[torch.Tensor],
    scalars: Sequence[float],
    record: bool,
) -> tuple[torch.Tensor, tuple[torch.Tensor, ...], tuple[torch.Tensor, ...] | None]:
    """Differentiable fused run over ``x`` ``[T, L]`` with lane tensors ``[L]``.

    Returns spikes ``[T, L]``, final states ``[L]`` and (when ``record``) state sequences ``[T, L]``.
    """
    outputs = FusedDynamics.apply(dynamics, runner, tuple(float(v) for v in scalars), record, len(lane_params), x, *lane_params, *init_states)
    n = len(dynamics.states)
    spikes, finals, rec = outputs[0], tuple(outputs[1 : 1 + n]), tuple(outputs[1 + n :])
    return spikes, finals, (rec if record else None)
