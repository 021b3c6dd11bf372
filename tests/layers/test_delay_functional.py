"""The sparse delay kernels (snn.layers.delay_functional) add their terms in the spike-by-spike order, bit for bit.

The delay network's seeded training runs must not change when the kernels get faster: the oracle is a plain numpy
loop that scatters one spike at a time (inputs ascending, then batch elements, then spike times) in the layer's
dtype, the order the kernels have always used. Every result must be *equal*, not merely close.
"""
from __future__ import annotations

import numba
import numpy as np
import pytest
import torch

from snn.layers import delay_functional as DF


def _by_delay(kernel: np.ndarray) -> np.ndarray:
    """Tap-major ``[D, C_in, C_out]`` → per input the delay-major rows ``[C_in, D, C_out]``."""
    return np.ascontiguousarray(kernel[::-1].transpose(1, 0, 2))


def _scatter_oracle(x: np.ndarray, kernel: np.ndarray, right_pad: int) -> np.ndarray:
    t_in, batch, c_in = x.shape
    d, _, c_out = kernel.shape
    k = _by_delay(kernel)
    out = np.zeros((t_in + right_pad, batch, c_out), dtype=x.dtype)
    for i in range(c_in):
        for b in range(batch):
            for t in np.flatnonzero(x[:, b, i]):
                n = min(d, out.shape[0] - t)
                out[t : t + n, b] += x[t, b, i] * k[i, :n]
    return out


def _kernel_grad_oracle(x: np.ndarray, g: np.ndarray, d: int) -> np.ndarray:
    t_in, batch, c_in = x.shape
    c_out = g.shape[2]
    acc = np.zeros((c_in, d, c_out), dtype=x.dtype)
    for b in range(batch):
        for i in range(c_in):
            for t in np.flatnonzero(x[:, b, i]):
                n = min(d, g.shape[0] - t)
                acc[i, :n] += x[t, b, i] * g[t : t + n, b]
    return np.ascontiguousarray(acc[:, ::-1].transpose(1, 0, 2))  # back to tap-major [D, C_in, C_out]


@pytest.mark.parametrize("dtype", [torch.float32, torch.float64])
@pytest.mark.parametrize("density", [0.0, 0.08, 0.35, 1.0])
@pytest.mark.parametrize("c_out", [3, 70])  # short rows (per-spike passes) and the row sweep
def test_sparse_forward_and_kernel_gradient_equal_the_spike_by_spike_loop_exactly(dtype, density, c_out):
    # D = 7, right_pad = 3: spikes near the end reach past the output (truncated segments); dense bursts put up to
    # seven spikes within one kernel's reach (the four-at-a-time passes and their remainders).
    gen = torch.Generator().manual_seed(5)
    t_in, batch, c_in, d, right_pad = 23, 5, 6, 7, 3
    x = (torch.rand(t_in, batch, c_in, generator=gen) < density).to(dtype) * (1 / 0.6)
    x[torch.rand(t_in, batch, c_in, generator=gen) < 0.1] *= 3.0  # some integer counts as well
    kernel = torch.randn(d, c_in, c_out, generator=gen, dtype=dtype, requires_grad=True)
    g = torch.randn(t_in + right_pad, batch, c_out, generator=gen, dtype=dtype)
    before = numba.get_num_threads()
    numba.set_num_threads(1)  # one kernel-gradient partial: no cross-thread sum
    try:
        y = DF.delay_conv_sparse_input(x, kernel, right_pad)
        y.backward(g)
    finally:
        numba.set_num_threads(before)
    assert np.array_equal(y.detach().numpy(), _scatter_oracle(x.numpy(), kernel.detach().numpy(), right_pad))
    assert np.array_equal(kernel.grad.numpy(), _kernel_grad_oracle(x.numpy(), g.numpy(), d))
