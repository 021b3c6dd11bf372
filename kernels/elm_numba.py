r"""Fused CPU backend of the ELM neuron: numba kernels for its structure, forward and backward over all steps.

The per-lane kernel language of :mod:`snn.kernels` cannot express ELM (its MLP couples all memory units and its
weights are shared), so these kernels are written for ELM's structure. Only the memory depends on the past in a
nonlinear way; everything else is hoisted out of the time loop (as cuDNN's LSTM hoists its input GEMM):

1. the MLP's input layer on the branch sums, ``U_t = W_{1,b} b_t + b_1``. The synapse traces are a *linear*
   recurrence, so when all synapses decay alike (``κ_s`` one value, as ``tau_s`` builds them) the input layer
   commutes with it (:class:`FilteredInput`): ``U`` is the same filter applied to ``x_t (W_{1,b} R
   diag(w_s))^T``, and for spikes only the weight rows of the nonzero inputs are added (a dense input takes one
   GEMM over all ``T·B``). The traces are never stored; the spikes are kept as a list of events. Synapses
   with different decays take the trace scan (:class:`BranchTraces`) and one GEMM instead;
2. the memory recurrence (:class:`MemoryRecurrence`) is the only sequential part: each thread owns a block of
   samples and walks time; per step ``z_1 = U_t + (κ_m ⊙ m_{t-1}) W_{1,m}^T``, the hidden layers, ``Δm_t``,
   ``m_t`` are a few small GEMMs over the block (BLAS through numba's ``np.dot``, feature-major) and
   elementwise loops;
3. the readout ``y = m W_y^T + b_y`` is one GEMM over all steps (torch, autograd).

The forward saves every MLP layer's pre-activation, the output tanh and the memory sequence (``L·H + 2 d_m``
floats per sample-step; the memory is the output itself). The backward walks time in reverse without
recomputing anything and writes the per-step gradients at every layer's pre-activation; the weight gradients are
then a handful of GEMMs over all ``T·B`` (no per-thread weight accumulators, no reduction across samples).
``∂L/∂κ_m`` is summed per sample in the kernel.

Numerics: the reference's sums in another order (GEMMs over the block or over all steps, the input layer before
the synapse filter); ``tanh`` is evaluated as ``sign(z)(1 - e)/(1 + e)``, ``e = exp(-2|z|)`` (libm's ``tanhf`` is
~4× slower here), which agrees with it to about one unit in the last place of 1.
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


# -- the input layer on uniformly decaying synapses ------------------------------------------------------------
@nb.njit(**_JIT)
def _count_events(x, counts, lo, hi):  # pragma: no cover - compiled
    """``counts[t, b]``: the nonzero inputs of ``x[t, b]`` for samples ``lo:hi``."""
    T = x.shape[0]
    n = x.shape[2]
    zero = x.dtype.type(0)
    for t in range(T):
        for b in range(lo, hi):
            xt = x[t, b]
            c = 0
            for j in range(n):
                if xt[j] != zero:
                    c += 1
            counts[t, b] = c


@nb.njit(**_JIT)
def _input_forward(x, WT, kappa, beta, xs, U, row_ptr, cols, vals, sparse, lo, hi):  # pragma: no cover - compiled
    """For samples ``lo:hi``: ``β_t = κ β_{t-1} + x_t W̃^T`` (``beta`` ``[B, H]``: in β_{-1}, out β_{T-1}) written to
    ``U`` ``[T, B, H]``, and ``xs = Σ_t κ^{T-1-t} x_t`` ``[B, n]`` (in: zeros). Dense: ``U`` holds ``x_t W̃^T`` on entry.
    Sparse: the kernel adds the rows of ``WT`` ``[n, H]`` of the nonzero inputs and lists them (row ``t·B + b`` of
    the CSR ``row_ptr``, ``cols``, ``vals``) for the backward."""
    T = x.shape[0]
    B = x.shape[1]
    n = x.shape[2]
    H = U.shape[2]
    zero = x.dtype.type(0)
    idx = np.empty(n + 1, np.int32)
    for t in range(T):
        for b in range(lo, hi):
            bb = beta[b]
            xt = x[t, b]
            xb = xs[b]
            ut = U[t, b]
            for j in range(n):
                xb[j] = kappa * xb[j] + xt[j]
            if sparse:
                m = 0
                for j in range(n):  # branch-free listing of the nonzero inputs
                    idx[m] = j
                    m += xt[j] != zero
                for h in range(H):
                    bb[h] = kappa * bb[h]
                p = row_ptr[t * B + b]
                for q in range(m):
                    j = idx[q]
                    v = xt[j]
                    cols[p + q] = j
                    vals[p + q] = v
                    for h in range(H):  # a separate loop per event: vectorised
                        bb[h] += v * WT[j, h]
            else:
                for h in range(H):
                    bb[h] = kappa * bb[h] + ut[h]
            for h in range(H):
                ut[h] = bb[h]


@nb.njit(**_JIT)
def _input_backward(g_U, kappa, row_ptr, cols, vals, G, carry, P, sparse, lo, hi):  # pragma: no cover - compiled
    """Reverse filter ``G̃_t = g_U_t + κ G̃_{t+1}`` for the sample chunks ``lo:hi`` of ``P.shape[0]``: ``carry``
    ``[B, H]`` (out: ``G̃_0``), ``G`` ``[T, B, H]`` all of ``G̃`` (skipped when it has no steps), and, if ``sparse``,
    each chunk's ``P[c] = Σ_{t,b} x_{t,b}^T G̃_{t,b}`` ``[n, H]`` over the listed nonzero inputs."""
    T = g_U.shape[0]
    B = g_U.shape[1]
    H = g_U.shape[2]
    nc = P.shape[0]
    keep = G.shape[0] > 0
    zero = g_U.dtype.type(0)
    for c in range(lo, hi):
        b_lo, b_hi = B * c // nc, B * (c + 1) // nc
        Pc = P[c]
        for j in range(Pc.shape[0]):
            for h in range(H):
                Pc[j, h] = zero
        for b in range(b_lo, b_hi):
            for h in range(H):
                carry[b, h] = zero
        for t in range(T - 1, -1, -1):
            for b in range(b_lo, b_hi):
                gb = carry[b]
                gu = g_U[t, b]
                for h in range(H):
                    gb[h] = kappa * gb[h] + gu[h]
                if keep:
                    Gt = G[t, b]
                    for h in range(H):
                        Gt[h] = gb[h]
                if sparse:
                    for p in range(row_ptr[t * B + b], row_ptr[t * B + b + 1]):
                        row = Pc[cols[p]]
                        v = vals[p]
                        for h in range(H):
                            row[h] += v * gb[h]


#: the largest fraction of nonzero inputs for which the input layer adds weight rows per event instead of a GEMM
SPARSE_DENSITY = 0.2


class FilteredInput(torch.autograd.Function):
    r"""The input layer on the branch sums for synapses that all decay alike (``κ_s`` one value, as ``tau_s`` is
    built): since the traces are linear in the input, ``U_t = W_{1,b} R s_t + b_1`` (``R`` sums each branch) obeys
    ``β_t = κ β_{t-1} + x_t W̃^T`` with ``W̃ = W_{1,b} R \operatorname{diag}(w_s)`` ``[H, n]`` and ``β_{-1} =
    W_{1,b} R s_0``: the same sums in another order, with no traces stored and, for spikes (at most
    :data:`SPARSE_DENSITY` nonzero), only the weight rows of the nonzero inputs added (dense input: one GEMM over
    all ``T·B``). The backward is the same reassociation: with ``G̃_t = ∂L/∂U_t + κ G̃_{t+1}`` and ``P = Σ_{t,b}
    G̃_{t,b}^T x_{t,b}`` ``[H, n]``, ``∂L/∂(W_{1,b} R) = P \operatorname{diag}(w_s) + κ G̃_0^T s_0`` (summed per
    branch) and ``∂L/∂w_s = \sum_h (W_{1,b} R ⊙ P)_h`` plus the final traces' share; ``s_T = κ^T s_0 + w_s ⊙
    \sum_t κ^{T-1-t} x_t``. Spikes are kept for the backward as a list of events (CSR), not as ``x``.

    ``(x_syn [T, B, n], w_s [n], κ (0-d), s_0 [B, n], W1b [H, n_branch], b_1 [H], spb) → (U [T, B, H], s_T [B, n])``."""

    @staticmethod
    def forward(ctx, x, w, kappa, s0, W1b, b1, spb: int):
        T, B, n = x.shape
        x, w, s0, W1b, b1 = (t.detach().contiguous() for t in (x, w, s0, W1b, b1))
        k = float(kappa)
        W_exp = W1b.repeat_interleave(spb, dim=1)  # W_{1,b} R  [H, n]
        WT = (W_exp * w).t().contiguous()
        counts = torch.empty(T, B, dtype=torch.int64)
        split_across_threads(_count_events, (_np(x), _np(counts)), B)
        nnz = int(counts.sum())
        sparse = nnz <= SPARSE_DENSITY * x.numel()
        U = x.new_empty(T, B, W1b.shape[0])
        if sparse:
            row_ptr = counts.new_zeros(T * B + 1)
            torch.cumsum(counts.view(-1), 0, out=row_ptr[1:])
            cols, vals = torch.empty(nnz, dtype=torch.int32), x.new_empty(nnz)
        else:
            torch.mm(x.view(T * B, n), WT, out=U.view(T * B, -1))
            row_ptr, cols, vals = counts.new_zeros(1), torch.empty(0, dtype=torch.int32), x.new_empty(0)
        beta = s0 @ W_exp.t()
        xs = x.new_zeros(B, n)
        split_across_threads(_input_forward, (_np(x), _np(WT), _cast(x.dtype, k), _np(beta), _np(xs), _np(U),
                                              _np(row_ptr), _np(cols), _np(vals), sparse), B)
        U += b1
        s_final = k ** T * s0 + w * xs
        ctx.save_for_backward(x.new_empty(0) if sparse else x, row_ptr, cols, vals, w, s0, W_exp, xs)
        ctx.k, ctx.spb, ctx.sparse, ctx.shape = k, spb, sparse, (T, B, n)
        return U, s_final

    @staticmethod
    def backward(ctx, g_U, g_final):
        x, row_ptr, cols, vals, w, s0, W_exp, xs = ctx.saved_tensors
        T, B, n = ctx.shape
        H = W_exp.shape[0]
        k, sparse = ctx.k, ctx.sparse
        want_x = ctx.needs_input_grad[0]
        g_U = g_U.contiguous()
        G = g_U.new_empty(T, B, H) if want_x or not sparse else g_U.new_empty(0, B, H)
        G0 = g_U.new_empty(B, H)
        nc = max(1, min(torch.get_num_threads(), B)) if sparse else 1
        P = g_U.new_empty(nc, n, H) if sparse else g_U.new_empty(1, 0, H)
        split_across_threads(_input_backward, (_np(g_U), _cast(g_U.dtype, k), _np(row_ptr), _np(cols), _np(vals),
                                               _np(G), _np(G0), _np(P), sparse), nc)
        P = P.sum(0).t() if sparse else G.view(T * B, H).t() @ x.view(T * B, n)  # [H, n]
        Q = P * w + (k * G0.t()) @ s0
        g_W1b = Q.view(H, -1, ctx.spb).sum(-1)
        g_w = (W_exp * P).sum(0) + (g_final * xs).sum(0)
        g_s0 = k * (G0 @ W_exp) + k ** T * g_final
        g_x = None
        if want_x:
            decay = k ** torch.arange(T - 1, -1, -1, dtype=g_U.dtype)
            g_x = w * ((G.view(T * B, H) @ W_exp).view(T, B, n) + decay[:, None, None] * g_final)
        return g_x, g_w, None, g_s0, g_W1b, g_U.sum(dim=(0, 1)), None


# -- the memory recurrence -------------------------------------------------------------------------------------
@nb.njit(inline="always")
def _act(z, code, zero, one):  # pragma: no cover - compiled
    if code == 0:
        return z if z > zero else zero
    return z / (one + np.exp(-z))


@nb.njit(inline="always")
def _tanh(z, one):  # pragma: no cover - compiled
    """``tanh(z)`` in ``z``'s precision from one ``exp`` of ``-2|z|`` (never overflows)."""
    a = z if z >= one - one else -z
    e = np.exp(-(a + a))
    t = (one - e) / (one + e)
    return t if z >= one - one else -t


@nb.njit(inline="always")
def _act_grad(z, code, zero, one):  # pragma: no cover - compiled
    if code == 0:
        return one if z > zero else zero
    sg = one / (one + np.exp(-z))
    return sg * (one + z * (one - sg))


@nb.njit(**_JIT)
def _memory_forward(U, kappa, m0, W1m, Wh, bh, Wo, bo, code, lam, scale, slope, zero, one, m_seq, Z, TH,
                    lo, hi):  # pragma: no cover - compiled
    """Fills, for samples ``lo:hi``, the memory ``m_seq`` ``[T, B, d_m]``, every layer's pre-activation ``Z``
    ``[L, T, B, H]`` (``Z_0 = U_t + (κ ⊙ m_{t-1}) W_{1,m}^T``) and ``TH = tanh(slope · z_out)`` ``[T, B, d_m]``. Each
    step's products are small GEMMs over the block (BLAS through ``np.dot``), computed feature-major
    (``W @ X^T`` into ``[features, samples]`` scratch: OpenBLAS runs these shapes ~1.5× faster than ``X @ W^T``)."""
    T = U.shape[0]
    H = U.shape[2]
    dm = m0.shape[1]
    Lh = bh.shape[0]
    n = hi - lo
    KM = np.empty((dm, n), U.dtype)
    ZT = np.empty((H, n), U.dtype)
    A = np.empty((Lh + 1, H, n), U.dtype)
    OT = np.empty((dm, n), U.dtype)
    for t in range(T):
        M = m_seq[t - 1, lo:hi] if t > 0 else m0[lo:hi]
        for i in range(n):
            for k in range(dm):
                KM[k, i] = kappa[k] * M[i, k]
        np.dot(W1m, KM, ZT)
        Zt = Z[0, t, lo:hi]
        Ut = U[t, lo:hi]
        for i in range(n):
            for h in range(H):
                z = ZT[h, i] + Ut[i, h]
                Zt[i, h] = z
                A[0, h, i] = _act(z, code, zero, one)
        for layer in range(Lh):
            np.dot(Wh[layer], A[layer], ZT)
            Zt = Z[layer + 1, t, lo:hi]
            for i in range(n):
                for h in range(H):
                    z = ZT[h, i] + bh[layer, h]
                    Zt[i, h] = z
                    A[layer + 1, h, i] = _act(z, code, zero, one)
        np.dot(Wo, A[Lh], OT)
        THt = TH[t, lo:hi]
        out = m_seq[t, lo:hi]
        for i in range(n):
            for j in range(dm):
                th = _tanh(slope * (OT[j, i] + bo[j]), one)
                THt[i, j] = th
                out[i, j] = kappa[j] * M[i, j] + lam * (one - kappa[j]) * (scale * th)


@nb.njit(**_JIT)
def _memory_backward(kappa, m0, m_seq, Z, TH, g_mseq, W1mT, WhT, WoT, code, lam, scale, slope, zero, one, g_Z,
                     g_Zo, g_kappa, g_m0, lo, hi):  # pragma: no cover - compiled
    """Reverse time for samples ``lo:hi`` from the saved ``Z`` and ``TH`` (nothing recomputed): writes ``∂L/∂Z``
    ``[L, T, B, H]``, ``∂L/∂z_out`` ``g_Zo`` ``[T, B, d_m]``, per-sample ``∂L/∂κ_m`` and ``∂L/∂m_0``; the products
    are feature-major GEMMs as in the forward."""
    T = Z.shape[1]
    H = Z.shape[3]
    dm = m0.shape[1]
    Lh = Z.shape[0] - 1
    n = hi - lo
    GO = np.empty((dm, n), Z.dtype)
    GA = np.empty((H, n), Z.dtype)
    GZ = np.empty((H, n), Z.dtype)
    GKM = np.empty((dm, n), Z.dtype)
    carry = np.zeros((n, dm), Z.dtype)  # ∂L/∂m_t from the later steps
    gk = np.zeros((n, dm), Z.dtype)
    for t in range(T - 1, -1, -1):
        M = m_seq[t - 1, lo:hi] if t > 0 else m0[lo:hi]
        THt = TH[t, lo:hi]
        GMt = g_mseq[t, lo:hi]
        GZOt = g_Zo[t, lo:hi]
        for i in range(n):
            for j in range(dm):
                g = GMt[i, j] + carry[i, j]
                th = THt[i, j]
                gk[i, j] += g * (M[i, j] - lam * (scale * th))
                go = g * lam * (one - kappa[j]) * scale * slope * (one - th * th)
                GZOt[i, j] = go
                GO[j, i] = go
                carry[i, j] = g * kappa[j]
        np.dot(WoT, GO, GA)
        for layer in range(Lh, -1, -1):
            Zt = Z[layer, t, lo:hi]
            GZt = g_Z[layer, t, lo:hi]
            for i in range(n):
                for h in range(H):
                    g = GA[h, i] * _act_grad(Zt[i, h], code, zero, one)
                    GZt[i, h] = g
                    GZ[h, i] = g
            if layer > 0:
                np.dot(WhT[layer - 1], GZ, GA)
        np.dot(W1mT, GZ, GKM)
        for i in range(n):
            for k in range(dm):
                gk[i, k] += GKM[k, i] * M[i, k]
                carry[i, k] += GKM[k, i] * kappa[k]
    for i in range(n):
        for j in range(dm):
            g_m0[lo + i, j] = carry[i, j]
            g_kappa[lo + i, j] = gk[i, j]


def _activate(z: torch.Tensor, code: int) -> torch.Tensor:
    return F.relu(z) if code == 0 else F.silu(z)


class MemoryRecurrence(torch.autograd.Function):
    """``m [T, B, d_m]`` from the hoisted input-layer term ``U [T, B, H]``, ``κ_m``, ``m_0`` and the MLP weights
    acting on the memory: ``W1m [H, d_m]``, hidden ``Wh [L-1, H, H]``, ``bh [L-1, H]``, output ``Wo [d_m, H]``, ``bo``.

    Saves every layer's pre-activation ``Z`` and the output tanh ``TH`` (``L·H + d_m`` floats per sample-step besides
    the memory itself), so that the backward recomputes nothing."""

    @staticmethod
    def forward(ctx, U, kappa, m0, W1m, Wh, bh, Wo, bo, code: int, lam: float):
        T, B, H = U.shape
        dm = m0.shape[1]
        U, kappa, m0, W1m, Wh, bh, Wo, bo = (t.detach().contiguous() for t in (U, kappa, m0, W1m, Wh, bh, Wo, bo))
        m_seq = U.new_empty(T, B, dm)
        Z = U.new_empty(bh.shape[0] + 1, T, B, H)
        TH = U.new_empty(T, B, dm)
        c = _consts(U.dtype, lam)
        args = (_np(U), _np(kappa), _np(m0), _np(W1m), _np(Wh), _np(bh), _np(Wo), _np(bo), code, *c, _np(m_seq), _np(Z),
                _np(TH))
        split_across_threads(_memory_forward, args, B)
        ctx.save_for_backward(kappa, m0, W1m, Wh, Wo, m_seq, Z, TH)
        ctx.code, ctx.lam = code, lam
        return m_seq

    @staticmethod
    def backward(ctx, g_mseq):
        kappa, m0, W1m, Wh, Wo, m_seq, Z, TH = ctx.saved_tensors
        L, T, B, H = Z.shape
        dm = m0.shape[1]
        g_Z = torch.empty_like(Z)
        g_Zo = torch.empty_like(TH)
        g_kappa = Z.new_empty(B, dm)
        g_m0 = Z.new_empty(B, dm)
        args = (_np(kappa), _np(m0), _np(m_seq), _np(Z), _np(TH), _np(g_mseq.contiguous()), _np(W1m.t().contiguous()),
                _np(Wh.transpose(1, 2).contiguous()), _np(Wo.t().contiguous()), ctx.code, *_consts(Z.dtype, ctx.lam),
                _np(g_Z), _np(g_Zo), _np(g_kappa), _np(g_m0))
        split_across_threads(_memory_backward, args, B)
        # weight gradients: GEMMs over all T·B steps, activations from the saved pre-activations
        g_Z0 = g_Z[0]  # ∂L/∂W_{1,m} = Σ_t ∂L/∂Z_{0,t}^T (κ ⊙ m_{t-1}), κ applied once to the sum
        g_W1m = g_Z0[0].t() @ m0
        if T > 1:
            g_W1m += g_Z0[1:].reshape(-1, H).t() @ m_seq[:-1].reshape(-1, dm)
        g_W1m *= kappa
        acts = _activate(Z.reshape(L, -1, H), ctx.code)
        g_Zf = g_Z.reshape(L, -1, H)
        g_Wh = torch.bmm(g_Zf[1:].transpose(1, 2), acts[:-1])
        g_bh = g_Zf[1:].sum(1)
        g_Wo = g_Zo.reshape(-1, dm).t() @ acts[-1]
        g_bo = g_Zo.sum(dim=(0, 1))
        return g_Z0, g_kappa.sum(0), g_m0, g_W1m, g_Wh, g_bh, g_Wo, g_bo, None, None


def _cast(dtype: torch.dtype, value: float):
    return (np.float32 if dtype == torch.float32 else np.float64)(value)


def _consts(dtype: torch.dtype, lam: float) -> tuple:
    return tuple(_cast(dtype, v) for v in (lam, TANH_SCALE, TANH_SLOPE, 0.0, 1.0))


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
    W1 = p.weights[0]
    if bool((p.kappa_s == p.kappa_s[0]).all()):
        U, s_final = FilteredInput.apply(x_syn, p.w_s, p.kappa_s[0], s0, W1[:, : p.n_branch], p.biases[0], spb)
    else:
        branch, s_final = BranchTraces.apply(x_syn, p.w_s, p.kappa_s, s0, spb)
        U = F.linear(branch, W1[:, : p.n_branch], p.biases[0])
    hidden_w, hidden_b = p.weights[1:-1], p.biases[1:-1]
    H = W1.shape[0]
    Wh = torch.stack(hidden_w) if hidden_w else U.new_zeros(0, H, H)
    bh = torch.stack(hidden_b) if hidden_b else U.new_zeros(0, H)
    memory = MemoryRecurrence.apply(U, p.kappa_m, m0, W1[:, p.n_branch:], Wh, bh, p.weights[-1], p.biases[-1],
                                    ACTIVATION_CODES[p.activation], float(p.lam))
    y = F.linear(memory, p.w_y, p.b_y)
    return y, memory, s_final, memory[-1]
