r"""The DCLS delay kernel built and differentiated in one pass per synapse element (CPU, numba).

Same equations as :func:`snn.layers.delay_functional.delay_kernel` (there in torch, a dozen elementwise passes over
``[D, C_in, C_out, K]`` in each direction; here one loop over the ``D`` taps of each element). For the element
``k`` of synapse ``(o, i)`` with weight ``w``, tap offsets ``δ_j = j - p'`` and width ``s``:

.. math::

    e_j = \exp(-\tfrac12 (δ_j / (s + 0.27))^2) \ \text{("gauss")}, \qquad
    e_j = \operatorname{relu}(s + 1 - |δ_j|) \ \text{("max")}, \qquad
    S = \textstyle\sum_j e_j + 10^{-7}, \qquad K_j[i, o] \mathrel{+}= w \, e_j / S

Backward, from the profile ``e`` saved by the forward (``[C_in, C_out, K, D]``, the kernel's size), with
``e'_j = ∂e_j/∂p`` (``e_j δ_j / (s + 0.27)^2`` or ``sign(δ_j) [e_j > 0]``):
``∂L/∂w = Σ_j g_j e_j / S`` and ``∂L/∂p = (w / S)(Σ_j g_j e'_j - (Σ_j g_j e_j / S) Σ_j e'_j)``.
Profile values and kernel taps whose magnitude is below the dtype's smallest normal number are written as zero (see
``_flush_subnormal`` in :mod:`snn.layers.delay_functional`; they change no normal float of the result).
"""
from __future__ import annotations

import math

import numba as nb
import numpy as np

__all__ = ["kernel_forward", "kernel_backward"]

_GAUSS = 0  # the ``version`` argument: the index in snn.layers.delay_functional.VERSIONS ("gauss", "max")


@nb.njit(inline="always", nogil=True)
def _gauss_profile(p, width, e):  # pragma: no cover - compiled
    # e_j = exp(-(j - p)^2 / (2 w^2)) by the ratio recurrence e_{j±1} = e_j r_j, r_{j±1} = r_j q (q = exp(-1/w^2)),
    # started at the tap nearest p so that values only shrink away from it (an underflowed start would zero the
    # whole row): four exp calls instead of one per tap, float64 throughout (≈ D ulp of float64 from the direct
    # formula, far below a float32 kernel's rounding).
    d = e.shape[0]
    a = 0.5 / (width * width)
    q = math.exp(-2.0 * a)
    j0 = min(max(int(math.floor(p + 0.5)), 0), d - 1)
    delta = j0 - p
    e0 = math.exp(-a * delta * delta)
    e[j0] = e0
    v = e0
    r = math.exp(-a * (2.0 * delta + 1.0))  # e_{j0+1} / e_{j0}
    for j in range(j0 + 1, d):
        v *= r
        r *= q
        e[j] = v
    v = e0
    r = math.exp(a * (2.0 * delta - 1.0))  # e_{j0-1} / e_{j0}
    for j in range(j0 - 1, -1, -1):
        v *= r
        r *= q
        e[j] = v


@nb.njit(parallel=True, cache=True, nogil=True)
def kernel_forward(weight, positions, sig, offset, version, eps, tiny, kernel, profile):  # pragma: no cover
    """Fill ``kernel`` ``[D, C_in, C_out]`` and ``profile`` ``[C_in, C_out, K, D]`` from the ``[C_out, C_in, K]``
    parameters.

    ``eps`` and ``tiny`` are scalars of the kernel's dtype; ``version`` is 0 (gauss) or 1 (max).
    """
    c_out, c_in, n_k = weight.shape
    d = kernel.shape[0]
    width = sig + offset
    half = d // 2
    for i in nb.prange(c_in):
        block = np.zeros((c_out, d), dtype=kernel.dtype)  # input i's taps, written out tap-major at the end
        e64 = np.empty(d)
        for o in range(c_out):
            for k in range(n_k):
                p = positions[o, i, k] + half
                e = profile[i, o, k]
                if version == _GAUSS:
                    _gauss_profile(p, width, e64)
                    for j in range(d):  # below the smallest normal: zero (subnormal sums run in microcode)
                        e[j] = e64[j] if e64[j] >= tiny else 0.0
                else:
                    for j in range(d):
                        e[j] = max(width - abs(j - p), 0.0)
                total = eps - eps  # the kernel's dtype: S and e / S * w round as the torch path's do
                for j in range(d):
                    total += e[j]
                total += eps
                w = weight[o, i, k]
                row = block[o]
                for j in range(d):
                    row[j] += e[j] / total * w
        for j in range(d):
            for o in range(c_out):
                v = block[o, j]
                kernel[j, i, o] = v if abs(v) >= tiny else 0.0


@nb.njit(parallel=True, cache=True, nogil=True)
def kernel_backward(grad, weight, positions, sig, offset, version, eps, profile, grad_w, grad_p):  # pragma: no cover
    """``grad_w``, ``grad_p`` ``[C_out, C_in, K]`` from the kernel gradient ``grad`` ``[D, C_in, C_out]``."""
    c_out, c_in, n_k = weight.shape
    d = grad.shape[0]
    width = sig + offset
    half = d // 2
    for i in nb.prange(c_in):
        for o in range(c_out):
            for k in range(n_k):
                p = positions[o, i, k] + half
                e = profile[i, o, k]
                total = 0.0
                g_dot_e = 0.0
                g_dot_de = 0.0
                de_sum = 0.0
                for j in range(d):
                    delta = j - p
                    if version == _GAUSS:
                        de = e[j] * delta / (width * width)
                    else:
                        de = np.sign(delta) if width - abs(delta) > 0 else 0.0
                    total += e[j]
                    g_dot_e += grad[j, i, o] * e[j]
                    g_dot_de += grad[j, i, o] * de
                    de_sum += de
                total += eps
                g_dot_n = g_dot_e / total
                grad_w[o, i, k] = g_dot_n
                grad_p[o, i, k] = weight[o, i, k] / total * (g_dot_de - g_dot_n * de_sum)
