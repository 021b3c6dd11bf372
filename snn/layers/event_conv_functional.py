r"""Event-driven 2-D convolution: the pure function behind :class:`snn.layers.EventConv2d`.

For an input ``x`` ``[N, C_in, H, W]`` (``N = T·B`` frames of a time-major sequence), weight ``W``
``[C_out, C_in, K_h, K_w]``, bias ``b``, stride ``s``, zero padding ``p`` and dilation ``d``, every non-zero input
``x_{n,c,h,w}`` adds one weight slice to each output position it reaches:

.. math::

    y_{n,:,i,j} = b + \sum_{\substack{(c, h, w):\, x_{n,c,h,w} \ne 0 \\ h = s_h i - p_h + d_h k_h,\;
        w = s_w j - p_w + d_w k_w}} x_{n,c,h,w}\, W_{:, c, k_h, k_w},

    \frac{\partial L}{\partial W_{:, c, k_h, k_w}} = \sum_{(n, i, j):\, x_{n,c,h,w} \ne 0} x_{n,c,h,w}\, g_{n,:,i,j},
    \qquad \frac{\partial L}{\partial x} = \mathrm{conv\_transpose}(g, W), \qquad
    \frac{\partial L}{\partial b} = \sum_{n,i,j} g_{n,:,i,j}

with ``g = ∂L/∂y``. These are the products of ``F.conv2d`` with the zero terms left out: the result is the dense
layer's up to the order of the floating-point sums, for any values (spikes, dropout-scaled spikes, event counts).
Forward and weight gradient cost ``O(nnz · C_out · K_h K_w)`` instead of ``O(N · H_o W_o · C_in · C_out · K_h K_w)``;
the input gradient stays torch's dense transposed convolution (the previous layer needs all of it) and is skipped
when ``x`` needs no gradient (data).

Layout: the kernels run channels-last — the input as ``[N, H, W, C_in]`` rows, the weight as ``W^T`` slices
``[K_h, K_w, C_in, C_out]`` (what a spike adds: ``C_out`` contiguous values), the output and its gradient as
``[N, H_o, W_o, C_out]`` — and the layer returns a contiguous ``[N, C_out, H_o, W_o]`` like ``nn.Conv2d``.

* 1×1, stride 1, no padding: a linear map over the channels of every pixel; the kernels of
  :mod:`snn.layers.event_functional` (EventLinear's) run on the pixel rows.
* any other geometry: the forward walks each frame's pixels (threads split the frames), collects a pixel's
  non-zeros and adds them four at a time into each output row they reach; the weight gradient walks the same
  pixels, each output-gradient row feeding the accumulator rows of four non-zeros per pass, one accumulator
  ``[K_h, K_w, C_in, C_out]`` per thread, summed at the end.

When to take which path (:func:`event_conv2d`): the event kernels run on CPU float32/float64 tensors ``[N, C, H, W]``
with ``groups = 1`` and zero padding given as numbers, when the fraction of non-zeros is at most ``threshold``;
everything else goes to ``F.conv2d`` unchanged. The default threshold is the measured crossover
(:func:`conv_crossover_density`).
"""
from __future__ import annotations

import numba as nb
import numpy as np
import torch
import torch.nn.functional as F

from snn.kernels.cpu_threads import numba_threads
from snn.layers.event_functional import _add_rows, _apply, _row_pointers, crossover_density, event_path_supported

__all__ = ["conv_crossover_density", "event_conv2d"]


def conv_crossover_density(out_channels: int, kernel_size: tuple[int, int]) -> float:
    """Default threshold: the density below which the event path's forward + backward beats ``F.conv2d``'s.

    Measured (``benchmarks/bench_event_conv.py``; one thread, process CPU time against torch's mkldnn convolution,
    forward + backward with the input gradient; the shapes of the spike-driven transformer on CIFAR10-DVS).
    Break-even densities (two runs): 3×3 ``32 → 64`` at 64×64: 0.17-0.19, ``64 → 128`` at 64×64: 0.31-0.32,
    ``128 → 256`` at 32×32: 0.33, ``256 → 256`` at 16×16: 0.39-0.40, 3×3 stride 2 ``64 → 128`` at 32×32: 0.28-0.29 — the
    rule ``0.35 - 12 / C_out`` stays below each (0.16 for 64 outputs, 0.26 for 128, 0.30 for 256; nothing below 35
    outputs, where ``2 → 32`` on event counts never paid). A 1×1 convolution is EventLinear over the pixels plus two
    layout copies: break-even ``256 → 256`` 0.40-0.46, ``256 → 1024`` 0.31-0.33, ``1024 → 256`` 0.32-0.33 (0.297 in a
    quiet-machine rerun); the rule is EventLinear's (:func:`snn.layers.event_functional.crossover_density`) capped at
    0.28. Never negative.
    """
    if tuple(kernel_size) == (1, 1):
        return min(0.28, crossover_density(out_channels))
    return max(0.0, 0.35 - 12.0 / max(1, out_channels))


@nb.njit(inline="always", nogil=True)
def _out_index(h, pad, k, dil, stride, size):  # pragma: no cover - compiled
    # the output position input position h reaches through tap k, or -1
    num = h + pad - k * dil
    if num < 0 or num % stride != 0:
        return -1
    i = num // stride
    return i if i < size else -1


@nb.njit(inline="always", nogil=True)
def _taps(h, w, geometry, h_out, w_out, k_h, k_w, taps):  # pragma: no cover - compiled
    # the (tap a, tap b, output row i, output column j) that input pixel (h, w) reaches, into taps[:count]
    count = 0
    for a in range(k_h):
        i = _out_index(h, geometry[2], a, geometry[4], geometry[0], h_out)
        if i < 0:
            continue
        for b in range(k_w):
            j = _out_index(w, geometry[3], b, geometry[5], geometry[1], w_out)
            if j >= 0:
                taps[count, 0], taps[count, 1], taps[count, 2], taps[count, 3] = a, b, i, j
                count += 1
    return count


@nb.njit(inline="always", nogil=True)
def _pixel_nonzeros(row, idx, val):  # pragma: no cover - compiled
    # the non-zeros of one pixel's channels into idx/val (branch-free store, advance past non-zeros only)
    k = 0
    for c in range(row.shape[0]):
        v = row[c]
        idx[k] = c
        val[k] = v
        k += v != 0.0
    return k


@nb.njit(parallel=True, cache=True, nogil=True)
def _conv_forward(x, w_t, bias, out, geometry, idx, val):  # pragma: no cover - compiled
    # x [N, H, W, C_in]; w_t [K_h, K_w, C_in, C_out]; out [N, H_o, W_o, C_out]; idx/val [N, C_in] scratch
    n_frames, height, width = x.shape[0], x.shape[1], x.shape[2]
    k_h, k_w, c_out = w_t.shape[0], w_t.shape[1], w_t.shape[3]
    h_out, w_out = out.shape[1], out.shape[2]
    for n in nb.prange(n_frames):
        for i in range(h_out):
            for j in range(w_out):
                o = out[n, i, j]
                for q in range(c_out):
                    o[q] = bias[q]
        ii, vv = idx[n], val[n]
        taps = np.empty((k_h * k_w, 4), dtype=np.int64)
        for h in range(height):
            for w in range(width):
                k = _pixel_nonzeros(x[n, h, w], ii, vv)
                if k == 0:
                    continue
                for t in range(_taps(h, w, geometry, h_out, w_out, k_h, k_w, taps)):
                    _add_rows(out[n, taps[t, 2], taps[t, 3]], vv, ii, w_t[taps[t, 0], taps[t, 1]], 0, k, c_out)


@nb.njit(inline="always", nogil=True)
def _scatter4(acc, vals, cols, lo, g, n):  # pragma: no cover - compiled
    # acc[cols[lo + m], :n] += vals[lo + m] · g[:n] for m = 0..3: one pass over g for four accumulator rows
    o0, o1, o2, o3 = acc[cols[lo]], acc[cols[lo + 1]], acc[cols[lo + 2]], acc[cols[lo + 3]]
    v0, v1, v2, v3 = vals[lo], vals[lo + 1], vals[lo + 2], vals[lo + 3]
    for q in range(n):
        gq = g[q]
        o0[q] += v0 * gq
        o1[q] += v1 * gq
        o2[q] += v2 * gq
        o3[q] += v3 * gq


@nb.njit(parallel=True, cache=True, nogil=True)
def _conv_weight_grad(x, g, partial, geometry, idx, val):  # pragma: no cover - compiled
    # partial[task] [K_h, K_w, C_in, C_out] accumulates the frames of task `task`; every accumulator element adds
    # its terms one at a time in ascending (frame, input pixel) order.
    n_frames, height, width = x.shape[0], x.shape[1], x.shape[2]
    n_tasks, k_h, k_w, c_out = partial.shape[0], partial.shape[1], partial.shape[2], partial.shape[4]
    h_out, w_out = g.shape[1], g.shape[2]
    for task in nb.prange(n_tasks):
        acc = partial[task]
        ii, vv = idx[task], val[task]
        taps = np.empty((k_h * k_w, 4), dtype=np.int64)
        for n in range(task * n_frames // n_tasks, (task + 1) * n_frames // n_tasks):
            for h in range(height):
                for w in range(width):
                    k = _pixel_nonzeros(x[n, h, w], ii, vv)
                    if k == 0:
                        continue
                    for t in range(_taps(h, w, geometry, h_out, w_out, k_h, k_w, taps)):
                        gr, tap = g[n, taps[t, 2], taps[t, 3]], acc[taps[t, 0], taps[t, 1]]
                        m = 0
                        while m + 4 <= k:
                            _scatter4(tap, vv, ii, m, gr, c_out)
                            m += 4
                        for m in range(m, k):
                            o, v = tap[ii[m]], vv[m]
                            for q in range(c_out):
                                o[q] += v * gr[q]


class _EventConv2d(torch.autograd.Function):
    """``F.conv2d`` (groups 1, zero padding) computed from the non-zeros of ``x`` ``[N, C_in, H, W]``."""

    @staticmethod
    def forward(ctx, x, weight, bias, stride, padding, dilation):  # type: ignore[override]
        n = x.shape[0]
        c_out, c_in, k_h, k_w = weight.shape
        h_out = (x.shape[2] + 2 * padding[0] - dilation[0] * (k_h - 1) - 1) // stride[0] + 1
        w_out = (x.shape[3] + 2 * padding[1] - dilation[1] * (k_w - 1) - 1) // stride[1] + 1
        x_cl = x.detach().permute(0, 2, 3, 1).contiguous()
        w_t = weight.detach().permute(2, 3, 1, 0).contiguous()
        b = bias.detach().contiguous() if bias is not None else x.new_zeros(c_out)
        out = x.new_empty(n, h_out, w_out, c_out)
        geometry = np.array([*stride, *padding, *dilation], dtype=np.int64)
        idx = np.empty((n, c_in), dtype=np.int32)
        val = np.empty((n, c_in), dtype=x_cl.numpy().dtype)
        _conv_forward(x_cl.numpy(), w_t.numpy(), b.numpy(), out.numpy(), geometry, idx, val)
        ctx.geometry = (stride, padding, dilation)
        ctx.x_shape = x.shape
        ctx.has_bias = bias is not None
        ctx.save_for_backward(x_cl, weight)
        return out.permute(0, 3, 1, 2).contiguous()

    @staticmethod
    @torch.autograd.function.once_differentiable
    def backward(ctx, grad_out):  # type: ignore[override]
        x_cl, weight = ctx.saved_tensors
        stride, padding, dilation = ctx.geometry
        grad_x = grad_w = grad_b = None
        if ctx.needs_input_grad[0]:
            grad_x = torch.nn.grad.conv2d_input(ctx.x_shape, weight, grad_out, stride, padding, dilation)
        if ctx.needs_input_grad[1]:
            g_cl = grad_out.permute(0, 2, 3, 1).contiguous()
            n_tasks = max(1, min(numba_threads(), x_cl.shape[0]))
            c_out, c_in, k_h, k_w = weight.shape
            partial = g_cl.new_zeros(n_tasks, k_h, k_w, c_in, c_out)
            idx = np.empty((n_tasks, c_in), dtype=np.int32)
            val = np.empty((n_tasks, c_in), dtype=x_cl.numpy().dtype)
            _conv_weight_grad(x_cl.numpy(), g_cl.numpy(), partial.numpy(),
                              np.array([*stride, *padding, *dilation], dtype=np.int64), idx, val)
            grad_w = (partial[0] if n_tasks == 1 else partial.sum(0)).permute(3, 2, 0, 1)
        if ctx.has_bias and ctx.needs_input_grad[2]:
            grad_b = grad_out.sum((0, 2, 3))
        return grad_x, grad_w, grad_b, None, None, None


def _pair(v) -> tuple[int, int] | None:
    """``v`` as two non-negative ints, or ``None`` when it is something else (a padding string)."""
    if isinstance(v, int) and not isinstance(v, bool):
        v = (v, v)
    if isinstance(v, (tuple, list)) and len(v) == 2 and all(isinstance(e, int) and e >= 0 for e in v):
        return int(v[0]), int(v[1])
    return None


def event_conv2d(x: torch.Tensor, weight: torch.Tensor, bias: torch.Tensor | None = None, stride=1, padding=0,
                 dilation=1, groups: int = 1, threshold: float | None = None) -> torch.Tensor:
    """``F.conv2d(x, weight, bias, stride, padding, dilation, groups)``, event-driven when ``x`` is sparse enough.

    ``x`` ``[N, C_in, H, W]`` (``N = T·B`` frames), ``weight`` ``[C_out, C_in, K_h, K_w]``, ``bias`` ``[C_out]`` or
    ``None`` → ``[N, C_out, H_o, W_o]`` (contiguous). ``threshold``: largest fraction of non-zeros in ``x`` that takes
    the event path (``0``: always dense; ``1``: event path whenever it can run; ``None``: :func:`conv_crossover_density`).
    ``groups ≠ 1``, padding strings (``"same"``), unbatched ``[C, H, W]`` input, CUDA and half precision take the dense
    path (see the module docstring). The event path is differentiable once (no double backward).
    """
    if threshold is None:
        threshold = conv_crossover_density(weight.shape[0], tuple(weight.shape[2:]))
    if not 0.0 <= threshold <= 1.0:
        raise ValueError(f"threshold: expected a fraction in [0, 1], got {threshold!r}")
    geometry = (_pair(stride), _pair(padding), _pair(dilation))
    if (threshold == 0.0 or groups != 1 or None in geometry or x.dim() != 4 or weight.dim() != 4
            or not event_path_supported(x, weight) or x.shape[1] != weight.shape[1]
            or min(geometry[0]) < 1 or min(geometry[2]) < 1
            or x.shape[2] + 2 * geometry[1][0] < geometry[2][0] * (weight.shape[2] - 1) + 1
            or x.shape[3] + 2 * geometry[1][1] < geometry[2][1] * (weight.shape[3] - 1) + 1
            or (bias is not None and (bias.dtype != x.dtype or bias.device.type != "cpu"
                                      or bias.shape != weight.shape[:1]))):
        return F.conv2d(x, weight, bias, stride, padding, dilation, groups)  # torch's own errors for bad shapes
    stride, padding, dilation = geometry
    if _row_pointers(x.reshape(-1, x.shape[-1]))[-1] > threshold * x.numel():  # the count, in any layout
        return F.conv2d(x, weight, bias, stride, padding, dilation, groups)
    if weight.shape[2:] == (1, 1) and stride == (1, 1) and padding == (0, 0):
        rows = x.permute(0, 2, 3, 1).reshape(-1, x.shape[1])  # pixels as rows (a copy; part of the graph)
        y = _apply(rows, weight.view(weight.shape[0], -1), bias, _row_pointers(rows))
        return y.view(x.shape[0], x.shape[2], x.shape[3], -1).permute(0, 3, 1, 2).contiguous()
    return _apply_conv(x, weight, bias, stride, padding, dilation)


@torch._dynamo.disable
def _apply_conv(x, weight, bias, stride, padding, dilation):
    # Opaque to torch.compile (numba inside): the compiled graph breaks here and calls it eagerly.
    return _EventConv2d.apply(x, weight, bias, stride, padding, dilation)
