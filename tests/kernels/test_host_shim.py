"""The CUDA kernels' numerics on the CPU: the generated source compiled with g++ through the host shim, run through
``snn.kernels.fused.run`` and compared with the torch reference (autograd over the forward program)."""
from __future__ import annotations

import ctypes

import pytest
import torch

from snn.kernels import cuda_source, fused, host_shim, reference
from snn.kernels.host_shim import HostCudaRunner
from snn.neuron_models.adaptive_lif import adaptive_lif_dynamics
from snn.neuron_models.lif import lif_dynamics

pytestmark = pytest.mark.skipif(host_shim.compiler() is None, reason="no host C++ compiler (g++) to build the shim")

BLOCK = 16  # small emulated blocks: the test shapes span several blocks and end in a partial one
DTYPES = {"float64": torch.float64, "float32": torch.float32, "float16": torch.float16, "bfloat16": torch.bfloat16}
LIF = lif_dynamics(True, True, False, "divide", "ATan")
LIF_SCALARS = [1.0, -0.2, 2.0]
ALIF = adaptive_lif_dynamics(False, True, False, "Sigmoid")
PLIF = lif_dynamics(False, False, True, "multiply", "ATan")
PLIF_SCALARS = [1.0, 2.0]
ALIF_SCALARS = [1.0, 1.8, 4.0]


@pytest.fixture(scope="module", autouse=True)
def built(kernel_variants):
    """One g++ run per dtype for every variant this module uses."""
    keys = [(d, dt, True, True) for d, _ in kernel_variants for dt in ("float64", "float32")]
    keys += [(d, dt, rec, pg) for d in (LIF, ALIF, PLIF) for dt in DTYPES for rec in (False, True) for pg in (False, True)]
    host_shim.build(keys)


def lane_values(name: str, L: int, generator, dtype):
    """Plausible values of a lane parameter: time constants ``tau*`` in [1.25, 10], decays in [0.1, 0.8]."""
    u = torch.rand(L, generator=generator, dtype=torch.float64) * 0.7 + 0.1
    return (1.0 / u if name.startswith("tau") else u).to(dtype)


def _inputs(dynamics, T, L, dtype, seed=0):
    g = torch.Generator().manual_seed(seed)
    x = (torch.randn(T, L, generator=g, dtype=torch.float64) * 0.9 + 0.45).to(dtype)
    params = [lane_values(name, L, g, dtype) for name in dynamics.lane_params]
    init = [(torch.randn(L, generator=g, dtype=torch.float64) * 0.3).to(dtype) for _ in dynamics.states]
    weights = [torch.randn(T, L, generator=g, dtype=torch.float64) for _ in range(1 + len(dynamics.states))]
    finals_w = [torch.randn(L, generator=g, dtype=torch.float64) for _ in dynamics.states]
    return x, params, init, weights, finals_w


def _run(dynamics, runner, x, params, init, scalars, record, weights, finals_w):
    """Forward + a loss that touches spikes, final states and (record) every state sequence; returns outputs and
    the gradients w.r.t. input, lane parameters and initial states."""
    leaves = [t.detach().clone().requires_grad_() for t in (x, *params, *init)]
    x_, params_, init_ = leaves[0], leaves[1 : 1 + len(params)], leaves[1 + len(params) :]
    if runner is None:
        spikes, finals, rec = reference.run(dynamics, x_, init_, params_, scalars, record)
    else:
        spikes, finals, rec = fused.run(dynamics, runner, x_, params_, init_, scalars, record)
    loss = (spikes.double() * weights[0]).sum() + sum((f.double() * w).sum() for f, w in zip(finals, finals_w))
    if record:
        loss = loss + sum((r.double() * w).sum() for r, w in zip(rec, weights[1:]))
    grads = torch.autograd.grad(loss, leaves, allow_unused=True)
    return spikes.detach(), [f.detach() for f in finals], [r.detach() for r in rec or ()], grads


def _assert_grads_close(got, want, rtol, names):
    for g, w, name in zip(got, want, names):
        scale = (w.abs().max().item() if w.numel() else 0.0) + 1e-30
        torch.testing.assert_close(g.double(), w.double(), rtol=rtol, atol=rtol * scale, msg=lambda m: f"{name}: {m}")


@pytest.mark.parametrize("dtype", ["float64", "float32"])
def test_host_kernels_match_the_reference_for_every_variant(variant, dtype):
    dynamics, scalars = variant
    torch_dtype = DTYPES[dtype]
    args = _inputs(dynamics, T=9, L=37, dtype=torch_dtype)
    x, params, init, weights, finals_w = args
    got = _run(dynamics, HostCudaRunner(block=BLOCK), x, params, init, scalars, True, weights, finals_w)
    want = _run(dynamics, None, x, params, init, scalars, True, weights, finals_w)
    assert torch.equal(got[0], want[0]), "spikes differ"
    assert want[0].sum() > 0, "test input never spikes"
    tol = 1e-10 if dtype == "float64" else 1e-5
    for a, b in zip(got[1] + got[2], want[1] + want[2]):
        torch.testing.assert_close(a, b, rtol=tol, atol=tol)
    names = ["x", *dynamics.lane_params, *(f"{n}[0]" for n in dynamics.states)]
    _assert_grads_close(got[3], want[3], tol, names)


@pytest.mark.parametrize("dtype", ["float64", "float32"])
@pytest.mark.parametrize("shape", [(1, 1), (1, 40), (7, 1), (5, BLOCK), (4, BLOCK + 1), (0, 3)])
@pytest.mark.parametrize("record", [False, True])
def test_host_kernels_handle_odd_shapes(dtype, shape, record):
    T, L = shape
    for dynamics, scalars in ((LIF, LIF_SCALARS), (ALIF, ALIF_SCALARS), (PLIF, PLIF_SCALARS)):
        x, params, init, weights, finals_w = _inputs(dynamics, T, L, DTYPES[dtype], seed=T * 100 + L)
        got = _run(dynamics, HostCudaRunner(block=BLOCK), x, params, init, scalars, record, weights, finals_w)
        want = _run(dynamics, None, x, params, init, scalars, record, weights, finals_w)
        assert torch.equal(got[0], want[0])
        tol = 1e-10 if dtype == "float64" else 1e-5
        names = ["x", *dynamics.lane_params, *dynamics.states]
        grads = [g if g is not None else torch.zeros_like(w) for g, w in zip(got[3], want[3])]
        wants = [w if w is not None else torch.zeros_like(g) for g, w in zip(got[3], want[3])]
        _assert_grads_close(grads, wants, tol, names)


def test_param_grads_false_leaves_the_parameter_gradients_out():
    x, params, init, *_ = _inputs(LIF, 6, 21, torch.float32)
    x.requires_grad_()
    spikes, finals, _ = fused.run(LIF, HostCudaRunner(block=BLOCK), x, params, init, LIF_SCALARS, False)
    (spikes.sum() + finals[0].sum()).backward()
    ref = x.detach().clone().requires_grad_()
    s_ref, f_ref, _ = reference.run(LIF, ref, init, params, LIF_SCALARS, False)
    (s_ref.sum() + f_ref[0].sum()).backward()
    torch.testing.assert_close(x.grad, ref.grad, rtol=1e-5, atol=1e-6)
    runner = HostCudaRunner(block=BLOCK)
    out = runner.forward(LIF, x.detach(), params, init, LIF_SCALARS, False)
    gx, g_params, g_states = runner.backward(LIF, torch.ones_like(out[0]), [torch.ones(21)], [], out[0], out[1],
                                             params, init, LIF_SCALARS, False, param_grads=False)
    assert g_params == [None] and torch.equal(gx, x.grad)


# Half precision: the kernels compute in float32 registers and round only what they store, so against the
# float32 reference run on the same (upcast) inputs: spikes are identical, recorded states and final states are
# the reference's values rounded to the storage dtype, and gradients (which read the rounded saved variables)
# are within these relative L2 errors.
HALF_GRAD_RTOL = {"float16": 2e-3, "bfloat16": 2e-2}


@pytest.mark.parametrize("dtype", ["float16", "bfloat16"])
@pytest.mark.parametrize("record", [False, True])
def test_host_half_kernels_round_only_what_they_store(dtype, record):
    torch_dtype = DTYPES[dtype]
    for dynamics, scalars in ((LIF, LIF_SCALARS), (ALIF, ALIF_SCALARS), (PLIF, PLIF_SCALARS)):
        x, params, init, weights, finals_w = _inputs(dynamics, 20, 3 * BLOCK + 5, torch_dtype, seed=3)
        got = _run(dynamics, HostCudaRunner(block=BLOCK), x, params, init, scalars, record, weights, finals_w)
        up = [t.float() for t in (x, *params, *init)]
        want = _run(dynamics, None, up[0], up[1 : 1 + len(params)], up[1 + len(params) :], scalars, record, weights,
                    finals_w)
        assert got[0].dtype == torch_dtype
        assert torch.equal(got[0].float(), want[0])
        for a, b in zip(got[1] + got[2], want[1] + want[2]):
            assert torch.equal(a, b.to(torch_dtype))
        for g, w, name in zip(got[3], want[3], ["x", *dynamics.lane_params, *dynamics.states]):
            err = ((g.double() - w.double()).norm() / w.double().norm()).item()
            assert g.dtype == torch_dtype and err < HALF_GRAD_RTOL[dtype], f"{name}: relative L2 error {err:.2e}"


def _convert(lib, name, src: torch.Tensor, out: torch.Tensor) -> torch.Tensor:
    getattr(lib, name)(src.data_ptr(), out.data_ptr(), ctypes.c_long(src.numel()))
    return out


@pytest.mark.parametrize("dtype", ["float16", "bfloat16"])
def test_host_half_conversions_match_torch(dtype):
    torch_dtype = DTYPES[dtype]
    lib = host_shim.converters(dtype)
    bits = torch.arange(-(2**15), 2**15, dtype=torch.int32).to(torch.int16)  # every 16-bit pattern
    loaded = _convert(lib, "snn_shim_load", bits, torch.empty(bits.numel(), dtype=torch.float32))
    expected = bits.view(torch_dtype).float()
    nan = expected.isnan()
    assert torch.equal(loaded.isnan(), nan) and torch.equal(loaded[~nan], expected[~nan])
    # storing: every float32 that is exactly a half value, the midpoints between neighbours (ties to even), values
    # a hair either side of them, random magnitudes from subnormal to overflow, and the specials
    exact = expected[~nan].unique()
    mids = (exact[:-1].double() + exact[1:].double()) / 2
    mids = mids[torch.isfinite(mids)].float()
    g = torch.Generator().manual_seed(0)
    rand = torch.exp2(torch.rand(200_000, generator=g) * 60 - 35) * torch.sign(torch.randn(200_000, generator=g))
    values = torch.cat([exact, mids, torch.nextafter(mids, torch.full_like(mids, float("inf"))),
                        torch.nextafter(mids, torch.full_like(mids, -float("inf"))), rand,
                        torch.tensor([0.0, -0.0, float("inf"), -float("inf"), float("nan"), 65504.0, 65519.0, 65520.0,
                                      3e38, 1e-45, 2.0**-25, 2.0**-24, 2.0**-133])])
    stored = _convert(lib, "snn_shim_store", values, torch.empty(values.numel(), dtype=torch.int16))
    want = values.to(torch_dtype)
    got = stored.view(torch_dtype)
    assert torch.equal(got.isnan(), want.isnan())
    finite = ~want.isnan()
    mismatch = (got[finite].view(torch.int16) != want[finite].view(torch.int16)).nonzero()
    assert mismatch.numel() == 0, f"{dtype} store differs for {values[finite][mismatch[:5, 0]].tolist()}"


def test_host_runner_rejects_other_devices_and_dtypes():
    runner = HostCudaRunner()
    x = torch.zeros(3, 4, dtype=torch.int32)
    with pytest.raises(TypeError, match="HostCudaRunner supports"):
        runner.forward(LIF, x, [x[0]], [x[0]], LIF_SCALARS, False)
    with pytest.raises(ValueError, match="block"):
        HostCudaRunner(block=0)


def test_shim_compile_errors_carry_the_compiler_output():
    with pytest.raises(host_shim.ShimCompileError, match="g\\+\\+ failed"):
        host_shim.compile_library("this is not C++;")


_REVERSE = r"""
extern "C" __global__ void snn_test_reverse(const float* __restrict__ x, float* __restrict__ y, int n) {
    SNN_DYNAMIC_SHARED(smem);
    float* v = (float*)smem;
    const int b = blockIdx.x, t = threadIdx.x;
    v[t] = x[b * n + t];
    BARRIER
    y[b * n + t] = v[n - 1 - t];
}
"""


@pytest.mark.parametrize("barrier", [True, False])
def test_cooperative_kernels_run_a_blocks_threads_together_with_a_real_barrier(barrier):
    # each thread stores one value in shared memory and, after the barrier, reads its mirror image's: every
    # schedule reverses each block; without the barrier both serial schedules read shared memory not yet written
    # (filled with NaN bytes), so the answer is wrong every time
    code = cuda_source.prelude("float32") + _REVERSE.replace("BARRIER", "__syncthreads();" if barrier else "")
    src = cuda_source.Source(code, "float32", (cuda_source.Kernel("snn_test_reverse", (
        ("const float* __restrict__", "x"), ("float* __restrict__", "y"), ("int", "n")), cooperative=True),))
    x = torch.arange(3 * 8, dtype=torch.float32)
    want = x.view(3, 8).flip(1).flatten()
    for schedule in ("concurrent", "lowest-first", "highest-first"):
        y = torch.zeros_like(x)
        HostCudaRunner(block=8, schedule=schedule).launch_source(src, "snn_test_reverse", 3, 8, [x, y, 8], 8 * 4)
        if barrier:
            assert torch.equal(y, want), schedule
        elif schedule != "concurrent":
            assert not torch.equal(y, want) and y.isnan().any(), schedule


def test_host_runner_validates_schedule_and_shared_memory():
    with pytest.raises(ValueError, match="schedule: expected one of"):
        HostCudaRunner(schedule="random")
    with pytest.raises(ValueError, match="shared_memory: expected a non-negative int"):
        HostCudaRunner(shared_memory=-1)
