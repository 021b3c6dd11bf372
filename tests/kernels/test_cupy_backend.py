"""The CuPy backend: helpful errors where it cannot run, no CuPy import on CPU paths, and (on a CUDA machine)
parity with the torch reference through the neuron modules."""
from __future__ import annotations

import subprocess
import sys

import pytest
import torch

from snn.kernels.backends import BackendUnavailable
from snn.kernels.cupy_backend import CupyRunner
from snn.neuron_models import IF, LIF, AdaptiveLIF, ParametricLIF
from snn import surrogate


def _cupy_importable() -> bool:
    try:
        import cupy  # noqa: F401
    except Exception:
        return False
    return True


gpu = pytest.mark.gpu
requires_gpu = pytest.mark.skipif(not (torch.cuda.is_available() and _cupy_importable()),
                                  reason="needs a CUDA device (torch.cuda.is_available()) and an importable CuPy")


# ------------------------------------------------------------------------------------------------ CPU-only checks


def test_cupy_backend_on_a_cpu_tensor_raises_backend_unavailable_naming_the_fix():
    neuron = LIF(backend="cupy")
    with pytest.raises(BackendUnavailable, match="runs on CUDA tensors") as info:
        neuron(torch.rand(4, 2, 3))
    assert "cpu" in str(info.value) and "'numba'" in str(info.value)


@pytest.mark.skipif(torch.cuda.is_available(), reason="checks the message given when there is no CUDA device")
def test_cupy_runner_without_cuda_says_so():
    with pytest.raises(BackendUnavailable, match=r"torch\.cuda\.is_available\(\) is False"):
        CupyRunner()


def test_cupy_import_failure_is_reported_with_the_real_error_and_the_fix(monkeypatch):
    monkeypatch.setattr(torch.cuda, "is_available", lambda: True)
    monkeypatch.setitem(sys.modules, "cupy", None)  # makes `import cupy` raise ImportError
    with pytest.raises(BackendUnavailable) as info:
        CupyRunner()
    message = str(info.value)
    assert "ImportError" in message or "ModuleNotFoundError" in message
    assert "pip install -e \".[cuda]\"" in message and "cupy-cuda13x" in message and "snn-sim[" not in message
    assert isinstance(info.value.__cause__, ImportError)


def test_cupy_runner_validates_the_block_size():
    with pytest.raises(ValueError, match="block: expected a multiple of 32"):
        CupyRunner(block=100)


def test_importing_snn_and_running_numba_never_imports_cupy():
    code = (
        "import sys, torch\n"
        "import snn\n"
        "from snn.neuron_models import LIF\n"
        "import snn.kernels.cupy_backend, snn.kernels.cuda_source\n"
        "x = torch.rand(5, 2, 3)\n"
        "LIF(backend='numba')(x).sum()\n"
        "LIF(backend='auto')(x).sum()\n"
        "assert 'cupy' not in sys.modules, sorted(m for m in sys.modules if m.startswith('cupy'))\n"
        "print('ok')\n"
    )
    result = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, timeout=300)
    assert result.returncode == 0 and result.stdout.strip() == "ok", result.stderr[-3000:]


# ------------------------------------------------------------------------------------------------ GPU parity


def _pair(make, seed=0):
    torch.manual_seed(seed)
    ref, fast = make("torch"), make("cupy")
    fast.load_state_dict(ref.state_dict())
    return ref.cuda(), fast.cuda()


def _grads(module, x, record):
    x = x.detach().clone().requires_grad_()
    out = module.run(x, record=record)
    w = torch.randn_like(out.spikes)
    loss = (out.spikes * w).sum()
    if record:
        loss = loss + sum((r * torch.cos(r.detach())).sum() for r in out.recorded.values())
    params = [p for p in module.parameters() if p.requires_grad]
    grads = torch.autograd.grad(loss, [x, *params])
    return out, grads


MODULES = {
    "lif": lambda sg, backend: LIF(tau=torch.linspace(1.5, 6.0, 24), v_reset=-0.1, surrogate=sg, backend=backend),
    "lif_soft_detach_decay_v": lambda sg, backend: LIF(tau=3.0, v_reset=None, decay_input=False, detach_reset=True,
                                                       surrogate=sg, backend=backend),
    "plif": lambda sg, backend: ParametricLIF(init_tau=2.5, shape=(24,), surrogate=sg, backend=backend),
    "if": lambda sg, backend: IF(v_threshold=0.8, surrogate=sg, backend=backend),
    "alif": lambda sg, backend: AdaptiveLIF(tau=3.0, tau_adapt=20.0, learn_tau=True, shape=(24,), surrogate=sg,
                                            backend=backend),
}


@gpu
@requires_gpu
@pytest.mark.parametrize("record", [False, True])
@pytest.mark.parametrize("sg", [cls.__name__ for cls in surrogate.ALL])
@pytest.mark.parametrize("kind", sorted(MODULES))
def test_cupy_float32_matches_the_reference_with_identical_spikes(kind, sg, record):
    ref, fast = _pair(lambda backend: MODULES[kind](sg, backend))
    g = torch.Generator(device="cuda").manual_seed(1)
    x = torch.randn(33, 5, 24, device="cuda", generator=g) * 0.8 + 0.4  # L = 120: a partial block
    torch.manual_seed(2)
    out_ref, g_ref = _grads(ref, x, record)
    torch.manual_seed(2)
    out_fast, g_fast = _grads(fast, x, record)
    assert torch.equal(out_fast.spikes, out_ref.spikes) and out_ref.spikes.sum() > 0
    for name in out_ref.state:
        torch.testing.assert_close(out_fast.state[name], out_ref.state[name], rtol=1e-6, atol=1e-6)
    for a, b in zip(g_fast, g_ref):
        torch.testing.assert_close(a, b, rtol=1e-4, atol=1e-5 * (b.abs().max().item() + 1e-12))


# fp16/bf16: computed in float32, stored rounded. Against the float32 reference on the same inputs (time
# constants exactly representable): identical spikes, membranes equal to the reference rounded to the dtype,
# gradients within these relative L2 errors.
HALF_GRAD_RTOL = {torch.float16: 2e-3, torch.bfloat16: 2e-2}


@gpu
@requires_gpu
@pytest.mark.parametrize("dtype", [torch.float16, torch.bfloat16])
@pytest.mark.parametrize("kind", ["lif", "alif"])
def test_cupy_half_precision_within_stated_tolerance(kind, dtype):
    if kind == "lif":
        make = lambda backend: LIF(tau=2.0, v_reset=-0.25, backend=backend)  # noqa: E731
    else:
        make = lambda backend: AdaptiveLIF(tau=4.0, tau_adapt=16.0, beta=0.5, backend=backend)  # noqa: E731
    ref, fast = make("torch").cuda(), make("cupy").cuda()
    g = torch.Generator(device="cuda").manual_seed(3)
    x = (torch.randn(50, 8, 37, device="cuda", generator=g) * 0.8 + 0.45).to(dtype)
    xr = x.float().requires_grad_()
    xf = x.clone().requires_grad_()
    out_ref, out_fast = ref.run(xr, record=True), fast.run(xf, record=True)
    assert out_fast.spikes.dtype == dtype
    assert torch.equal(out_fast.spikes.float(), out_ref.spikes)
    for name in out_ref.recorded:
        assert torch.equal(out_fast.recorded[name], out_ref.recorded[name].to(dtype)), name
    w = torch.randn(x.shape, device="cuda", generator=g)
    (gr,) = torch.autograd.grad((out_ref.spikes * w).sum() + out_ref.recorded["v"].sum(), xr)
    (gf,) = torch.autograd.grad((out_fast.spikes.float() * w).sum() + out_fast.recorded["v"].float().sum(), xf)
    err = ((gf.double() - gr.double()).norm() / gr.double().norm()).item()
    assert gf.dtype == dtype and err < HALF_GRAD_RTOL[dtype], f"relative L2 error {err:.2e}"


@gpu
@requires_gpu
def test_cupy_runs_on_torchs_current_stream_and_caches_its_modules():
    ref, fast = _pair(lambda backend: LIF(tau=2.0, backend=backend))
    x = torch.randn(64, 16, 300, device="cuda") + 0.5
    stream = torch.cuda.Stream()
    stream.wait_stream(torch.cuda.current_stream())
    with torch.cuda.stream(stream):
        y = x * 1.0  # queued on the side stream; the kernel must run after it
        spikes = fast(y)
    torch.cuda.current_stream().wait_stream(stream)
    assert torch.equal(spikes, ref(x))
    runner = CupyRunner()
    from snn.kernels import fused
    from snn.neuron_models.lif import lif_dynamics

    d = lif_dynamics(True, True, False, "divide", "ATan")
    lanes = [torch.full((7,), 0.5, device="cuda")]
    init = [torch.zeros(7, device="cuda")]
    for _ in range(2):
        fused.run(d, runner, torch.randn(3, 7, device="cuda"), lanes, init, [1.0, 0.0, 2.0], False)
    assert len(runner._modules) == 1
