"""The ELM CUDA kernels' numerics on the CPU: the very source CuPy compiles, built with g++ by the host shim (each
block's threads concurrent, ``__syncthreads`` a real barrier), against the torch reference loop."""
from __future__ import annotations

import pytest
import torch

from snn.kernels import cuda_source, elm_cuda, elm_cuda_source, host_shim
from snn.kernels.backends import BackendUnavailable
from snn.kernels.host_shim import HostCudaRunner
from snn.neuron_models import ELM

requires_gxx = pytest.mark.skipif(host_shim.compiler() is None, reason="no host C++ compiler (g++) to build the shim")

CASES = {
    "elm": dict(in_features=6, memory=5),
    "elm-deep-silu": dict(in_features=5, memory=4, mlp_layers=3, mlp_hidden=6, activation="silu"),
    "branch-random": dict(in_features=9, memory=6, branches=4, synapses_per_branch=5, routing="random",
                          learn_tau_m=True),
    "branch-window": dict(in_features=10, memory=7, branches=4, synapses_per_branch=4, routing="window",
                          mlp_layers=2, mlp_hidden=9, learn_tau_m=True, dt=10.0, tau_m_max=500.0),
}
SIZES = [(1, 1), (1, 3), (9, 2)]
# 4 threads per block: fewer than the hidden width and the memory, so every strided loop wraps around
BLOCK = 4


def _pair(case: str, dtype: torch.dtype, **overrides) -> ELM:
    torch.manual_seed(3)
    elm = ELM(out_features=3, backend="torch", **{**CASES[case], **overrides}).to(dtype)
    with torch.no_grad():  # spread the parameters so every nonlinearity is exercised (some ReLUs off, tanh bent)
        for p in elm.mlp.parameters():
            p.mul_(3.0)
    return elm


def _inputs(elm: ELM, T: int, B: int, dtype: torch.dtype):
    g = torch.Generator().manual_seed(T * 10 + B)
    x = torch.rand(T, B, elm.in_features, generator=g, dtype=torch.float64) * 2
    state = {"s": torch.rand(B, elm.n_synapses, generator=g, dtype=torch.float64),
             "m": torch.randn(B, elm.memory, generator=g, dtype=torch.float64)}
    return x.to(dtype), {k: v.to(dtype) for k, v in state.items()}


def _run(elm: ELM, x, state, runner, seed=7):
    """Outputs and the gradients of a loss touching y, the memory and both final states, w.r.t. the input, the
    initial state and every parameter. ``runner=None``: the torch reference."""
    x = x.clone().requires_grad_()
    state = {k: v.clone().requires_grad_() for k, v in state.items()}
    p = elm.tensors(x.dtype)
    if runner is None:
        out = elm.run(x, state, record=True)
        y, memory, s, m = out.output, out.memory, out.state["s"], out.state["m"]
    else:
        y, memory, s, m = elm_cuda.run(elm.route(x), state["s"], state["m"], p, runner)
    g = torch.Generator().manual_seed(seed)
    w_y = torch.randn(y.shape, generator=g, dtype=torch.float64)
    w_m = torch.randn(memory.shape, generator=g, dtype=torch.float64)
    loss = (y.double() * w_y).sum() + (memory.double() * w_m).sum() * 0.5 + s.double().sum() * 0.3 \
        + (m.double() ** 2).sum()
    elm.zero_grad()
    loss.backward()
    grads = {"x": x.grad, "s0": state["s"].grad, "m0": state["m"].grad}
    grads.update({n: p.grad.clone() for n, p in elm.named_parameters() if p.requires_grad})
    return (y.detach(), memory.detach(), s.detach(), m.detach()), grads


def _grads_close(got, want, rtol, what):
    assert got.keys() == want.keys()
    for name in want:
        assert got[name] is not None, f"{what}: no gradient for {name}"
        scale = want[name].abs().max().item()
        torch.testing.assert_close(got[name].double(), want[name].double(), rtol=rtol, atol=rtol * scale,
                                   msg=lambda m: f"{what}: grad {name}: {m}")


@requires_gxx
@pytest.mark.parametrize("dtype", [torch.float64, torch.float32])
@pytest.mark.parametrize("case", sorted(CASES))
def test_host_elm_kernels_match_the_reference(case, dtype):
    elm = _pair(case, dtype)
    runner = HostCudaRunner(block=BLOCK)
    for T, B in SIZES:
        x, state = _inputs(elm, T, B, dtype)
        out_r, g_r = _run(elm, x, state, None)
        out_k, g_k = _run(elm, x, state, runner)
        tol = 1e-5 if dtype == torch.float32 else 1e-12
        for got, want in zip(out_k, out_r):
            torch.testing.assert_close(got, want, rtol=tol, atol=tol * max(1.0, want.abs().max().item()))
        _grads_close(g_k, g_r, 1e-4 if dtype == torch.float32 else 1e-10, f"{case} T={T} B={B} {dtype}")


@requires_gxx
def test_weights_in_global_memory_and_idle_threads_give_the_same_answer():
    # a shared-memory limit too small for the weights: the kernels read them from global memory; and a block wider
    # than the hidden layer and the memory, so some threads have no unit but must still meet every barrier
    elm = _pair("branch-window", torch.float32)
    H, D, LH = elm.mlp_hidden, elm.memory, elm.mlp_layers - 1
    vectors_only = elm_cuda_source.shared_bytes("float32", H, D, LH, False)
    assert elm_cuda.launch_config(HostCudaRunner(block=16, shared_memory=vectors_only), "float32", H, D, LH,
                                  torch.device("cpu"))[0] == 0
    x, state = _inputs(elm, 7, 3, torch.float32)
    out_r, g_r = _run(elm, x, state, None)
    for runner in (HostCudaRunner(block=16, shared_memory=vectors_only), HostCudaRunner(block=16)):
        out_k, g_k = _run(elm, x, state, runner)
        for got, want in zip(out_k, out_r):
            torch.testing.assert_close(got, want, rtol=1e-5, atol=1e-5 * max(1.0, want.abs().max().item()))
        _grads_close(g_k, g_r, 1e-4, f"block=16 shared_memory={runner.shared_memory}")


def test_too_little_shared_memory_for_the_vectors_is_a_clear_error():
    runner = HostCudaRunner(shared_memory=64)
    with pytest.raises(BackendUnavailable, match=r"shared memory per block for memory=20, mlp_hidden=40.*allows 64"):
        elm_cuda.launch_config(runner, "float32", 40, 20, 0, torch.device("cpu"))


# Half precision. The kernels store every tensor in the half dtype and compute in float32 (the traces, the memory
# and the per-sample gradient sums stay in float32 for the whole sequence). Compared with the float32 reference on
# the same half-representable inputs and parameters, with u the unit roundoff (2^-11 float16, 2^-8 bfloat16): each
# stored value rounds once (≤ u/2 relative); the MLP of a step reads up to three rounded inputs (branch sums, U,
# m_{t-1} in the backward) and the backward four rounded per-step values (U, m, the pre-activation gradients and
# activations), so outputs stay within a few u of their magnitude (measured ≤ 4.1u) and gradients, which sum many
# such terms with cancellation, within a few tens of u in relative L2 (measured ≤ 16.4u; the torch reference run
# entirely in float16/bfloat16 reaches 29u on the same inputs). Bounds: 8u and 24u. SiLU, not ReLU: a ReLU input
# within rounding of 0 flips its derivative, a discrete gradient change no rounding bound covers (ReLU is
# checked exactly in float32/float64 above).
UNIT_ROUNDOFF = {torch.float16: 2.0**-11, torch.bfloat16: 2.0**-8}


def _cast(p, dtype):
    return type(p)(*(tuple(w.detach().to(dtype) for w in v) if isinstance(v, tuple)
                     else v.detach().to(dtype) if isinstance(v, torch.Tensor) else v for v in p))


def _run_tensors(elm, x, state, p, runner, seed=7):
    """Like :func:`_run`, on given run tensors ``p`` (leaves), for the half tests."""
    leaves = [x.clone().requires_grad_(), state["s"].clone().requires_grad_(), state["m"].clone().requires_grad_()]
    p = type(p)(*(tuple(w.clone().requires_grad_() for w in v) if isinstance(v, tuple)
                  else v.clone().requires_grad_() if isinstance(v, torch.Tensor) else v for v in p))
    x_syn = leaves[0] if elm.routing == "identity" else \
        leaves[0].index_select(-1, elm.synapse_index) * elm.synapse_mask.to(x.dtype)
    if runner is None:
        from snn.kernels import elm_reference

        y, memory, s, m = elm_reference.run(x_syn, leaves[1], leaves[2], p)
    else:
        y, memory, s, m = elm_cuda.run(x_syn, leaves[1], leaves[2], p, runner)
    g = torch.Generator().manual_seed(seed)
    loss = (y.double() * torch.randn(y.shape, generator=g, dtype=torch.float64)).sum() \
        + (memory.double() * torch.randn(memory.shape, generator=g, dtype=torch.float64)).sum() * 0.5 \
        + s.double().sum() * 0.3 + (m.double() ** 2).sum()
    wrt = [*leaves, p.w_s, p.kappa_m, p.w_y, p.b_y, *p.weights, *p.biases]
    return (y, memory, s, m), torch.autograd.grad(loss, wrt)


@requires_gxx
@pytest.mark.parametrize("dtype", [torch.float16, torch.bfloat16])
@pytest.mark.parametrize("case", sorted(CASES))
def test_host_half_kernels_within_their_rounding_bounds(case, dtype):
    u = UNIT_ROUNDOFF[dtype]
    elm = _pair(case, torch.float32, activation="silu")
    p_half = _cast(elm.tensors(torch.float32), dtype)
    p_ref = _cast(p_half, torch.float32)
    for T, B in [(30, 3), (1, 3)]:
        x, state = _inputs(elm, T, B, dtype)
        out_k, g_k = _run_tensors(elm, x, state, p_half, HostCudaRunner(block=BLOCK))
        out_r, g_r = _run_tensors(elm, x.float(), {k: v.float() for k, v in state.items()}, p_ref, None)
        for got, want, name in zip(out_k, out_r, ("y", "memory", "s_T", "m_T")):
            assert got.dtype == dtype
            err = ((got.double() - want.double()).abs().max() / want.double().abs().max()).item()
            assert err <= 8 * u, f"{case} T={T} {name}: max error {err / u:.1f}u"
        for i, (got, want) in enumerate(zip(g_k, g_r)):
            err = ((got.double() - want.double()).norm() / want.double().norm()).item()
            assert err <= 24 * u, f"{case} T={T} gradient {i}: relative L2 error {err / u:.1f}u"


def _without_one_barrier(src: cuda_source.Source) -> tuple[str, list, list]:
    """The code of ``src`` followed by one copy of its memory kernels per ``__syncthreads()`` with that barrier removed
    (kernels renamed ``<name>_nb<i>``), all in one translation unit so that g++ runs once; every kernel; the pairs."""
    fwd, bwd = src.kernels[2], src.kernels[3]
    start = src.code.index(f'extern "C" __global__ void {fwd.name}(')
    memory = src.code[start:]
    sites = [i for i in range(len(memory)) if memory.startswith("__syncthreads();", i)]
    code, pairs = src.code, [(fwd, bwd)]
    for n, site in enumerate(sites):
        text = memory[:site] + "/* removed */" + memory[site + len("__syncthreads();"):]
        renamed = tuple(cuda_source.Kernel(f"{k.name}_nb{n}", k.params, cooperative=True) for k in (fwd, bwd))
        code += "\n" + text.replace(fwd.name, renamed[0].name).replace(bwd.name, renamed[1].name)
        pairs.append(renamed)
    return code, [src.kernels[0], src.kernels[1], *(k for pair in pairs for k in pair)], pairs


@requires_gxx
@pytest.mark.slow  # one g++ run over ten copies of the memory kernels: ~25 s cold on a shared 2-core machine
def test_removing_any_barrier_of_the_memory_kernels_gives_a_wrong_answer(monkeypatch):
    # Under the shim's serial schedules a thread runs alone up to its next barrier, so a read of shared memory
    # that another thread writes in the same barrier interval sees the old value under one of the two orders.
    elm = _pair("branch-window", torch.float64)  # mlp_layers=2: the hidden-layer barriers run too
    x, state = _inputs(elm, 5, 2, torch.float64)
    out_r, g_r = _run(elm, x, state, None)
    code, kernels, pairs = _without_one_barrier(elm_cuda_source.source("float64"))
    assert len(pairs) == 1 + 9  # forward: km, layer 0, hidden layers; backward: the same, the output, two adjoints

    def differs(pair, schedule) -> bool:
        rest = [k for k in kernels[2:] if k not in pair]
        src = cuda_source.Source(code, "float64", (kernels[0], kernels[1], *pair, *rest))
        monkeypatch.setattr(elm_cuda_source, "source", lambda dtype: src)
        out, grads = _run(elm, x, state, HostCudaRunner(block=BLOCK, schedule=schedule))
        close = all(torch.allclose(a, b, rtol=1e-9, atol=1e-9) for a, b in zip(out, out_r))
        return not (close and all(torch.allclose(grads[k], g_r[k], rtol=1e-9, atol=1e-9) for k in g_r))

    for schedule in ("lowest-first", "highest-first", "concurrent"):
        assert not differs(pairs[0], schedule), f"the intact kernels are wrong under {schedule}"
    missed = [n for n, pair in enumerate(pairs[1:]) if not (differs(pair, "lowest-first") or differs(pair, "highest-first"))]
    assert not missed, f"removing barrier(s) {missed} went unnoticed"


# ------------------------------------------------------------------------------------------ the module's backends


def test_cupy_backend_on_a_cpu_tensor_names_the_fix():
    elm = ELM(4, 2, memory=3, backend="cupy")
    with pytest.raises(BackendUnavailable, match="runs on CUDA tensors") as info:
        elm(torch.rand(3, 2, 4))
    assert "'numba'" in str(info.value) and "cpu" in str(info.value)


@pytest.mark.slow  # a fresh interpreter JIT-compiles the numba kernels
def test_elm_on_cpu_never_imports_cupy():
    import subprocess
    import sys

    code = ("import sys, torch\n"
            "from snn.neuron_models import ELM\n"
            "import snn.kernels.elm_cuda, snn.kernels.cupy_backend\n"
            "for backend in ('auto', 'numba', 'torch'):\n"
            "    ELM(4, 2, memory=3, backend=backend)(torch.rand(3, 2, 4)).sum()\n"
            "assert 'cupy' not in sys.modules\n"
            "print('ok')\n")
    result = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, timeout=300)
    assert result.returncode == 0 and result.stdout.strip() == "ok", result.stderr[-3000:]


def _cupy_importable() -> bool:
    try:
        import cupy  # noqa: F401
    except Exception:
        return False
    return True


requires_gpu = pytest.mark.skipif(not (torch.cuda.is_available() and _cupy_importable()),
                                  reason="needs a CUDA device (torch.cuda.is_available()) and an importable CuPy")


@pytest.mark.gpu
@requires_gpu
@pytest.mark.parametrize("case", sorted(CASES))
def test_cupy_matches_the_reference_on_the_gpu(case):
    ref = _pair(case, torch.float32).cuda()
    fast = _pair(case, torch.float32).cuda()
    fast.backend = "cupy"
    for T, B in [(1, 3), (50, 4)]:
        x, state = _inputs(ref, T, B, torch.float32)
        x, state = x.cuda(), {k: v.cuda() for k, v in state.items()}
        out_r, g_r = _run(ref, x, state, None)
        out_k, g_k = _run(fast, x, state, None)  # through ELM.run: backend='cupy'
        for got, want in zip(out_k, out_r):
            torch.testing.assert_close(got, want, rtol=1e-5, atol=1e-5 * max(1.0, want.abs().max().item()))
        _grads_close(g_k, g_r, 1e-4, f"{case} T={T} B={B} cuda")


@pytest.mark.gpu
@requires_gpu
@pytest.mark.parametrize("dtype", [torch.float16, torch.bfloat16])
def test_cupy_half_within_the_rounding_bounds_on_the_gpu(dtype):
    from snn.kernels.backends import select

    u = UNIT_ROUNDOFF[dtype]
    elm = _pair("branch-window", torch.float32, activation="silu").cuda()
    p_half = _cast(elm.tensors(torch.float32), dtype)
    x, state = _inputs(elm, 30, 3, dtype)
    x, state = x.cuda(), {k: v.cuda() for k, v in state.items()}
    out_k, g_k = _run_tensors(elm, x, state, p_half, select("cupy", x))
    out_r, g_r = _run_tensors(elm, x.float(), {k: v.float() for k, v in state.items()}, _cast(p_half, torch.float32),
                              None)
    for got, want in zip(out_k, out_r):
        assert ((got.double() - want.double()).abs().max() / want.double().abs().max()).item() <= 8 * u
    for got, want in zip(g_k, g_r):
        assert ((got.double() - want.double()).norm() / want.double().norm()).item() <= 24 * u


@pytest.mark.gpu
@requires_gpu
def test_cupy_auto_picks_the_fused_kernels_and_large_layers_run_from_shared_memory(monkeypatch):
    calls = []
    original = elm_cuda.run
    monkeypatch.setattr(elm_cuda, "run", lambda *a, **k: calls.append(1) or original(*a, **k))
    ref = ELM(140, 20, memory=100, dt=10.0, tau_m_max=500.0, backend="torch").cuda()  # 160 KB of weights
    fast = ELM(140, 20, memory=100, dt=10.0, tau_m_max=500.0, backend="auto").cuda()
    fast.load_state_dict(ref.state_dict())
    x = torch.rand(40, 8, 140, device="cuda")
    torch.testing.assert_close(fast(x), ref(x), rtol=1e-5, atol=1e-5)
    assert calls
