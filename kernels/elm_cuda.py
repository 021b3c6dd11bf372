r"""Fused CUDA backend of the ELM neuron: the kernels of :mod:`snn.kernels.elm_cuda_source` behind autograd.

The time loop runs in one launch forward and one backward; what does not depend on the memory is hoisted out
of it (the numba backend, :mod:`snn.kernels.elm_numba`, hoists the same parts but saves more for its backward
and, on spike input, moves the input layer through the synapse filter instead):

1. synapse traces and branch sums: ``elm_traces_fwd`` (one thread per sample and branch; the traces never leave
   registers), its adjoint ``elm_traces_bwd`` (one thread per sample and synapse, reverse time);
2. the MLP's input layer on the branch sums, ``U = b W_{1,b}ᵀ + b_1``: one GEMM over all ``T·B`` (torch);
3. the memory recurrence: ``elm_memory_fwd`` / ``elm_memory_bwd``, persistent kernels with one block per sample
   walking time, the recurrent weights in shared memory; the backward recomputes each step's MLP from the saved
   memory sequence and writes per-step pre-activation gradients, from which the weight gradients are GEMMs over
   all ``T·B`` (torch): deterministic, no atomics;
4. the readout ``y = m W_yᵀ + b_y``: one GEMM (torch).

Saved for the backward: ``U`` (``H`` per sample-step) and the memory sequence (``d_m``); the backward recomputes
the MLP (the numba backend saves every layer's activations instead).
Storage dtypes float32, float16, bfloat16 (and float64); arithmetic in float32 (float64 for float64): the traces,
the memory and the per-sample gradient sums stay in ``acc_t`` for the whole sequence, only what is stored rounds.

``runner`` is :class:`snn.kernels.cupy_backend.CupyRunner` on CUDA tensors, or
:class:`snn.kernels.host_shim.HostCudaRunner` on CPU tensors (the same source compiled with g++, for tests).
"""
from __future__ import annotations

from typing import Any

import torch
import torch.nn.functional as F

from snn.kernels import elm_cuda_source
from snn.kernels.backends import BackendUnavailable
from snn.kernels.elm_reference import ELMTensors

ACTIVATION_CODES = {"relu": 0, "silu": 1}


def _acc_dtype(dtype: torch.dtype) -> torch.dtype:
    return torch.float64 if dtype == torch.float64 else torch.float32


def _lanes_grid(lanes: int, block: int) -> int:
    return (lanes + block - 1) // block


class _Traces(torch.autograd.Function):
    """``(x_syn [T, B, n], w_s [n], κ_s [n], s_0 [B, n]) → (branch sums [T, B, n/spb], s_T [B, n])``."""

    @staticmethod
    def forward(ctx, x, w, kappa, s0, spb: int, runner: Any):
        T, B, n = x.shape
        src = elm_cuda_source.source(runner.dtype_key(x))
        x, w, kappa = (t.detach().contiguous() for t in (x, w, kappa))
        s = s0.detach().clone(memory_format=torch.contiguous_format)
        branch = torch.empty(T, B, n // spb, dtype=_acc_dtype(x.dtype), device=x.device)
        lanes = B * (n // spb)
        fwd = src.kernels[0]
        runner.launch_source(src, fwd.name, _lanes_grid(lanes, runner.block), runner.block,
                             [x, w, kappa, s, branch, T, B, n, spb])
        ctx.save_for_backward(x, w, kappa)
        ctx.spb, ctx.runner = spb, runner
        return branch.to(x.dtype), s

    @staticmethod
    def backward(ctx, g_branch, g_final):
        x, w, kappa = ctx.saved_tensors
        T, B, n = x.shape
        runner = ctx.runner
        src = elm_cuda_source.source(runner.dtype_key(x))
        g_branch = _dense(g_branch, (T, B, n // ctx.spb), x)
        g_final = _dense(g_final, (B, n), x)
        want_x = ctx.needs_input_grad[0]
        g_x = torch.empty_like(x) if want_x else x.new_empty(0)
        g_w = torch.empty(B, n, dtype=_acc_dtype(x.dtype), device=x.device)
        g_s0 = x.new_empty(B, n)
        bwd = src.kernels[1]
        runner.launch_source(src, bwd.name, _lanes_grid(B * n, runner.block), runner.block,
                             [g_branch, x, w, kappa, g_final, g_x, g_w, g_s0, T, B, n, ctx.spb, int(want_x)])
        return (g_x if want_x else None), g_w.sum(0).to(x.dtype), None, g_s0, None, None


def _dense(grad: torch.Tensor | None, shape: tuple, like: torch.Tensor) -> torch.Tensor:
    if grad is None:
        return like.new_zeros(shape)
    return grad.to(like.dtype).contiguous()


def launch_config(runner: Any, dtype: str, H: int, D: int, LH: int, device: torch.device) -> tuple[int, int, int]:
    """``(weights_in_shared, threads per block, dynamic shared bytes)`` of the memory kernels on ``runner``: the
    packed weights go to shared memory when they fit the device's per-block limit, otherwise they stay in global
    memory; raises :class:`BackendUnavailable` when not even the vectors fit."""
    threads = runner.threads(max(H, D))
    limit = runner.shared_memory_limit(device)
    with_weights = elm_cuda_source.shared_bytes(dtype, H, D, LH, True)
    if with_weights <= limit:
        return 1, threads, with_weights
    without = elm_cuda_source.shared_bytes(dtype, H, D, LH, False)
    if without > limit:
        raise BackendUnavailable(
            f"the ELM CUDA kernels need {without} bytes of shared memory per block for memory={D}, mlp_hidden={H}, "
            f"mlp_layers={LH + 1} ({dtype}); the device allows {limit}. Use backend='torch'.")
    return 0, threads, without


class _Memory(torch.autograd.Function):
    """``m [T, B, d_m]`` from ``U [T, B, H]``, ``κ_m``, ``m_0`` and the MLP weights acting on the memory: ``W1m [H, d_m]``,
    hidden ``Wh [LH, H, H]``, ``bh [LH, H]``, output ``Wo [d_m, H]``, ``bo [d_m]``."""

    @staticmethod
    def forward(ctx, U, kappa, m0, W1m, Wh, bh, Wo, bo, act: int, lam: float, runner: Any):
        T, B, H = U.shape
        D, LH = m0.shape[1], Wh.shape[0]
        dtype = runner.dtype_key(U)
        src = elm_cuda_source.source(dtype)
        U, kappa, m0 = (t.detach().contiguous() for t in (U, kappa, m0))
        packed = elm_cuda_source.pack_weights(*(t.detach() for t in (W1m, Wh, bh, Wo, bo))).contiguous()
        in_shared, threads, smem = launch_config(runner, dtype, H, D, LH, U.device)
        m_seq = U.new_empty(T, B, D)
        runner.launch_source(src, src.kernels[2].name, B, threads,
                             [U, m0, packed, kappa, m_seq, lam, T, B, H, D, LH, act, in_shared], smem)
        ctx.save_for_backward(U, kappa, m0, packed, m_seq)
        ctx.meta = (act, lam, runner, LH)
        return m_seq

    @staticmethod
    def backward(ctx, g_m):
        U, kappa, m0, packed, m_seq = ctx.saved_tensors
        act, lam, runner, LH = ctx.meta
        T, B, H = U.shape
        D, L = m0.shape[1], LH + 1
        dtype = runner.dtype_key(U)
        src = elm_cuda_source.source(dtype)
        in_shared, threads, smem = launch_config(runner, dtype, H, D, LH, U.device)
        g_pre = U.new_empty(T, B, L, H)
        g_out = U.new_empty(T, B, D)
        acts = U.new_empty(T, B, L, H)
        g_kappa = torch.empty(B, D, dtype=_acc_dtype(U.dtype), device=U.device)
        g_m0 = torch.empty_like(m0)
        runner.launch_source(src, src.kernels[3].name, B, threads,
                             [U, m0, m_seq, _dense(g_m, (T, B, D), U), packed, kappa, g_pre, g_out, acts, g_kappa,
                              g_m0, lam, T, B, H, D, LH, act, in_shared], smem)
        # weight gradients: sums over all T·B sample-steps, one GEMM per layer
        rows = T * B
        km_prev = kappa * torch.cat([m0[None], m_seq[:-1]])
        g_W1m = g_pre[:, :, 0].reshape(rows, H).t() @ km_prev.reshape(rows, D)
        g_hidden = g_pre[:, :, 1:].reshape(rows, LH, H)
        g_Wh = torch.einsum("nlh,nlk->lhk", g_hidden, acts[:, :, :LH].reshape(rows, LH, H))
        g_Wo = g_out.reshape(rows, D).t() @ acts[:, :, LH].reshape(rows, H)
        return (g_pre[:, :, 0], g_kappa.sum(0).to(U.dtype), g_m0, g_W1m, g_Wh, g_hidden.sum(0), g_Wo,
                g_out.sum((0, 1)), None, None, None)


@torch._dynamo.disable
def run(x_syn: torch.Tensor, s0: torch.Tensor, m0: torch.Tensor, p: ELMTensors, runner: Any
        ) -> tuple[torch.Tensor, torch.Tensor, torch.Tensor, torch.Tensor]:
    """Same contract as :func:`snn.kernels.elm_reference.run` (``x_syn`` ``[T, B, n_syn]``) on ``runner``'s device:
    returns ``(y [T, B, C_out], memory [T, B, d_m], s_T, m_T)``."""
    T, B, n_syn = x_syn.shape
    if T == 0 or B == 0:
        from snn.kernels import elm_reference

        return elm_reference.run(x_syn, s0, m0, p)
    branch, s_final = _Traces.apply(x_syn, p.w_s, p.kappa_s, s0, n_syn // p.n_branch, runner)
    first, nb = p.weights[0], p.n_branch
    U = F.linear(branch, first[:, :nb], p.biases[0])
    H = first.shape[0]
    middle_w, middle_b = p.weights[1:-1], p.biases[1:-1]
    Wh = torch.stack(middle_w) if middle_w else U.new_zeros(0, H, H)
    bh = torch.stack(middle_b) if middle_b else U.new_zeros(0, H)
    memory = _Memory.apply(U, p.kappa_m, m0, first[:, nb:], Wh, bh, p.weights[-1], p.biases[-1],
                           ACTIVATION_CODES[p.activation], float(p.lam), runner)
    return F.linear(memory, p.w_y, p.b_y), memory, s_final, memory[-1]
