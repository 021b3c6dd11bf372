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
3. the memory recurrence (:class:`MemoryRecurrence`) is the only sequential part: each sample walks time with
   ``z_1 = U_t + W_{1,m} (κ_m ⊙ m_{t-1})``, the hidden layers, ``Δm_t``, ``m_t`` — small matrix-vector products
   written as contiguous ``axpy`` loops (they vectorise without ``fastmath``), parallel over samples;
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
def _mlp(U_tb, m_prev, kappa, W1mT, WhT, bh, WoT, bo, code, zero, one, slope, km, zpre, act, zo):  # pragma: no cover
    """One step's MLP from ``m_{t-1}``: fills ``km``, ``zpre [L, H]``, ``act [L, H]`` and returns ``tanh(slope·z_out)``
    in ``zo``."""
    dm = m_prev.shape[0]
    H = U_tb.shape[0]
    Lh = bh.shape[0]
    for k in range(dm):
        km[k] = kappa[k] * m_prev[k]
    z = zpre[0]
    for h in range(H):
        z[h] = U_tb[h]
    for k in range(dm):
        c = km[k]
        row = W1mT[k]
        for h in range(H):
            z[h] += row[h] * c
    a = act[0]
    for h in range(H):
        a[h] = _act(z[h], code, zero, one)
    for layer in range(Lh):
        z = zpre[layer + 1]
        prev = act[layer]
        for h in range(H):
            z[h] = bh[layer, h]
        for k in range(H):
            c = prev[k]
            row = WhT[layer, k]
            for h in range(H):
                z[h] += row[h] * c
        a = act[layer + 1]
        for h in range(H):
            a[h] = _act(z[h], code, zero, one)
    last = act[Lh]
    for j in range(dm):
        zo[j] = bo[j]
    for k in range(H):
        c = last[k]
        row = WoT[k]
        for j in range(dm):
            zo[j] += row[j] * c
    for j in range(dm):
        zo[j] = np.tanh(slope * zo[j])


@nb.njit(**_JIT)
def _memory_forward(U, kappa, m0, W1mT, WhT, bh, WoT, bo, code, lam, scale, slope, zero, one, m_seq, lo, hi):  # pragma: no cover
    T = U.shape[0]
    H = U.shape[2]
    dm = m0.shape[1]
    L = bh.shape[0] + 1
    km = np.empty(dm, U.dtype)
    zpre = np.empty((L, H), U.dtype)
    act = np.empty((L, H), U.dtype)
    th = np.empty(dm, U.dtype)
    for t in range(T):  # time outer, samples inner: contiguous slabs of U and m per step
        for b in range(lo, hi):
            m = m_seq[t - 1, b] if t > 0 else m0[b]
            _mlp(U[t, b], m, kappa, W1mT, WhT, bh, WoT, bo, code, zero, one, slope, km, zpre, act, th)
            out = m_seq[t, b]
            for j in range(dm):
                out[j] = kappa[j] * m[j] + lam * (one - kappa[j]) * (scale * th[j])


@nb.njit(**_JIT)
def _memory_backward(U, kappa, m0, m_seq, g_mseq, W1mT, W1m, WhT, Wh, bh, WoT, Wo, bo, code, lam, scale, slope,
                     zero, one, g_U, g_Zh, g_Zo, acts, g_kappa, g_m0, lo, hi):  # pragma: no cover
    T = U.shape[0]
    H = U.shape[2]
    dm = m0.shape[1]
    Lh = bh.shape[0]
    km = np.empty(dm, U.dtype)
    zpre = np.empty((Lh + 1, H), U.dtype)
    act = np.empty((Lh + 1, H), U.dtype)
    th = np.empty(dm, U.dtype)
    gm = np.empty(dm, U.dtype)
    carry = np.zeros((hi - lo, dm), U.dtype)  # ∂L/∂m_t from the later steps, per sample
    gzo = np.empty(dm, U.dtype)
    ga = np.empty(H, U.dtype)
    gnext = np.empty(H, U.dtype)
    gkm = np.empty(dm, U.dtype)
    for b in range(lo, hi):
        for j in range(dm):
            g_kappa[b, j] = zero
    for t in range(T - 1, -1, -1):
        for b in range(lo, hi):
            cb = carry[b - lo]
            m_prev = m_seq[t - 1, b] if t > 0 else m0[b]
            _mlp(U[t, b], m_prev, kappa, W1mT, WhT, bh, WoT, bo, code, zero, one, slope, km, zpre, act, th)
            for layer in range(Lh + 1):
                acts[t, b, layer, :] = act[layer]
            gmt = g_mseq[t, b]
            gk = g_kappa[b]
            out_o = g_Zo[t, b]
            for j in range(dm):
                g = gmt[j] + cb[j]
                gm[j] = g
                delta = scale * th[j]
                gk[j] += g * (m_prev[j] - lam * delta)
                gzo[j] = g * lam * (one - kappa[j]) * scale * slope * (one - th[j] * th[j])
                out_o[j] = gzo[j]
            for h in range(H):
                ga[h] = zero
            for j in range(dm):
                c = gzo[j]
                row = Wo[j]
                for h in range(H):
                    ga[h] += row[h] * c
            for layer in range(Lh - 1, -1, -1):
                z = zpre[layer + 1]
                out_h = g_Zh[t, b, layer]
                for h in range(H):
                    ga[h] = ga[h] * _act_grad(z[h], code, zero, one)
                    out_h[h] = ga[h]
                    gnext[h] = zero
                for h in range(H):
                    c = ga[h]
                    row = Wh[layer, h]
                    for k in range(H):
                        gnext[k] += row[k] * c
                for h in range(H):
                    ga[h] = gnext[h]
            z = zpre[0]
            out_u = g_U[t, b]
            for h in range(H):
                ga[h] = ga[h] * _act_grad(z[h], code, zero, one)
                out_u[h] = ga[h]
            for k in range(dm):
                gkm[k] = zero
            for h in range(H):
                c = ga[h]
                row = W1m[h]
                for k in range(dm):
                    gkm[k] += row[k] * c
            for k in range(dm):
                gk[k] += gkm[k] * m_prev[k]
                cb[k] = (gm[k] + gkm[k]) * kappa[k]
    for b in range(lo, hi):
        for j in range(dm):
            g_m0[b, j] = carry[b - lo, j]


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
