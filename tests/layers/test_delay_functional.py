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


# The input gradient is not part of the bit-for-bit contract: it has two routes (per-tap GEMMs, or the correlation
# along time done frequency by frequency) that agree with a float64 loop to float rounding.


def _input_grad_oracle(g: np.ndarray, kernel: np.ndarray, t_in: int) -> np.ndarray:
    """``∂L/∂x[t, b, i] = Σ_j Σ_o K[j, i, o] g[t + D-1-j, b, o]`` term by term in float64."""
    d = kernel.shape[0]
    t_out, batch, _ = g.shape
    gx = np.zeros((t_in, batch, kernel.shape[1]))
    for t in range(t_in):
        for j in range(d):
            s = t + d - 1 - j
            if s < t_out:
                gx[t] += g[s].astype(np.float64) @ kernel[j].T.astype(np.float64)
    return gx


@pytest.mark.parametrize("dtype", [torch.float32, torch.float64])
@pytest.mark.parametrize(
    "t_in,batch,c_in,c_out,d,right_pad",
    [
        (23, 5, 6, 7, 7, 3),  # right_pad < D - 1: the spectral length is T + D - 1
        (30, 2, 4, 9, 5, 4),  # right_pad = D - 1 (the layer's default)
        (12, 3, 5, 2, 4, 9),  # right_pad > D - 1: the output gradient is longer than any lag reaches
        (9, 2, 3, 3, 1, 0),  # one tap
        (3, 2, 3, 4, 8, 7),  # fewer steps than taps
        (64, 4, 16, 16, 25, 24),  # the main job's kernel length
    ],
)
def test_both_input_gradient_routes_equal_the_tap_by_tap_loop(dtype, t_in, batch, c_in, c_out, d, right_pad):
    gen = torch.Generator().manual_seed(t_in + d)
    g = torch.randn(t_in + right_pad, batch, c_out, generator=gen, dtype=dtype)
    kernel = torch.randn(d, c_in, c_out, generator=gen, dtype=dtype)
    expected = _input_grad_oracle(g.numpy(), kernel.numpy(), t_in)
    scale = np.abs(expected).max()
    tol = 1e-5 if dtype == torch.float32 else 1e-12  # of the gradient's largest entry (a DFT's error is norm-wise)
    for route in (DF._direct_grad_input, DF._spectral_grad_input):
        got = route(g, kernel, t_in)
        assert got.shape == (t_in, batch, c_in) and got.dtype == dtype
        np.testing.assert_allclose(got.numpy(), expected, rtol=0, atol=tol * scale, err_msg=route.__name__)


def test_the_backward_takes_the_spectral_route_only_where_it_needs_far_fewer_operations(monkeypatch):
    taken = []
    for name in ("_direct_grad_input", "_spectral_grad_input"):
        real = getattr(DF, name)
        monkeypatch.setattr(DF, name, lambda *a, _real=real, _name=name: taken.append(_name) or _real(*a))
    gen = torch.Generator().manual_seed(0)
    # Main-job layer (T = 124, B = 32, 128 -> 128, D = 25): direct 25·124·32·128² multiply-adds, spectral 24 %.
    # A short kernel (D = 3) over the same sizes: spectral 139 % of direct.
    for d, expected in ((25, "_spectral_grad_input"), (3, "_direct_grad_input")):
        x = (torch.rand(124, 32, 128, generator=gen) < 0.1).float().requires_grad_(True)
        kernel = (0.1 * torch.randn(d, 128, 128, generator=gen)).requires_grad_(True)
        y = DF.delay_conv_sparse_input(x, kernel, d - 1)
        g = torch.randn(y.shape, generator=gen)
        y.backward(g)
        assert taken[-1] == expected
        x_ref = x.detach().clone().requires_grad_(True)
        DF.delay_conv_dense(x_ref, kernel.detach(), d - 1).backward(g)
        scale = x_ref.grad.abs().max()
        torch.testing.assert_close(x.grad, x_ref.grad, rtol=0, atol=1e-5 * scale)


def test_second_derivatives_of_the_numba_paths_raise_a_clear_error():
    # The fused kernel construction and the sparse convolution differentiate once (numba); asking for a second
    # derivative must say so, not fail inside numpy() or return a silently wrong graph.
    w = torch.randn(4, 3, 1, requires_grad=True)
    p = torch.zeros(4, 3, 1, requires_grad=True)
    (gw,) = torch.autograd.grad(DF.delay_kernel(w, p, 1.0, 5, "gauss").square().sum(), w, create_graph=True)
    with pytest.raises(RuntimeError, match="once_differentiable"):
        gw.sum().backward()
    x = (torch.rand(6, 2, 3, generator=torch.Generator().manual_seed(1)) < 0.3).float()
    kernel = torch.randn(5, 3, 4, requires_grad=True)
    (gk,) = torch.autograd.grad(DF.delay_conv_sparse_input(x, kernel, 2).square().sum(), kernel, create_graph=True)
    with pytest.raises(RuntimeError, match="once_differentiable"):
        gk.sum().backward()
