"""Tests for snn.layers.delay (LearnableDelay, DCLS learnable delays)."""
from __future__ import annotations

import math

import pytest
import torch
import torch.nn.functional as F

from snn.layers import DelayedLinear, LearnableDelay
from snn.layers import delay_functional as DF


def _spikes(t: int, b: int, c: int, p: float, dtype=torch.float64, seed: int = 0) -> torch.Tensor:
    g = torch.Generator().manual_seed(seed)
    return (torch.rand(t, b, c, generator=g) < p).to(dtype)


def _layer(c_in=6, c_out=5, d=9, k=1, dtype=torch.float64, seed=0, **kw) -> LearnableDelay:
    torch.manual_seed(seed)
    return LearnableDelay(c_in, c_out, d, kernel_count=k, dtype=dtype, **kw)


def _dcls_like(layer: LearnableDelay):
    dcls = pytest.importorskip("DCLS.construct.modules")
    ref = dcls.Dcls1d(
        layer.in_features, layer.out_features, kernel_count=layer.kernel_count,
        dilated_kernel_size=layer.max_delay, bias=False, version=layer.version,
    ).to(layer.weight.dtype)
    with torch.no_grad():
        ref.weight.copy_(layer.weight)
        ref.P.copy_(layer.positions.unsqueeze(0))
        ref.SIG.fill_(float(layer.sigma))
    ref.SIG.requires_grad_(False)
    return ref


def _ref_forward(ref, x: torch.Tensor, d: int, right_pad: int) -> torch.Tensor:
    xb = F.pad(x.permute(1, 2, 0), (d - 1, right_pad))
    return ref(xb).permute(2, 0, 1)


# ---------------------------------------------------------------- parity with dcls.Dcls1d
@pytest.mark.peers
@pytest.mark.parametrize("version,sigma", [("gauss", 4.0), ("gauss", 0.23), ("gauss", 0.0), ("max", 2.5),
                                           ("max", 0.4), ("max", 0.0)])
@pytest.mark.parametrize("k", [1, 2])
@pytest.mark.parametrize("train_path", ["sparse", "dense"])
def test_outputs_and_gradients_equal_dcls1d(version, sigma, k, train_path):
    layer = _layer(d=9, k=k, version=version, sigma=sigma, train_path=train_path)
    with torch.no_grad():  # off-grid positions, some at the clamp limits
        layer.positions.uniform_(-4.0, 4.0)
        layer.positions[0, 0, 0] = 4.0
        layer.positions[1, 0, 0] = -4.0
    ref = _dcls_like(layer)
    x = _spikes(17, 3, 6, 0.3) * 1.7  # dropout-scaled spikes: non-binary non-zeros
    x1 = x.clone().requires_grad_(True)
    x2 = x.clone().requires_grad_(True)
    y = layer(x1)
    yr = _ref_forward(ref, x2, 9, layer.right_pad)
    assert y.shape == yr.shape == (17 + 4, 3, 5)
    torch.testing.assert_close(y, yr, rtol=1e-12, atol=1e-12)
    g = torch.randn_like(y)
    (y * g).sum().backward()
    (yr * g).sum().backward()
    torch.testing.assert_close(layer.weight.grad, ref.weight.grad, rtol=1e-10, atol=1e-12)
    torch.testing.assert_close(layer.positions.grad, ref.P.grad[0], rtol=1e-10, atol=1e-12)
    torch.testing.assert_close(x1.grad, x2.grad, rtol=1e-10, atol=1e-12)


@pytest.mark.peers
def test_float32_parity_at_shd_like_shape():
    layer = _layer(c_in=40, c_out=32, d=25, dtype=torch.float32, sigma=12.0, train_path="sparse")
    ref = _dcls_like(layer)
    x = _spikes(50, 4, 40, 0.05, dtype=torch.float32)
    y = layer(x)
    yr = _ref_forward(ref, x, 25, 12)
    torch.testing.assert_close(y, yr, rtol=1e-5, atol=1e-5)
    y.square().sum().backward()
    yr.square().sum().backward()
    torch.testing.assert_close(layer.weight.grad, ref.weight.grad, rtol=1e-4, atol=1e-4)
    torch.testing.assert_close(layer.positions.grad, ref.P.grad[0], rtol=1e-4, atol=1e-4)


@pytest.mark.peers
def test_default_weight_init_bounds_match_reference_choices():
    layer = _layer(c_in=100, c_out=64, d=25, dtype=torch.float32)
    bound_relu = math.sqrt(6.0 / 100)
    assert layer.weight.abs().max() <= bound_relu
    assert layer.weight.abs().max() > 0.9 * bound_relu
    dcls_init = _layer(c_in=100, c_out=64, d=25, dtype=torch.float32, weight_init="kaiming_uniform")
    ref = _dcls_like(dcls_init)
    ref.reset_parameters()
    bound_dcls = 1.0 / math.sqrt(100)
    assert dcls_init.weight.abs().max() <= bound_dcls < bound_relu
    assert ref.weight.abs().max() <= bound_dcls
    assert dcls_init.weight.abs().max() > 0.9 * bound_dcls


# ---------------------------------------------------------------- training paths agree
def test_sparse_and_dense_training_paths_agree_float32():
    torch.manual_seed(1)
    layer = _layer(c_in=20, c_out=16, d=13, k=2, dtype=torch.float32, sigma=3.0)
    x = _spikes(30, 5, 20, 0.1, dtype=torch.float32) / 0.6
    grads = []
    for path in ("sparse", "dense"):
        layer.zero_grad()
        layer.train_path = path
        xi = x.clone().requires_grad_(True)
        y = layer(xi)
        (y * torch.linspace(-1, 1, y.numel()).view_as(y)).sum().backward()
        grads.append((y.detach(), layer.weight.grad.clone(), layer.positions.grad.clone(), xi.grad))
    for a, b in zip(*grads):
        torch.testing.assert_close(a, b, rtol=1e-5, atol=1e-5)


def test_auto_path_chooses_sparse_only_for_sparse_inputs(monkeypatch):
    layer = _layer(dtype=torch.float32, train_path="auto", sparse_density=0.2)
    calls = []
    real = DF.delay_conv_sparse_input
    monkeypatch.setattr(DF, "delay_conv_sparse_input", lambda *a: calls.append(1) or real(*a))
    layer(_spikes(10, 2, 6, 0.05, dtype=torch.float32))
    assert calls == [1]
    layer(torch.ones(10, 2, 6))
    assert calls == [1]


# ---------------------------------------------------------------- delay semantics, padding
def test_integer_delay_moves_a_spike_by_the_rounded_delay_and_keeps_late_spikes():
    d = 9
    layer = _layer(c_in=1, c_out=3, d=d, version="max", sigma=0.0)
    with torch.no_grad():
        layer.weight.fill_(1.0)
        layer.positions[:, 0, 0] = torch.tensor([4.0, 0.0, -4.0])  # delays 0, 4, 8 steps
    assert layer.rounded_delays()[:, 0, 0].tolist() == [0, 4, 8]
    t = 6
    x = torch.zeros(t, 1, 1, dtype=torch.float64)
    x[t - 1] = 1.0  # last step: needs the right padding to be seen with delay 4
    y = layer(x)
    assert y.shape[0] == t + (d - 1) // 2
    hits = [torch.nonzero(y[:, 0, o]).flatten().tolist() for o in range(3)]
    assert hits == [[t - 1], [t - 1 + 4], []]  # delay 8 lands beyond right_pad=4
    wide = _layer(c_in=1, c_out=3, d=d, version="max", sigma=0.0, right_pad=8)
    wide.load_state_dict(layer.state_dict())
    assert torch.nonzero(wide(x)[:, 0, 2]).flatten().tolist() == [t - 1 + 8]


def test_kernel_is_normalised_and_centred_on_the_position():
    layer = _layer(d=11, version="gauss", sigma=1.0)
    with torch.no_grad():
        layer.weight.fill_(2.0)
        layer.positions.fill_(1.0)
    k = layer.kernel()
    assert k.shape == (11, 6, 5)
    torch.testing.assert_close(k.sum(0), torch.full((6, 5), 2.0 / (1 + 1e-7), dtype=torch.float64))
    assert int(k[:, 0, 0].argmax()) == 11 // 2 + 1


# ---------------------------------------------------------------- integer-delay sparse inference
@pytest.mark.parametrize("k", [1, 3])
@pytest.mark.parametrize("dtype", [torch.float32, torch.float64])
def test_sparse_integer_inference_equals_dense_path(k, dtype):
    layer = _layer(c_in=24, c_out=16, d=15, k=k, dtype=dtype, sigma=5.0)
    with torch.no_grad():
        layer.positions.uniform_(-7.4, 7.4)
    layer.to_integer_delays()
    assert layer.has_integer_delays()
    layer.eval()
    x = _spikes(40, 6, 24, 0.08, dtype=dtype)
    with torch.no_grad():
        layer.inference = "dense"
        dense = layer(x)
        layer.inference = "sparse"
        sparse = layer(x)
        torch_path = DF.integer_delay_scatter(
            x, layer.weight / (torch.ones((), dtype=dtype) + DF.NORM_EPS), layer.rounded_delays(),
            layer.right_pad, backend="torch",
        )
    tol = 1e-12 if dtype == torch.float64 else 1e-5
    torch.testing.assert_close(sparse, dense, rtol=tol, atol=tol)
    torch.testing.assert_close(torch_path, dense, rtol=tol, atol=tol)
    taps = layer.nonzero_taps_per_synapse()
    assert int(taps.min()) >= 1 and int(taps.max()) <= k


def test_sparse_integer_inference_is_exact_for_single_synapse_sums():
    """One element per output: the scatter writes exactly the value the dense kernel holds."""
    layer = _layer(c_in=1, c_out=8, d=7, dtype=torch.float32, sigma=0.0, version="max")
    with torch.no_grad():
        layer.positions.copy_(torch.arange(-3, 5).clamp(max=3).view(8, 1, 1).float())
    x = torch.zeros(12, 2, 1)
    x[[0, 5, 11], [0, 1, 1]] = 1.0
    layer.inference = "sparse"
    with torch.no_grad():
        sparse = layer(x)
        layer.inference = "dense"
        dense = layer(x)
    assert torch.equal(sparse, dense)
    assert torch.count_nonzero(sparse) == 3 * 8 - 3  # delay-6 elements of the t=11 spike fall off the end


def test_sparse_inference_requires_integer_state_and_falls_back_under_autograd():
    layer = _layer(inference="sparse", sigma=1.0)
    x = _spikes(10, 2, 6, 0.2)
    with torch.no_grad(), pytest.raises(ValueError, match="to_integer_delays"):
        layer(x)
    y = layer(x)  # grad enabled: dense path, differentiable
    assert y.requires_grad
    y.sum().backward()
    assert layer.positions.grad is not None


# ---------------------------------------------------------------- helpers, configuration
def test_nonzero_taps_counts_one_per_integer_delay_and_all_for_wide_gauss():
    layer = _layer(d=9, sigma=4.0)
    assert torch.equal(layer.nonzero_taps_per_synapse(), torch.full((5, 6), 9))
    layer.to_integer_delays()
    taps = layer.nonzero_taps_per_synapse()
    assert taps.shape == (5, 6) and torch.equal(taps, torch.ones(5, 6, dtype=torch.int64))


def test_sigma_assignment_updates_the_buffer_and_state_dict():
    layer = _layer(sigma=3.0)
    layer.sigma = 0.5
    assert isinstance(layer.sigma, torch.Tensor) and float(layer.sigma) == 0.5
    layer.set_sigma(torch.tensor(0.25))
    assert float(layer.state_dict()["sigma"]) == 0.25
    assert "sigma" not in dict(layer.named_parameters())
    with pytest.raises(ValueError, match="sigma"):
        layer.sigma = -1.0


def test_clamp_positions_and_init_range():
    layer = _layer(d=25, position_init_range=(-13.0, 12.0))
    assert layer.positions.min() >= -12 and layer.positions.max() <= 12
    with torch.no_grad():
        layer.positions.mul_(10)
    layer.clamp_positions()
    assert layer.positions.abs().max() == 12
    normal = _layer(d=25, position_init="normal")
    assert normal.positions.abs().max() < 4


def test_rounded_delays_maps_positions_to_steps():
    layer = _layer(d=9)
    with torch.no_grad():
        layer.positions.fill_(-3.6)
    assert torch.equal(layer.rounded_delays(), torch.full((5, 6, 1), 8, dtype=torch.int64))
    with torch.no_grad():
        layer.positions.fill_(2.2)
    assert torch.equal(layer.rounded_delays(), torch.full((5, 6, 1), 2, dtype=torch.int64))


def test_bias_is_added_to_every_output_step():
    layer = _layer(bias=True)
    x = torch.zeros(5, 2, 6, dtype=torch.float64)
    y = layer(x)
    torch.testing.assert_close(y, layer.bias.detach().expand_as(y))


def test_extra_repr_and_alias():
    layer = _layer(d=9, k=2, version="max", sigma=0.0, right_pad=3)
    r = repr(layer)
    assert "6, 5, max_delay=9" in r and "kernel_count=2" in r and "version='max'" in r and "right_pad=3" in r
    assert DelayedLinear is LearnableDelay


@pytest.mark.parametrize(
    "x,exc,match",
    [
        (torch.zeros(5, 6), ValueError, "rank 3"),
        (torch.zeros(5, 2, 7, dtype=torch.float64), ValueError, "C_in=6"),
        (torch.zeros(5, 2, 6, dtype=torch.int64), TypeError, "floating-point"),
        (torch.zeros(5, 2, 6, dtype=torch.float32), TypeError, "dtype"),
    ],
)
def test_forward_rejects_bad_inputs(x, exc, match):
    with pytest.raises(exc, match=match):
        _layer()(x)


@pytest.mark.parametrize(
    "kw,match",
    [
        ({"version": "v1"}, "version"),
        ({"max_delay": 0}, "max_delay"),
        ({"right_pad": -1}, "right_pad"),
        ({"train_path": "fast"}, "train_path"),
        ({"inference": "jit"}, "inference"),
        ({"weight_init": "xavier"}, "weight_init"),
    ],
)
def test_constructor_rejects_bad_arguments(kw, match):
    args = {"in_features": 4, "out_features": 3, "max_delay": 5}
    args.update(kw)
    with pytest.raises(ValueError, match=match):
        LearnableDelay(**args)


@pytest.mark.parametrize("version", ["gauss", "max"])
def test_analytic_kernel_backward_equals_autograd(version):
    torch.manual_seed(3)
    w = torch.randn(4, 3, 2, dtype=torch.float64, requires_grad=True)
    p = (torch.rand(4, 3, 2, dtype=torch.float64) * 8 - 4).requires_grad_(True)
    g = torch.randn(9, 3, 4, dtype=torch.float64)
    analytic = torch.autograd.grad((DF.delay_kernel(w, p, 0.7, 9, version) * g).sum(), (w, p))
    sig = torch.tensor(0.7, dtype=torch.float64, requires_grad=True)  # takes the plain autograd path
    auto = torch.autograd.grad((DF.delay_kernel(w, p, sig, 9, version) * g).sum(), (w, p))
    for a, b in zip(analytic, auto):
        torch.testing.assert_close(a, b, rtol=1e-12, atol=1e-12)


def test_narrow_gaussian_kernel_has_no_subnormal_taps():
    # a narrow Gaussian underflows far from its centre; subnormal taps would make the CPU GEMMs crawl
    layer = LearnableDelay(8, 4, max_delay=25, version="gauss", sigma=0.0)
    kernel = layer.kernel()
    tiny = torch.finfo(kernel.dtype).tiny
    assert not ((kernel != 0) & (kernel.abs() < tiny)).any()
    # without the flush the same construction does produce subnormal taps: the check above is not vacuous
    e = DF._profile(DF._tap_offsets(layer.weight, layer.positions, 25), torch.tensor(0.0), "gauss")
    raw = ((e / (e.sum(0) + DF.NORM_EPS)) * layer.weight.permute(1, 0, 2)).sum(-1)
    assert ((raw != 0) & (raw.abs() < tiny)).any()


@pytest.mark.parametrize("version,sigma", [("gauss", 12.0), ("gauss", 0.7), ("gauss", 0.23), ("gauss", 0.0),
                                           ("max", 2.5), ("max", 0.0)])
@pytest.mark.parametrize("dtype", [torch.float32, torch.float64])
def test_fused_cpu_kernel_equals_the_torch_construction(version, sigma, dtype, monkeypatch):
    # CPU builds the kernel with the numba loops (delay_kernel_numba); other devices with the torch formula. Both
    # against each other here (and against dcls.Dcls1d above), positions at the clamp limits and on tap centres.
    torch.manual_seed(4)
    w = torch.randn(6, 5, 2, dtype=dtype, requires_grad=True)
    p = (torch.rand(6, 5, 2, dtype=dtype) * 24 - 12)
    p[0, 0], p[1, 1, 0], p[2, 2, 1] = 12.0, -12.0, 3.0
    p.requires_grad_(True)
    g = torch.randn(25, 5, 6, dtype=dtype)
    results = []
    for fused in (True, False):
        monkeypatch.setattr(DF, "_fused_kernel_supported", lambda weight, _fused=fused: _fused)
        kernel = DF.delay_kernel(w, p, sigma, 25, version)
        results.append((kernel.detach(), *torch.autograd.grad((kernel * g).sum(), (w, p))))
    tol = 1e-6 if dtype == torch.float32 else 1e-13
    for fused, plain in zip(*results):
        torch.testing.assert_close(fused, plain, rtol=tol, atol=tol * plain.abs().max())
    kernel = results[0][0]
    assert not ((kernel != 0) & (kernel.abs() < torch.finfo(dtype).tiny)).any()
