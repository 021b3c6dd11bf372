r"""Fused CPU backend of the ELM neuron: numba kernels for its structure, forward and backward over all steps.

The per-lane kernel language of :mod:`snn.kernels` cannot express ELM (its MLP couples all memory units and its
weights are shared), so these kernels are written for ELM's structure. Only the memory depends on the past in a
nonlinear way; everything else is hoisted out of the time loop (as cuDNN's LSTM hoists its input GEMM):

1. synapse traces ``s_t = κ_s s_{t-1} + w_s ⊙ x_t`` are a per-lane *linear* recurrence, and the branch sums
   ``b_t`` follow from them: one vectorised scan (:class:`BranchTraces`) that returns the branch sums
   ``[T, B, n_branch]`` directly (the traces are never stored; the backward rescans in reverse and sums
   ``∂L/∂w_s`` per sample);
2. the MLP's input layer applied to the branch sums is one GEMM over all ``T·B`` steps:
   ``U = b W_{1,b}^T + b_1`` (torch, autograd);
3. the memory recurrence (:class:`MemoryRecurrence`) is the only sequential part: each thread owns a block of
   samples and walks time; per step ``z_1 = U_t + (κ_m ⊙ m_{t-1}) W_{1,m}^T``, the hidden layers, ``Δm_t``,
   ``m_t`` are a few small GEMMs over the block (BLAS through numba's ``np.dot``) and elementwise loops;
4. the readout ``y = m W_y^T + b_y`` is one GEMM over all steps (torch, autograd).

The forward saves ``U`` and the memory sequence ``m`` (``H + d_m`` floats per sample-step). The backward walks time
in reverse, recomputing each step's MLP activations from ``m_{t-1}``, and writes the per-step gradients at every
layer's pre-activation; the weight gradients are then a handful of GEMMs over all ``T·B`` (no per-thread weight
accumulators, no reduction across samples). ``∂L/∂κ_m`` is summed per sample in the kernel.
"""
from __future__ import annotations

import numba as nb
import numpy as np
import torch
import torch.nn.functional as F

from snn.kernels.elm_reference import TANH_SCALE, TANH_SLOPE, ELMTensors
from snn.kernels.numba_backend import split_across_threads

_JIT = dict(nogil=True, cache=True, error_model="numpy")
ACTIVATION_CODES = {"relu": 0, "silu": 1}


# -- synapse traces and branch sums ----------------------------------------------------------------------------
@nb.njit(**_JIT)
def _traces_forward(x, w, kappa, s, out, spb, lo, hi):  # pragma: no cover - compiled
    """``s`` ``[B, n]`` (in: s_0, out: s_T); ``out`` ``[T, B, n_branch]`` branch sums of the traces."""
    T = x.shape[0]
    n = x.shape[2]
    nbr = out.shape[2]
    for t in range(T):  # time outer, samples inner: each step reads one contiguous slab of x
        for b in range(lo, hi):
            sb = s[b]
            xt = x[t, b]
            for j in range(n):
                sb[j] = kappa[j] * sb[j] + w[j] * xt[j]
            ot = out[t, b]
            if spb == 1:
                for r in range(nbr):
                    ot[r] = sb[r]
            else:
                for r in range(nbr):
                    acc = sb[r * spb]
                    for k in range(1, spb):
                        acc += sb[r * spb + k]
                    ot[r] = acc


@nb.njit(**_JIT)
def _traces_backward(g_branch, x, w, kappa, carry, g_x, g_w, spb, lo, hi):  # pragma: no cover - compiled
    """``carry`` ``[B, n]`` (in: ∂L/∂s_T, out: ∂L/∂s_0); ``g_x`` ``[T, B, n]`` (skipped when it has no steps);
    ``g_w`` ``[B, n]``: per-sample sums of ∂L/∂w_s."""
    T = x.shape[0]
    n = x.shape[2]
    want_x = g_x.shape[0] > 0
    for b in range(lo, hi):
        for j in range(n):
            g_w[b, j] = 0
    for t in range(T - 1, -1, -1):
        for b in range(lo, hi):
            cb = carry[b]
            gb = g_branch[t, b]
            xt = x[t, b]
            gw = g_w[b]
            if spb == 1:  # c = ∂L/∂s_t = ∂L/∂b_t[branch(j)] + κ ∂L/∂s_{t+1}
                for j in range(n):
                    cb[j] = gb[j] + cb[j]
            else:
                for j in range(n):
                    cb[j] = gb[j // spb] + cb[j]
            if want_x:
                gxt = g_x[t, b]
                for j in range(n):
                    gxt[j] = w[j] * cb[j]
            for j in range(n):
                gw[j] += cb[j] * xt[j]
                cb[j] = kappa[j] * cb[j]


def _np(t: torch.Tensor) -> np.ndarray:
    return t.detach().numpy()


class BranchTraces(torch.autograd.Function):
    """``(x_syn [T, B, n], w_s [n], κ_s [n], s_0 [B, n], spb) → (branch sums [T, B, n/spb], s_T [B, n])`` with
    ``s_t = κ_s s_{t-1} + w_s ⊙ x_t``; no gradient to ``κ_s`` (τ_s is fixed)."""

    @staticmethod
    def forward(ctx, x, w, kappa, s0, spb: int):
        T, B, n = x.shape
        x, w, kappa = x.detach().contiguous(), w.detach().contiguous(), kappa.detach().contiguous()
        s = s0.detach().clone().contiguous()
        out = x.new_empty(T, B, n // spb)
        split_across_threads(_traces_forward, (_np(x), _np(w), _np(kappa), _np(s), _np(out), spb), B)
        ctx.save_for_backward(x, w, kappa)
        ctx.spb = spb
        return out, s

    @staticmethod
    def backward(ctx, g_branch, g_final):
        x, w, kappa = ctx.saved_tensors
        T, B, n = x.shape
        carry = g_final.detach().clone().contiguous()
        g_x = torch.empty_like(x) if ctx.needs_input_grad[0] else x.new_empty(0, B, n)
        g_w = x.new_empty(B, n)
        split_across_threads(_traces_backward, (_np(g_branch.contiguous()), _np(x), _np(w), _np(kappa), _np(carry),
                                                _np(g_x), _np(g_w), ctx.spb), B)
        return (g_x if ctx.needs_input_grad[0] else None), g_w.sum(0), None, carry, None


# -- the memory recurrence -------------------------------------------------------------------------------------
@nb.njit(inline="always")
def _act(z, code, zero, one):  # pragma: no cover - compiled
    if code == 0:
        return z if z > zero else zero
    return z / (one + np.exp(-z))


@nb.njit(inline="always")
def _act_grad(z, code, zero, one):  # pragma: no cover - compiled
    if code == 0:
        return one if z > zero else zero
    sg = one / (one + np.exp(-z))
    return sg * (one + z * (one - sg))


@nb.njit(inline="always")
def _mlp(U_t, M, kappa, W1mT, WhT, bh, WoT, bo, code, zero, one, slope, KM, Z, A, TH):  # pragma: no cover
    """One step's MLP for a block of samples from their ``m_{t-1}`` ``M`` ``[n, d_m]``: fills ``KM = κ ⊙ M``, the
    pre-activations ``Z [L, n, H]``, the activations ``A [L, n, H]`` and ``TH = tanh(slope · z_out)`` ``[n, d_m]``.
    The products are small GEMMs over the block (BLAS through ``np.dot``)."""
    n, dm = M.shape
    H = U_t.shape[1]
    Lh = bh.shape[0]
    for i in range(n):
        for k in range(dm):
            KM[i, k] = kappa[k] * M[i, k]
    np.dot(KM, W1mT, Z[0])
    for i in range(n):
        for h in range(H):
            z = Z[0, i, h] + U_t[i, h]
            Z[0, i, h] = z
            A[0, i, h] = _act(z, code, zero, one)
    for layer in range(Lh):
        np.dot(A[layer], WhT[layer], Z[layer + 1])
        for i in range(n):
            for h in range(H):
                z = Z[layer + 1, i, h] + bh[layer, h]
                Z[layer + 1, i, h] = z
                A[layer + 1, i, h] = _act(z, code, zero, one)
    np.dot(A[Lh], WoT, TH)
    for i in range(n):
        for j in range(dm):
            TH[i, j] = np.tanh(slope * (TH[i, j] + bo[j]))


@nb.njit(**_JIT)
def _memory_forward(U, kappa, m0, W1mT, WhT, bh, WoT, bo, code, lam, scale, slope, zero, one, m_seq, lo, hi):  # pragma: no cover
    T = U.shape[0]
    H = U.shape[2]
    dm = m0.shape[1]
    L = bh.shape[0] + 1
    n = hi - lo
    KM = np.empty((n, dm), U.dtype)
    Z = np.empty((L, n, H), U.dtype)
    A = np.empty((L, n, H), U.dtype)
    TH = np.empty((n, dm), U.dtype)
    for t in range(T):  # time outer; each step is a few GEMMs over this thread's samples
        M = m_seq[t - 1, lo:hi] if t > 0 else m0[lo:hi]
        _mlp(U[t, lo:hi], M, kappa, W1mT, WhT, bh, WoT, bo, code, zero, one, slope, KM, Z, A, TH)
        out = m_seq[t, lo:hi]
        for i in range(n):
            for j in range(dm):
                out[i, j] = kappa[j] * M[i, j] + lam * (one - kappa[j]) * (scale * TH[i, j])


@nb.njit(**_JIT)
def _memory_backward(U, kappa, m0, m_seq, g_mseq, W1mT, W1m, WhT, Wh, bh, WoT, Wo, bo, code, lam, scale, slope,
                     zero, one, g_U, g_Zh, g_Zo, acts, g_kappa, g_m0, lo, hi):  # pragma: no cover
    T = U.shape[0]
    H = U.shape[2]
    dm = m0.shape[1]
    Lh = bh.shape[0]
    n = hi - lo
    KM = np.empty((n, dm), U.dtype)
    Z = np.empty((Lh + 1, n, H), U.dtype)
    A = np.empty((Lh + 1, n, H), U.dtype)
    TH = np.empty((n, dm), U.dtype)
    GM = np.empty((n, dm), U.dtype)
    GZO = np.empty((n, dm), U.dtype)
    GKM = np.empty((n, dm), U.dtype)
    GA = np.empty((n, H), U.dtype)
    GZ = np.empty((n, H), U.dtype)
    carry = np.zeros((n, dm), U.dtype)  # ∂L/∂m_t from the later steps
    gk = np.zeros((n, dm), U.dtype)
    for t in range(T - 1, -1, -1):
        M = m_seq[t - 1, lo:hi] if t > 0 else m0[lo:hi]
        _mlp(U[t, lo:hi], M, kappa, W1mT, WhT, bh, WoT, bo, code, zero, one, slope, KM, Z, A, TH)
        for layer in range(Lh + 1):
            for i in range(n):
                for h in range(H):
                    acts[t, lo + i, layer, h] = A[layer, i, h]
        for i in range(n):
            for j in range(dm):
                g = g_mseq[t, lo + i, j] + carry[i, j]
                GM[i, j] = g
                gk[i, j] += g * (M[i, j] - lam * (scale * TH[i, j]))
                gz = g * lam * (one - kappa[j]) * scale * slope * (one - TH[i, j] * TH[i, j])
                GZO[i, j] = gz
                g_Zo[t, lo + i, j] = gz
        np.dot(GZO, Wo, GA)
        for layer in range(Lh - 1, -1, -1):
            for i in range(n):
                for h in range(H):
                    g = GA[i, h] * _act_grad(Z[layer + 1, i, h], code, zero, one)
                    GZ[i, h] = g
                    g_Zh[t, lo + i, layer, h] = g
            np.dot(GZ, Wh[layer], GA)
        for i in range(n):
            for h in range(H):
                g = GA[i, h] * _act_grad(Z[0, i, h], code, zero, one)
                GZ[i, h] = g
                g_U[t, lo + i, h] = g
        np.dot(GZ, W1m, GKM)
        for i in range(n):
            for k in range(dm):
                gk[i, k] += GKM[i, k] * M[i, k]
                carry[i, k] = (GM[i, k] + GKM[i, k]) * kappa[k]
    for i in range(n):
        for j in range(dm):
            g_m0[lo + i, j] = carry[i, j]
            g_kappa[lo + i, j] = gk[i, j]


class MemoryRecurrence(torch.autograd.Function):
    """``m [T, B, d_m]`` from the hoisted input-layer term ``U [T, B, H]``, ``κ_m``, ``m_0`` and the MLP weights
    acting on the memory: ``W1m [H, d_m]``, hidden ``Wh [L-1, H, H]``, ``bh [L-1, H]``, output ``Wo [d_m, H]``, ``bo``."""

    @staticmethod
    def forward(ctx, U, kappa, m0, W1m, Wh, bh, Wo, bo, code: int, lam: float):
        T, B, H = U.shape
        dm = m0.shape[1]
        U, kappa, m0, W1m, Wh, bh, Wo, bo = (t.detach().contiguous() for t in (U, kappa, m0, W1m, Wh, bh, Wo, bo))
        m_seq = U.new_empty(T, B, dm)
        c = _consts(U.dtype, lam)
        args = (_np(U), _np(kappa), _np(m0), _np(W1m.t().contiguous()), _np(Wh.transpose(1, 2).contiguous()), _np(bh),
                _np(Wo.t().contiguous()), _np(bo), code, *c, _np(m_seq))
        split_across_threads(_memory_forward, args, B)
        ctx.save_for_backward(U, kappa, m0, W1m, Wh, bh, Wo, bo, m_seq)
        ctx.code, ctx.lam = code, lam
        return m_seq

    @staticmethod
    def backward(ctx, g_mseq):
        U, kappa, m0, W1m, Wh, bh, Wo, bo, m_seq = ctx.saved_tensors
        T, B, H = U.shape
        dm = m0.shape[1]
        Lh = bh.shape[0]
        g_U = torch.empty_like(U)
        g_Zh = U.new_empty(T, B, Lh, H)
        g_Zo = U.new_empty(T, B, dm)
        acts = U.new_empty(T, B, Lh + 1, H)
        g_kappa = U.new_empty(B, dm)
        g_m0 = U.new_empty(B, dm)
        c = _consts(U.dtype, ctx.lam)
        args = (_np(U), _np(kappa), _np(m0), _np(m_seq), _np(g_mseq.contiguous()), _np(W1m.t().contiguous()), _np(W1m),
                _np(Wh.transpose(1, 2).contiguous()), _np(Wh), _np(bh), _np(Wo.t().contiguous()), _np(Wo), _np(bo),
                ctx.code, *c, _np(g_U), _np(g_Zh), _np(g_Zo), _np(acts), _np(g_kappa), _np(g_m0))
        split_across_threads(_memory_backward, args, B)
        # weight gradients: GEMMs over all T·B steps
        km_prev = kappa * torch.cat([m0[None], m_seq[:-1]])
        g_W1m = g_U.reshape(-1, H).t() @ km_prev.reshape(-1, dm)
        g_Wh = torch.stack([g_Zh[:, :, i].reshape(-1, H).t() @ acts[:, :, i].reshape(-1, H) for i in range(Lh)]) \
            if Lh else torch.zeros_like(Wh)
        g_bh = g_Zh.sum(dim=(0, 1))
        g_Wo = g_Zo.reshape(-1, dm).t() @ acts[:, :, Lh].reshape(-1, H)
        g_bo = g_Zo.sum(dim=(0, 1))
        return g_U, g_kappa.sum(0), g_m0, g_W1m, g_Wh, g_bh, g_Wo, g_bo, None, None


def _consts(dtype: torch.dtype, lam: float) -> tuple:
    cast = np.float32 if dtype == torch.float32 else np.float64
    return cast(lam), cast(TANH_SCALE), cast(TANH_SLOPE), cast(0.0), cast(1.0)


# -- the whole neuron ------------------------------------------------------------------------------------------
@torch._dynamo.disable
def run(x_syn: torch.Tensor, s0: torch.Tensor, m0: torch.Tensor, p: ELMTensors
        ) -> tuple[torch.Tensor, torch.Tensor, torch.Tensor, torch.Tensor]:
    """Same contract as :func:`snn.kernels.elm_reference.run` (``x_syn`` ``[T, B, n_syn]``, float32/float64 CPU):
    returns ``(y [T, B, C_out], memory [T, B, d_m], s_T, m_T)``."""
    T, B, n_syn = x_syn.shape
    if T == 0 or B == 0:
        from snn.kernels import elm_reference

        return elm_reference.run(x_syn, s0, m0, p)
    spb = n_syn // p.n_branch
    branch, s_final = BranchTraces.apply(x_syn, p.w_s, p.kappa_s, s0, spb)
    W1 = p.weights[0]
    U = F.linear(branch, W1[:, : p.n_branch], p.biases[0])
    hidden_w, hidden_b = p.weights[1:-1], p.biases[1:-1]
    H = W1.shape[0]
    Wh = torch.stack(hidden_w) if hidden_w else U.new_zeros(0, H, H)
    bh = torch.stack(hidden_b) if hidden_b else U.new_zeros(0, H)
    memory = MemoryRecurrence.apply(U, p.kappa_m, m0, W1[:, p.n_branch:], Wh, bh, p.weights[-1], p.biases[-1],
                                    ACTIVATION_CODES[p.activation], float(p.lam))
    y = F.linear(memory, p.w_y, p.b_y)
    return y, memory, s_final, memory[-1]
