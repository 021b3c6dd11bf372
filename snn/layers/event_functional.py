r"""Event-driven linear map: the pure function behind :class:`snn.layers.EventLinear`.

For an input ``x`` ``[..., C_in]`` flattened to rows ``x_r`` (``r`` runs over every leading index, e.g. the
``T·B`` steps and samples of a time-major tensor), weight ``W`` ``[C_out, C_in]`` and bias ``b``:

.. math::

    y_r = b + \sum_{i:\, x_{ri} \ne 0} x_{ri}\, W_{:, i}, \qquad
    \frac{\partial L}{\partial W_{:, i}} = \sum_{r:\, x_{ri} \ne 0} x_{ri}\, g_r, \qquad
    \frac{\partial L}{\partial x_r} = W^\top g_r, \qquad
    \frac{\partial L}{\partial b} = \sum_r g_r

with ``g_r = ∂L/∂y_r``. These are the products of ``F.linear`` with the zero terms left out, so the result is the
dense layer's up to the order of the floating-point sums; any values are exact (spikes, dropout-scaled spikes
``1/(1-p)``, integer spike counts), not only binary ones. When ``x`` holds ``nnz`` non-zeros the forward and the
weight gradient cost ``O(nnz · C_out)`` instead of ``O(rows · C_in · C_out)``; the input gradient stays one dense
GEMM (the previous layer needs all of it), and is skipped when ``x`` does not require a gradient (data).

When to take which path (:func:`event_linear`): the event kernels run on CPU float32/float64 tensors whose
fraction of non-zeros is at most ``threshold``; everything else (CUDA, half precision, dense inputs, a dtype
mismatch) goes to ``F.linear`` unchanged. Counting the non-zeros is one pass over ``x``, the only price the dense
fallback pays. The default threshold is the measured crossover of the two paths (:func:`crossover_density`).

Kernels (numba, one CSR per call): a counting pass gives each row's number of non-zeros; the forward then walks
each row, records its non-zeros (column, value) and adds ``x_{ri} W^T_{i,:}`` into the output row — rows are
independent, so threads split the rows. The weight gradient walks the same CSR in row blocks, one block and one
``[C_in, C_out]`` accumulator per thread, then sums the accumulators. ``W^T`` rows (``C_out`` contiguous values)
are what a spike adds, so both kernels run on ``W^T``. The CSR (``4 + itemsize`` bytes per non-zero) is what the
backward keeps instead of ``x``.
"""
from __future__ import annotations

import numba as nb
import numpy as np
import torch
import torch.nn.functional as F

from snn.kernels.cpu_threads import numba_threads, start_numba_pool

__all__ = ["check_threshold", "crossover_density", "event_linear", "event_path_supported", "nonzero_fraction"]


def check_threshold(threshold: float | None) -> float | None:
    """An event layer's ``threshold`` argument: ``None`` or a fraction in ``[0, 1]`` (as a float)."""
    if threshold is not None and not (isinstance(threshold, (int, float)) and 0.0 <= threshold <= 1.0):
        raise ValueError(f"threshold: expected None or a fraction in [0, 1], got {threshold!r}")
    return None if threshold is None else float(threshold)


def crossover_density(out_features: int) -> float:
    """Default threshold: the density below which the event path's forward + backward beats the dense one.

    Fitted to measurements (``benchmarks/bench_e2e.py --crossover``; 12 800 rows, one thread, process CPU time;
    the event kernels add four non-zeros per pass): the event path pays a scan of ``x`` plus ``nnz · C_out`` axpy
    work at about 2.4× the cost of a GEMM multiply-add. Measured break-even densities: ``700 → 256``: 0.39,
    ``256 → 256``: 0.42, ``256 → 64``: 0.25-0.3, ``256 → 20``: 0.07. The rule ``0.37 - 6 / C_out`` stays below
    each of them (0.35 for 256 outputs, 0.07 for 20), so the event path is never the slower one. Never negative.
    """
    return max(0.0, 0.37 - 6.0 / max(1, out_features))


@nb.njit(parallel=True, cache=True, nogil=True)
def _row_nonzeros(x, counts):  # pragma: no cover - compiled
    rows, cols = x.shape
    for r in nb.prange(rows):
        row = x[r]
        n = 0
        for i in range(cols):
            if row[i] != 0.0:
                n += 1
        counts[r] = n


# o[:n] += v0 w0 + v1 w1 + ..., added term by term in this order: the same float result as separate axpys (no
# reassociation, no fma contraction), with one load and store of `o` per element. The kernels here and in
# snn.layers.delay_functional add their terms through these, several per pass over an accumulator row.
@nb.njit(inline="always", nogil=True)
def _axpy1(o, v0, w0, n):  # pragma: no cover - compiled
    for q in range(n):
        o[q] += v0 * w0[q]


@nb.njit(inline="always", nogil=True)
def _axpy2(o, v0, w0, v1, w1, n):  # pragma: no cover - compiled
    for q in range(n):
        o[q] = (o[q] + v0 * w0[q]) + v1 * w1[q]


@nb.njit(inline="always", nogil=True)
def _axpy3(o, v0, w0, v1, w1, v2, w2, n):  # pragma: no cover - compiled
    for q in range(n):
        o[q] = ((o[q] + v0 * w0[q]) + v1 * w1[q]) + v2 * w2[q]


@nb.njit(inline="always", nogil=True)
def _axpy4(o, v0, w0, v1, w1, v2, w2, v3, w3, n):  # pragma: no cover - compiled
    for q in range(n):
        o[q] = (((o[q] + v0 * w0[q]) + v1 * w1[q]) + v2 * w2[q]) + v3 * w3[q]


@nb.njit(inline="always", nogil=True)
def _add_rows(o, vals, rows, mat, lo, hi, n):  # pragma: no cover - compiled
    # o[:n] += Σ_{k = lo … hi-1} vals[k] · mat[rows[k], :n], in this order, four rows per pass over `o`
    k = lo
    while k + 4 <= hi:
        _axpy4(o, vals[k], mat[rows[k]], vals[k + 1], mat[rows[k + 1]], vals[k + 2], mat[rows[k + 2]],
               vals[k + 3], mat[rows[k + 3]], n)
        k += 4
    for k in range(k, hi):
        _axpy1(o, vals[k], mat[rows[k]], n)


_L2_BLOCK_BYTES = 128 << 10  # gradient rows of one weight-gradient block (a quarter of a small L2)
_BLOCK = 16  # inputs tested at once for "any non-zero" by the scan (OR of the bit patterns, vectorised)


@nb.njit(parallel=True, cache=True, nogil=True)
def _gather_forward(x, bits, start, w_t, bias, out, idx, val, end):  # pragma: no cover - compiled
    # Row r's non-zeros go to idx/val[start[r] : end[r]]; start leaves one slot of slack after each row, so the
    # scan can store every candidate unconditionally (branch-free) and advance only past non-zeros.
    rows, cols = x.shape
    c_out = w_t.shape[1]
    mask = bits.dtype.type(-1) >> 1  # all bits but the sign: -0.0 counts as zero, as in `v != 0`
    n_blocks = cols // _BLOCK
    for r in nb.prange(rows):
        row = x[r]
        rb = bits[r]
        k = start[r]
        for blk in range(n_blocks):
            i0 = blk * _BLOCK
            any_set = bits.dtype.type(0)
            for j in range(_BLOCK):
                any_set |= rb[i0 + j] & mask
            if any_set != 0:
                for j in range(_BLOCK):
                    v = row[i0 + j]
                    idx[k] = i0 + j
                    val[k] = v
                    k += v != 0.0
        for i in range(n_blocks * _BLOCK, cols):
            v = row[i]
            idx[k] = i
            val[k] = v
            k += v != 0.0
        end[r] = k
        o = out[r]
        for q in range(c_out):
            o[q] = bias[q]
        _add_rows(o, val, idx, w_t, start[r], k, c_out)


@nb.njit(parallel=True, cache=True, nogil=True)
def _scatter_weight_grad(start, end, idx, val, g, partial, block_rows):  # pragma: no cover - compiled
    # partial[task] accumulates the rows of task `task` (no two threads write one accumulator). The rows go by
    # blocks of `block_rows` (their gradient rows stay in L2): a block's non-zeros are sorted by input column
    # (rows ascending within a column), then each column's accumulator row takes them four at a time. Every
    # accumulator element still adds its terms one by one in ascending row order.
    rows, c_out = g.shape
    n_tasks, c_in = partial.shape[0], partial.shape[1]
    for task in nb.prange(n_tasks):
        acc = partial[task]
        r_end = (task + 1) * rows // n_tasks
        col_start = np.empty(c_in + 1, dtype=np.int64)
        fill = np.empty(c_in, dtype=np.int64)
        r0 = task * rows // n_tasks
        cap = 0
        for b0 in range(r0, r_end, block_rows):
            n = 0
            for r in range(b0, min(r_end, b0 + block_rows)):
                n += end[r] - start[r]
            cap = max(cap, n)
        by_row = np.empty(cap, dtype=np.int64)
        by_val = np.empty(cap, dtype=val.dtype)
        while r0 < r_end:
            r1 = min(r_end, r0 + block_rows)
            col_start[:] = 0
            for r in range(r0, r1):
                for k in range(start[r], end[r]):
                    col_start[idx[k] + 1] += 1
            for i in range(c_in):
                col_start[i + 1] += col_start[i]
                fill[i] = col_start[i]
            for r in range(r0, r1):
                for k in range(start[r], end[r]):
                    i = idx[k]
                    by_row[fill[i]] = r
                    by_val[fill[i]] = val[k]
                    fill[i] += 1
            for i in range(c_in):
                _add_rows(acc[i], by_val, by_row, g, col_start[i], col_start[i + 1], c_out)
            r0 = r1


def event_path_supported(x: torch.Tensor, weight: torch.Tensor) -> bool:
    """Whether the event kernels can run: CPU, float32/float64, ``x`` and ``weight`` of one dtype, non-empty."""
    return (x.device.type == "cpu" and weight.device.type == "cpu" and x.dtype in (torch.float32, torch.float64)
            and weight.dtype == x.dtype and x.numel() > 0 and weight.numel() > 0)


def _rows(x: torch.Tensor) -> torch.Tensor:
    """``x`` as contiguous rows ``[R, C_in]`` (a view when ``x`` is contiguous; still part of the graph)."""
    return x.reshape(-1, x.shape[-1]).contiguous()


@torch._dynamo.disable
def _row_pointers(x2d: torch.Tensor) -> np.ndarray:
    """CSR row pointers ``[R + 1]`` of the non-zeros of ``x2d``."""
    counts = np.empty(x2d.shape[0], dtype=np.int64)
    start_numba_pool()
    _row_nonzeros(x2d.detach().numpy(), counts)
    ptr = np.zeros(x2d.shape[0] + 1, dtype=np.int64)
    np.cumsum(counts, out=ptr[1:])
    return ptr


def nonzero_fraction(x: torch.Tensor) -> float:
    """Fraction of non-zero entries of a CPU float32/float64 tensor (one parallel pass)."""
    x2d = _rows(x)
    return float(_row_pointers(x2d)[-1]) / max(1, x2d.numel())


class _EventLinear(torch.autograd.Function):
    """``F.linear`` computed from the non-zeros of ``x`` (rows ``x2d`` ``[R, C_in]``, row pointers ``ptr``)."""

    @staticmethod
    def forward(ctx, x2d, weight, bias, ptr):  # type: ignore[override]
        rows = x2d.shape[0]
        w_t = weight.detach().t().contiguous()  # [C_in, C_out]: the row a spike at input i adds
        c_out = w_t.shape[1]
        b = bias.detach().contiguous() if bias is not None else x2d.new_zeros(c_out)
        out = x2d.new_empty(rows, c_out)
        x_np = x2d.detach().numpy()
        start = ptr[:-1] + np.arange(rows, dtype=np.int64)  # one slot of slack per row (see _gather_forward)
        end = np.empty(rows, dtype=np.int64)
        idx = np.empty(int(ptr[-1]) + rows, dtype=np.int32)
        val = np.empty(idx.shape[0], dtype=x_np.dtype)
        bits = x_np.view(np.uint32 if x_np.dtype == np.float32 else np.uint64)
        _gather_forward(x_np, bits, start, w_t.numpy(), b.numpy(), out.numpy(), idx, val, end)
        ctx.csr = (start, end, idx, val)
        ctx.has_bias = bias is not None
        ctx.save_for_backward(weight)
        return out

    @staticmethod
    @torch.autograd.function.once_differentiable
    def backward(ctx, grad_out):  # type: ignore[override]
        (weight,) = ctx.saved_tensors
        g = grad_out.contiguous()
        grad_x = grad_w = grad_b = None
        if ctx.needs_input_grad[0]:
            grad_x = g.mm(weight)
        if ctx.needs_input_grad[1]:
            n_tasks = max(1, min(numba_threads(), g.shape[0]))
            partial = g.new_zeros(n_tasks, weight.shape[1], weight.shape[0])
            block_rows = max(16, _L2_BLOCK_BYTES // (g.shape[1] * g.element_size()))
            _scatter_weight_grad(*ctx.csr, g.numpy(), partial.numpy(), block_rows)
            grad_w = (partial[0] if n_tasks == 1 else partial.sum(0)).t()
        if ctx.has_bias and ctx.needs_input_grad[2]:
            grad_b = g.sum(0)
        ctx.csr = None
        return grad_x, grad_w, grad_b, None


def event_linear(x: torch.Tensor, weight: torch.Tensor, bias: torch.Tensor | None = None,
                 threshold: float | None = None) -> torch.Tensor:
    """``F.linear(x, weight, bias)``, event-driven when ``x`` is sparse enough (see the module docstring).

    ``x`` ``[..., C_in]`` (time-major ``[T, B, C_in]`` for layers in a network), ``weight`` ``[C_out, C_in]``,
    ``bias`` ``[C_out]`` or ``None`` → ``[..., C_out]``. ``threshold``: largest fraction of non-zeros in ``x`` that
    takes the event path (``0`` forces the dense path; ``1`` takes the event path whenever it can run; ``None``:
    :func:`crossover_density` of ``C_out``). The event path is differentiable once (no double backward); the dense
    path is ``F.linear`` itself.
    """
    if threshold is None:
        threshold = crossover_density(weight.shape[0])
    if not 0.0 <= threshold <= 1.0:
        raise ValueError(f"threshold: expected a fraction in [0, 1], got {threshold!r}")
    if (threshold == 0.0 or not event_path_supported(x, weight) or x.shape[-1] != weight.shape[1]
            or (bias is not None and (bias.dtype != x.dtype or bias.device.type != "cpu"
                                      or bias.shape != weight.shape[:1]))):
        return F.linear(x, weight, bias)  # also raises torch's own error for mismatched shapes
    x2d = _rows(x)
    ptr = _row_pointers(x2d)
    if ptr[-1] > threshold * x2d.numel():
        return F.linear(x, weight, bias)
    return _apply(x2d, weight, bias, ptr).view(*x.shape[:-1], weight.shape[0])


@torch._dynamo.disable
def _apply(x2d, weight, bias, ptr):
    # Opaque to torch.compile (numba inside): the compiled graph breaks here and calls it eagerly.
    return _EventLinear.apply(x2d, weight, bias, ptr)
