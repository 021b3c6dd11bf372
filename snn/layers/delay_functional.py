r"""Pure functions behind :class:`snn.layers.LearnableDelay` (DCLS learnable delays).

Kernel construction (Hammouamri et al., ICLR 2024, the ``dcls`` package's ``Dcls1d``): a synapse
``(o, i)`` owns ``kernel_count`` elements with weight ``w_k`` and real position ``p_k`` in
``[-D//2, D//2]`` (``D = max_delay``). With the tap index ``j = 0 … D-1`` and ``p'_k = p_k + D//2``

.. math::

    e_{jk} = \begin{cases}
        \exp\!\big(-\tfrac12 ((j - p'_k) / (|\sigma| + 0.27))^2\big) & \text{version "gauss"} \\
        \operatorname{relu}\big(|\sigma| + 1 - |j - p'_k|\big)          & \text{version "max"}
    \end{cases}
    \qquad
    K_j = \sum_k w_k \, \frac{e_{jk}}{\sum_m e_{mk} + 10^{-7}}

Tap ``j`` carries the delay ``d = D - 1 - j`` steps: with the reference's padding (``D - 1`` zero steps
on the left, ``R`` on the right) the output is

.. math:: y[t', b, o] = \sum_{i, j} K_j[i, o] \, x[t' - (D - 1 - j), b, i], \qquad t' = 0 … T + R - 1.

Kernels here are stored tap-major, ``[D, C_in, C_out]``, so each tap is a plain ``[C_in, C_out]``
matrix for time-major inputs ``[T, B, C_in]``.

Three ways to apply a kernel:

* :func:`delay_conv_dense` — ``F.conv1d`` on ``[B, C_in, T]`` (any device, any input density);
* :func:`delay_conv_sparse_input` — CPU numba kernels whose forward and weight gradient walk only the
  non-zero inputs (spikes, possibly dropout-scaled); the input gradient is dense: one GEMM per tap, or, where that
  needs several times more multiply-adds, the same correlation along time frequency by frequency (real DFTs as
  GEMMs, :func:`_spectral_grad_input`);
* :func:`integer_delay_scatter` — inference with one integer delay per synapse element and no dense
  kernel: every non-zero input ``x[t, b, i]`` adds ``x · w[:, i, k]`` at output times ``t + d[:, i, k]``.
"""
from __future__ import annotations

import functools
import math

import numba as nb
import numpy as np
import torch
import torch.nn.functional as F
from torch.autograd.function import once_differentiable

from snn.kernels.cpu_threads import numba_threads, start_numba_pool
from snn.layers.delay_kernel_numba import kernel_backward, kernel_forward
from snn.layers.event_functional import _axpy1, _axpy2, _axpy3, _axpy4

__all__ = [
    "VERSIONS",
    "NORM_EPS",
    "delay_kernel",
    "delay_conv_dense",
    "delay_conv_sparse_input",
    "integer_delay_scatter",
    "sparse_input_supported",
]

VERSIONS = ("gauss", "max")
#: Added to the tap normaliser, as in the reference; a one-tap integer delay therefore scales its weight
#: by ``1 / (1 + NORM_EPS)``.
NORM_EPS = 1e-7
_GAUSS_SIGMA_OFFSET = 0.27
_MAX_SIGMA_OFFSET = 1.0


def _offset(version: str) -> float:
    return _GAUSS_SIGMA_OFFSET if version == "gauss" else _MAX_SIGMA_OFFSET


def _profile(diff: torch.Tensor, sig: torch.Tensor, version: str) -> torch.Tensor:
    if version == "gauss":
        return torch.exp(-0.5 * (diff / (sig + _GAUSS_SIGMA_OFFSET)) ** 2)
    return torch.relu((sig + _MAX_SIGMA_OFFSET) - diff.abs())


def _tap_offsets(weight: torch.Tensor, positions: torch.Tensor, max_delay: int) -> torch.Tensor:
    """``j - p'`` for every tap and element, ``[D, C_in, C_out, K]``."""
    p = positions.permute(1, 0, 2) + (max_delay // 2)
    taps = torch.arange(max_delay, device=weight.device, dtype=weight.dtype).view(-1, 1, 1, 1)
    return taps - p


def _flush_subnormal(kernel: torch.Tensor) -> torch.Tensor:
    """Zero the taps below the dtype's smallest normal number.

    Once a Gaussian kernel has narrowed, taps a few positions from the centre underflow to subnormal floats, and
    a CPU multiplies subnormals in microcode: the delay GEMMs then run 10-25x slower. These taps are below 1e-38
    (float32) of a weight, so zeroing them changes no result that float arithmetic can see.
    """
    return kernel.masked_fill(kernel.abs() < torch.finfo(kernel.dtype).tiny, 0.0)


def _fused_kernel_supported(weight: torch.Tensor) -> bool:
    return weight.device.type == "cpu" and weight.dtype in (torch.float32, torch.float64)


class _DelayKernel(torch.autograd.Function):
    """Kernel construction with the analytic backward.

    With ``n_j = e_j / S``, ``S = Σ_m e_m + ε`` and ``e'_j = ∂e_j/∂p``:
    ``∂L/∂w = Σ_j g_j n_j`` and ``∂L/∂p = (w / S) (Σ_j g_j e'_j - (Σ_j g_j n_j) Σ_m e'_m)``.
    On CPU both directions run as one numba loop per synapse element (:mod:`snn.layers.delay_kernel_numba`, which
    saves the profile ``e``, the kernel's size); elsewhere in torch, recomputing the profile from the parameters.
    """

    @staticmethod
    def forward(ctx, weight, positions, sig, max_delay, version):  # type: ignore[override]
        ctx.max_delay, ctx.version = max_delay, version
        if _fused_kernel_supported(weight):
            c_out, c_in, n_k = weight.shape
            w, p = weight.detach().contiguous(), positions.detach().to(weight.dtype).contiguous()
            kernel = weight.new_empty(max_delay, c_in, c_out)
            profile = weight.new_empty(c_in, c_out, n_k, max_delay)
            start_numba_pool()
            scalar = w.numpy().dtype.type
            kernel_forward(w.numpy(), p.numpy(), float(sig), _offset(version), VERSIONS.index(version),
                           scalar(NORM_EPS), scalar(torch.finfo(weight.dtype).tiny), kernel.numpy(), profile.numpy())
            ctx.save_for_backward(w, p, sig, profile)
            return kernel
        diff = _tap_offsets(weight, positions, max_delay)
        e = _profile(diff, sig, version)
        e = e / (e.sum(0) + NORM_EPS)
        ctx.save_for_backward(weight, positions, sig)
        return _flush_subnormal((e * weight.permute(1, 0, 2)).sum(-1))

    @staticmethod
    def backward(ctx, grad):  # type: ignore[override]
        if len(ctx.saved_tensors) == 4:  # the fused forward saved the profile
            return _fused_kernel_backward(ctx, grad)
        weight, positions, sig = ctx.saved_tensors
        diff = _tap_offsets(weight, positions, ctx.max_delay)
        e = _profile(diff, sig, ctx.version)
        total = e.sum(0) + NORM_EPS
        g = grad.unsqueeze(-1)
        g_dot_n = (g * e).sum(0) / total  # Σ_j g_j n_j, [C_in, C_out, K]
        if ctx.version == "gauss":
            width = sig + _GAUSS_SIGMA_OFFSET
            de = e * diff / (width * width)
        else:
            de = torch.sign(diff) * ((sig + _MAX_SIGMA_OFFSET) - diff.abs() > 0).to(e.dtype)
        w = weight.permute(1, 0, 2)
        grad_p = w / total * ((g * de).sum(0) - g_dot_n * de.sum(0))
        return g_dot_n.permute(1, 0, 2), grad_p.permute(1, 0, 2), None, None, None


@once_differentiable  # numba: a second derivative raises a clear error instead of a numpy() failure
def _fused_kernel_backward(ctx, grad):
    w, p, sig, profile = ctx.saved_tensors
    g = grad.contiguous()
    grad_w, grad_p = torch.empty_like(w), torch.empty_like(w)
    kernel_backward(g.numpy(), w.numpy(), p.numpy(), float(sig), _offset(ctx.version),
                    VERSIONS.index(ctx.version), NORM_EPS, profile.numpy(), grad_w.numpy(), grad_p.numpy())
    return grad_w, grad_p, None, None, None


def delay_kernel(
    weight: torch.Tensor, positions: torch.Tensor, sigma: torch.Tensor | float, max_delay: int, version: str
) -> torch.Tensor:
    """Dense delay kernel ``[D, C_in, C_out]`` (tap-major) from ``weight``/``positions`` ``[C_out, C_in, K]``.

    ``sigma`` is the (scalar) width in taps before the version's offset (``+0.27`` for ``"gauss"``,
    ``+1`` for ``"max"``); ``positions`` are centred (``0`` is tap ``D//2``). Differentiable in
    ``weight`` and ``positions`` (analytic backward), and in ``sigma`` if it requires grad (autograd).
    """
    if version not in VERSIONS:
        raise ValueError(f"version must be one of {VERSIONS}, got {version!r}")
    sig = torch.as_tensor(sigma, dtype=weight.dtype, device=weight.device).abs()
    if not sig.requires_grad:
        return _DelayKernel.apply(weight, positions, sig.detach(), max_delay, version)
    e = _profile(_tap_offsets(weight, positions, max_delay), sig, version)
    e = e / (e.sum(0) + NORM_EPS)
    return _flush_subnormal((e * weight.permute(1, 0, 2)).sum(-1))


def delay_conv_dense(x: torch.Tensor, kernel: torch.Tensor, right_pad: int) -> torch.Tensor:
    """Apply a tap-major kernel ``[D, C_in, C_out]`` to ``x`` ``[T, B, C_in]`` → ``[T + right_pad, B, C_out]``."""
    d = kernel.shape[0]
    xb = F.pad(x.permute(1, 2, 0), (d - 1, right_pad))
    y = F.conv1d(xb, kernel.permute(2, 1, 0))
    return y.permute(2, 0, 1)


def sparse_input_supported(x: torch.Tensor) -> bool:
    """Whether :func:`delay_conv_sparse_input` can run on ``x`` (CPU, float32/float64)."""
    return x.device.type == "cpu" and x.dtype in (torch.float32, torch.float64)


# Loop order of the sparse kernels: a task owns a group of batch elements whose accumulators
# ([T_out·C_out] each, contiguous) fit in L2; within it the loop runs input by input so the kernel block of
# input i (D·C_out values, delay-major) stays in L1 while every spike of i in the group adds it to the
# output rows t … t+D-1 as one contiguous axpy. Spike-major order instead streams the whole kernel
# from memory once per spike and runs several times slower.
_L2_BYTES = 1 << 20


def _batch_group(t_out: int, c_out: int, itemsize: int) -> int:
    return max(1, min(16, _L2_BYTES // max(1, t_out * c_out * itemsize)))


_SWEEP_MIN_OUT = 64  # below this many outputs a row is too short for the row sweep to pay (measured: 20 outputs)


@nb.njit(parallel=True, cache=True, nogil=True)
def _sparse_forward(x_bct, kernel_by_delay, out, group):  # pragma: no cover - compiled
    # For each input i and batch element, the output rows are swept once from its first spike on: row t takes
    # the kernel rows of the spikes t - D < s <= t in ascending s, four per pass over the row. Each output
    # element adds its terms in the order of the spike-by-spike scatter (inputs ascending, then spike times).
    batch, c_in, t_in = x_bct.shape
    t_out, _, c_out = out.shape
    d = kernel_by_delay.shape[1] // c_out
    n_groups = (batch + group - 1) // group
    for gi in nb.prange(n_groups):
        b0 = gi * group
        nb_ = min(batch, b0 + group) - b0
        acc = np.zeros((nb_, t_out * c_out), dtype=out.dtype)
        ts = np.empty(t_in, dtype=np.int64)
        vs = np.empty(t_in, dtype=out.dtype)
        for i in range(c_in):
            kr = kernel_by_delay[i]
            for bb in range(nb_):
                ns = _spike_list(x_bct[b0 + bb, i], ts, vs)
                if ns == 0:
                    continue
                ab = acc[bb]
                if c_out < _SWEEP_MIN_OUT:  # short rows: one pass per spike over its D rows (contiguous)
                    for k in range(ns):
                        _axpy1(ab[ts[k] * c_out :], vs[k], kr, min(d, t_out - ts[k]) * c_out)
                    continue
                lo = 0
                hi = 0
                last = min(t_out, ts[ns - 1] + d)
                t = ts[0]
                while t < last:
                    while hi < ns and ts[hi] <= t:
                        hi += 1
                    while lo < hi and ts[lo] <= t - d:
                        lo += 1
                    if lo == hi:  # no spike within reach of row t: jump to the next one
                        t = ts[hi]
                        continue
                    row = ab[t * c_out : (t + 1) * c_out]
                    k = lo
                    while k + 4 <= hi:
                        _axpy4(row, vs[k], kr[(t - ts[k]) * c_out :], vs[k + 1], kr[(t - ts[k + 1]) * c_out :],
                               vs[k + 2], kr[(t - ts[k + 2]) * c_out :], vs[k + 3], kr[(t - ts[k + 3]) * c_out :],
                               c_out)
                        k += 4
                    left = hi - k
                    if left == 3:
                        _axpy3(row, vs[k], kr[(t - ts[k]) * c_out :], vs[k + 1], kr[(t - ts[k + 1]) * c_out :],
                               vs[k + 2], kr[(t - ts[k + 2]) * c_out :], c_out)
                    elif left == 2:
                        _axpy2(row, vs[k], kr[(t - ts[k]) * c_out :], vs[k + 1], kr[(t - ts[k + 1]) * c_out :], c_out)
                    elif left == 1:
                        _axpy1(row, vs[k], kr[(t - ts[k]) * c_out :], c_out)
                    t += 1
        for bb in range(nb_):
            out[:, b0 + bb, :] = acc[bb].reshape(t_out, c_out)


@nb.njit(parallel=True, cache=True, nogil=True)
def _sparse_grad_kernel(x_bct, grad_out, partial, group):  # pragma: no cover - compiled
    # partial[c, i] is the flat delay-major [D·C_out] gradient block of input i summed over the batch
    # groups c, c + n_tasks, ... (one partial per task: no write races). The spikes of one input and batch
    # element enter the block four per pass (ascending times: each element adds its terms in spike order).
    batch, c_in, t_in = x_bct.shape
    t_out, _, c_out = grad_out.shape
    n_tasks = partial.shape[0]
    d = partial.shape[2] // c_out
    full = d * c_out
    n_groups = (batch + group - 1) // group
    for c in nb.prange(n_tasks):
        acc = partial[c]
        g = np.empty((group, t_out * c_out), dtype=grad_out.dtype)
        ts = np.empty(t_in, dtype=np.int64)
        vs = np.empty(t_in, dtype=grad_out.dtype)
        for gi in range(c, n_groups, n_tasks):
            b0 = gi * group
            nb_ = min(batch, b0 + group) - b0
            for bb in range(nb_):
                g[bb] = grad_out[:, b0 + bb, :].copy().reshape(t_out * c_out)
            for i in range(c_in):
                a = acc[i]
                for bb in range(nb_):
                    ns = _spike_list(x_bct[b0 + bb, i], ts, vs)
                    gb = g[bb]
                    k = 0
                    while k + 4 <= ns and ts[k + 3] + d <= t_out:  # four whole-length segments
                        _axpy4(a, vs[k], gb[ts[k] * c_out :], vs[k + 1], gb[ts[k + 1] * c_out :],
                               vs[k + 2], gb[ts[k + 2] * c_out :], vs[k + 3], gb[ts[k + 3] * c_out :], full)
                        k += 4
                    for k in range(k, ns):
                        _axpy1(a, vs[k], gb[ts[k] * c_out :], min(d, t_out - ts[k]) * c_out)


@nb.njit(inline="always", nogil=True)
def _spike_list(xs, ts, vs):  # pragma: no cover - compiled
    """Times and values of the non-zeros of ``xs`` into ``ts``/``vs``; returns their number."""
    n = 0
    for t in range(xs.shape[0]):
        v = xs[t]
        if v != 0.0:
            ts[n] = t
            vs[n] = v
            n += 1
    return n


def _direct_grad_input(grad_out: torch.Tensor, kernel: torch.Tensor, t_in: int) -> torch.Tensor:
    """``∂L/∂x`` ``[T, B, C_in]``: one GEMM per tap over the rows it touches (no padded rows)."""
    d, c_in, _ = kernel.shape
    t_out, batch, c_out = grad_out.shape
    gx = grad_out.new_zeros(t_in * batch, c_in)
    g = grad_out.reshape(t_out * batch, c_out)
    for j in range(d):
        delay = d - 1 - j
        n = min(t_in, t_out - delay)
        if n <= 0:
            continue
        gx[: n * batch].addmm_(g[delay * batch : (delay + n) * batch], kernel[j].t())
    return gx.view(t_in, batch, c_in)


@functools.lru_cache(maxsize=16)
def _dft_matrices(n: int, dtype: torch.dtype, device: torch.device) -> tuple[torch.Tensor, torch.Tensor]:
    """Real DFT of length ``n`` as matrices: ``analysis`` ``[2F, n]`` and ``synthesis`` ``[n, 2F]``, ``F = n//2 + 1``.

    Rows of ``analysis`` are ordered (frequency, real/imaginary part), so one GEMM leaves each frequency's real
    and imaginary parts adjacent; its first ``m`` columns transform a signal of ``m ≤ n`` steps zero-padded to
    ``n``. ``synthesis`` is the real inverse (Hermitian symmetry: every frequency except 0 and, for even ``n``,
    ``n/2`` stands for itself and its mirror); its first rows give the first output steps. Built in float64 and
    rounded once.
    """
    n_freq = n // 2 + 1
    freq = torch.arange(n_freq, dtype=torch.float64)
    angle = 2 * math.pi / n * torch.outer(freq, torch.arange(n, dtype=torch.float64))  # [F, n]
    analysis = torch.stack([torch.cos(angle), -torch.sin(angle)], 1).reshape(2 * n_freq, n)
    weight = torch.full((n_freq, 1), 2.0 / n, dtype=torch.float64)
    weight[0] = 1.0 / n
    if n % 2 == 0:
        weight[-1] = 1.0 / n
    synthesis = (analysis * weight.repeat_interleave(2, 0)).t()  # cos/n·w and -sin/n·w: Re(Y e^{iωt}) terms
    return analysis.to(dtype=dtype, device=device), synthesis.to(dtype=dtype, device=device).contiguous()


def _spectral_length(t_out: int, t_in: int, d: int) -> int:
    """DFT length with no wrap-around for the needed lags (``≥ T_out`` and ``≥ T + D - 1``), rounded up.

    Rounded up to a multiple of ``8·⌈n/256⌉`` (under 8 extra steps up to 256, under 4 % beyond), so batches of
    nearby lengths share one cached matrix pair.
    """
    n = max(t_out, t_in + d - 1)
    step = 8 * -(-n // 256)
    return -(-n // step) * step


def _spectral_grad_input(grad_out: torch.Tensor, kernel: torch.Tensor, t_in: int) -> torch.Tensor:
    r"""``∂L/∂x`` ``[T, B, C_in]`` as a correlation along time, computed frequency by frequency.

    ``∂L/∂x[t] = Σ_s g[t + s] \, k_s^\top`` with ``k_s = K_{D-1-s}`` (delay ``s``) is, for DFTs of length
    ``n ≥ max(T_out, T + D - 1)``, ``\mathcal{F}^{-1}(G_f \overline{K_f}^\top)``: the DFTs along time and over
    the taps and the inverse are real GEMMs (contiguous in time-major layout) and the per-frequency complex
    products one batched GEMM, about ``4·n·(T_out·B·C_out + D·C_in·C_out + T·B·C_in) + 4·n·B·C_out·C_in``
    multiply-adds instead of the per-tap sum's ``2·D·T·B·C_out·C_in``.
    Same result up to float rounding (≈1e-6 relative to the gradient's scale in float32).
    """
    d, c_in, c_out = kernel.shape
    t_out, batch, _ = grad_out.shape
    n = _spectral_length(t_out, t_in, d)
    analysis, synthesis = _dft_matrices(n, grad_out.dtype, grad_out.device)
    fwd, taps, inv = analysis[:, :t_out], analysis[:, :d], synthesis[:t_in]  # zero padding = unused columns/rows
    n_freq = n // 2 + 1
    g_f = (fwd @ grad_out.reshape(t_out, batch * c_out)).view(n_freq, 2 * batch, c_out)  # rows (re|im, b)
    k_f = (taps @ kernel.flip(0).reshape(d, c_in * c_out)).view(n_freq, 2 * c_in, c_out)  # rows (re|im, i)
    p = torch.bmm(g_f, k_f.transpose(1, 2)).view(n_freq, 2, batch, 2, c_in)  # [f, g re|im, b, k re|im, i]
    # G · conj(K): re = Gr·Kr + Gi·Ki, im = Gi·Kr - Gr·Ki
    y = torch.stack([p[:, 0, :, 0] + p[:, 1, :, 1], p[:, 1, :, 0] - p[:, 0, :, 1]], 1)  # [f, re|im, b, i]
    return (inv @ y.view(2 * n_freq, batch * c_in)).view(t_in, batch, c_in)


#: The spectral input gradient must need fewer than this share of the direct route's multiply-adds.
_SPECTRAL_SHARE = 0.55


def _dense_grad_input(grad_out: torch.Tensor, kernel: torch.Tensor, t_in: int) -> torch.Tensor:
    """``∂L/∂x`` by the per-tap GEMMs or by the spectral correlation, whichever needs fewer multiply-adds.

    The spectral route is taken only when its count is under :data:`_SPECTRAL_SHARE` of the direct one: its
    GEMMs are smaller and its batched products less efficient per multiply-add (measured, see the README).
    """
    d, c_in, c_out = kernel.shape
    t_out, batch, _ = grad_out.shape
    n = _spectral_length(t_out, t_in, d)
    direct = d * t_in * batch * c_out * c_in
    spectral = n * (t_out * batch * c_out + d * c_in * c_out + t_in * batch * c_in + 2 * batch * c_out * c_in)
    if spectral < _SPECTRAL_SHARE * direct:
        return _spectral_grad_input(grad_out, kernel, t_in)
    return _direct_grad_input(grad_out, kernel, t_in)


class _SparseInputDelayConv(torch.autograd.Function):
    @staticmethod
    def forward(ctx, x: torch.Tensor, kernel: torch.Tensor, right_pad: int) -> torch.Tensor:  # type: ignore[override]
        x_bct = x.detach().permute(1, 2, 0).contiguous()  # [B, C_in, T]: each input's spike train contiguous
        kc = kernel.detach().contiguous()
        d, c_in, c_out = kc.shape
        rev = torch.arange(d - 1, -1, -1)
        by_delay = kc.permute(1, 0, 2).index_select(1, rev).view(c_in, d * c_out)  # [C_in, D·C_out], one copy
        out = x.new_empty(x.shape[0] + right_pad, x.shape[1], c_out)
        group = _batch_group(out.shape[0], c_out, out.element_size())
        start_numba_pool()
        _sparse_forward(x_bct.numpy(), by_delay.numpy(), out.numpy(), group)
        ctx.save_for_backward(x_bct, kc)
        return out

    @staticmethod
    @once_differentiable  # numba kernels: no second derivative (a clear error if one is asked for)
    def backward(ctx, grad_out: torch.Tensor):  # type: ignore[override]
        x_bct, kc = ctx.saved_tensors
        g = grad_out.contiguous()
        grad_x = grad_k = None
        if ctx.needs_input_grad[0]:
            grad_x = _dense_grad_input(g, kc, x_bct.shape[2])
        if ctx.needs_input_grad[1]:
            d, c_in, c_out = kc.shape
            group = _batch_group(g.shape[0], c_out, g.element_size())
            n_tasks = max(1, min(numba_threads(), -(-x_bct.shape[0] // group)))
            partial = g.new_zeros(n_tasks, c_in, d * c_out)
            _sparse_grad_kernel(x_bct.numpy(), g.numpy(), partial.numpy(), group)
            summed = partial[0] if n_tasks == 1 else partial.sum(0)  # one task: no copy
            grad_k = summed.view(c_in, d, c_out).flip(1).permute(1, 0, 2)
        return grad_x, grad_k, None


def delay_conv_sparse_input(x: torch.Tensor, kernel: torch.Tensor, right_pad: int) -> torch.Tensor:
    """Same result as :func:`delay_conv_dense`; forward and kernel gradient cost ``O(nnz(x) · D · C_out)``.

    CPU float32/float64 only (see :func:`sparse_input_supported`). Differentiable in ``x`` and ``kernel``.
    """
    if not sparse_input_supported(x):
        raise ValueError(f"x must be a CPU float32/float64 tensor, got {x.dtype} on {x.device}")
    if kernel.dtype != x.dtype:
        raise TypeError(f"kernel dtype {kernel.dtype} must equal x dtype {x.dtype}")
    return _SparseInputDelayConv.apply(x, kernel, right_pad)


@nb.njit(parallel=True, cache=True, nogil=True)
def _integer_scatter(x_bct, weight_t, delay_t, out, group):  # pragma: no cover - compiled
    # Same loop order as _sparse_forward: the weights and delays of input i stay in L1 while its spikes
    # in a group of batch elements scatter into the group's L2-resident accumulators.
    batch, c_in, t_in = x_bct.shape
    _, n_k, c_out = weight_t.shape
    t_out = out.shape[0]
    n_groups = (batch + group - 1) // group
    for gi in nb.prange(n_groups):
        b0 = gi * group
        nb_ = min(batch, b0 + group) - b0
        acc = np.zeros((nb_, t_out * c_out), dtype=out.dtype)
        offset = np.empty(c_out, dtype=np.int64)
        for i in range(c_in):
            for k in range(n_k):
                wr = weight_t[i, k]
                dr = delay_t[i, k]
                for o in range(c_out):
                    offset[o] = dr[o] * c_out + o
                for bb in range(nb_):
                    xs = x_bct[b0 + bb, i]
                    ab = acc[bb]
                    for t in range(t_in):
                        v = xs[t]
                        if v != 0.0:
                            base = t * c_out
                            for o in range(c_out):
                                if t + dr[o] < t_out:
                                    ab[base + offset[o]] += v * wr[o]
        for bb in range(nb_):
            out[:, b0 + bb, :] = acc[bb].reshape(t_out, c_out)


def integer_delay_scatter(
    x: torch.Tensor, weight: torch.Tensor, delays: torch.Tensor, right_pad: int, backend: str = "auto"
) -> torch.Tensor:
    """Integer-delay synapses applied spike by spike, without a dense kernel.

    ``x`` ``[T, B, C_in]``; ``weight`` ``[C_out, C_in, K]`` (effective tap values); ``delays``
    ``[C_out, C_in, K]`` integers in ``[0, D-1]`` steps. Returns ``[T + right_pad, B, C_out]`` with
    ``y[t + d[o,i,k], b, o] += x[t, b, i] · w[o,i,k]``; contributions past the last output step are
    dropped (as the dense path drops them). Cost ``O(nnz(x) · K · C_out)``. No autograd.
    ``backend``: ``"numba"`` (CPU float32/float64), ``"torch"`` (``index_add_`` over the non-zeros, any
    device) or ``"auto"`` (numba where it can run).
    """
    if backend not in ("auto", "numba", "torch"):
        raise ValueError(f"backend must be 'auto', 'numba' or 'torch', got {backend!r}")
    if backend == "numba" and not sparse_input_supported(x):
        raise ValueError(f"backend 'numba' needs a CPU float32/float64 x, got {x.dtype} on {x.device}")
    t_in, batch, _ = x.shape
    c_out = weight.shape[0]
    t_out = t_in + right_pad
    out = x.new_zeros(t_out, batch, c_out)
    w_t = weight.detach().permute(1, 2, 0).to(x.dtype).contiguous()  # [C_in, K, C_out]
    d_t = delays.permute(1, 2, 0).to(torch.int64).contiguous()
    if backend != "torch" and sparse_input_supported(x):
        x_bct = x.detach().permute(1, 2, 0).contiguous()
        group = _batch_group(t_out, c_out, out.element_size())
        start_numba_pool()
        _integer_scatter(x_bct.numpy(), w_t.numpy(), d_t.numpy(), out.numpy(), group)
        return out
    # Device-agnostic path: index_add over the non-zeros, chunked to bound memory.
    flat = out.view(-1)
    nz = x.detach().nonzero()
    per_spike = w_t.shape[1] * c_out
    step = max(1, (1 << 22) // per_spike)
    o_idx = torch.arange(c_out, device=x.device)
    for s in range(0, nz.shape[0], step):
        t, b, i = nz[s : s + step].unbind(1)
        v = x[t, b, i].detach()
        tt = t.view(-1, 1, 1) + d_t[i]  # [n, K, C_out]
        keep = tt < t_out
        idx = (tt * batch + b.view(-1, 1, 1)) * c_out + o_idx
        vals = v.view(-1, 1, 1) * w_t[i]
        flat.index_add_(0, idx[keep], vals[keep])
    return out
