"""Fused numba ELM against the torch reference loop: outputs, final state, memory and every gradient."""
import pytest
import torch

from snn.kernels import elm_numba
from snn.neuron_models import ELM

CASES = {
    "elm": dict(in_features=6, memory=5),
    "elm-tiny": dict(in_features=2, memory=2, mlp_hidden=3),
    "elm-deep-silu": dict(in_features=7, memory=4, mlp_layers=3, mlp_hidden=6, activation="silu"),
    "branch-random": dict(in_features=9, memory=6, branches=4, synapses_per_branch=5, routing="random",
                          learn_tau_m=True),
    "branch-window": dict(in_features=10, memory=8, branches=4, synapses_per_branch=4, routing="window"),
    "long-tau": dict(in_features=12, memory=16, tau_m_min=1.0, tau_m_max=500.0, dt=10.0, learn_tau_m=True),
}
SIZES = [(1, 1), (1, 3), (13, 2), (40, 5)]


def _run(elm, x, state, seed=7):
    x = x.clone().requires_grad_()
    state = {k: v.clone().requires_grad_() for k, v in state.items()}
    out = elm.run(x, state, record=True)
    g = torch.Generator().manual_seed(seed)
    w_y = torch.randn(out.output.shape, generator=g, dtype=x.dtype)
    w_m = torch.randn(out.memory.shape, generator=g, dtype=x.dtype)
    loss = (out.output * w_y).sum() + (out.memory * w_m).sum() * 0.5 + out.state["s"].sum() * 0.3 \
        + (out.state["m"] ** 2).sum()
    elm.zero_grad()
    loss.backward()
    grads = {"x": x.grad, "s0": state["s"].grad, "m0": state["m"].grad}
    grads.update({n: p.grad.clone() for n, p in elm.named_parameters() if p.requires_grad})
    return out, grads


def _grads_close(got, want, rtol, what):
    assert got.keys() == want.keys()
    for name in want:
        assert got[name] is not None, f"{what}: no gradient for {name}"
        scale = want[name].abs().max().item()
        torch.testing.assert_close(got[name], want[name], rtol=rtol, atol=rtol * scale,
                                   msg=lambda m: f"{what}: grad {name}: {m}")


def _parity(kwargs, x, state, spread_tau_s=False):
    """Fused vs reference on given input and state: outputs, memory and final state within 1e-5 (float32) / 1e-12
    (float64) of their magnitude, every gradient within 1e-4 / 1e-10."""
    dtype = x.dtype
    torch.manual_seed(3)
    ref = ELM(out_features=3, backend="torch", **kwargs).to(dtype)
    with torch.no_grad():
        for p in ref.mlp.parameters():
            p.mul_(3.0)
        if spread_tau_s:  # synapses decaying at different rates: the fused input layer falls back to the trace scan
            ref.tau_s.copy_(torch.linspace(0.5, 8.0, ref.n_synapses, dtype=dtype))
    fused = ELM(out_features=3, backend="numba", **kwargs).to(dtype)
    fused.load_state_dict(ref.state_dict())
    out_r, g_r = _run(ref, x, state)
    out_f, g_f = _run(fused, x, state)
    tol = 1e-5 if dtype == torch.float32 else 1e-12
    for got, want in [(out_f.output, out_r.output), (out_f.memory, out_r.memory),
                      (out_f.state["s"], out_r.state["s"]), (out_f.state["m"], out_r.state["m"])]:
        torch.testing.assert_close(got, want, rtol=tol, atol=tol * max(1.0, want.abs().max().item()))
    _grads_close(g_f, g_r, 1e-4 if dtype == torch.float32 else 1e-10, f"{kwargs} {tuple(x.shape)} {dtype}")


def _inputs(T, B, kwargs, dtype, spikes):
    ref = ELM(out_features=3, **kwargs)
    g = torch.Generator().manual_seed(T * 10 + B)
    if spikes:  # event counts 0, 1, 2 at ~5 % density, like binned spike trains
        x = (torch.rand(T, B, ref.in_features, generator=g) < 0.05).to(dtype) \
            * torch.randint(1, 3, (T, B, ref.in_features), generator=g).to(dtype)
    else:
        x = torch.rand(T, B, ref.in_features, generator=g, dtype=dtype) * 2
    state = {"s": torch.rand(B, ref.n_synapses, generator=g, dtype=dtype),
             "m": torch.randn(B, ref.memory, generator=g, dtype=dtype)}
    return x, state


@pytest.mark.parametrize("dtype", [torch.float64, torch.float32])
@pytest.mark.parametrize("case", sorted(CASES))
@pytest.mark.parametrize("size", SIZES)
def test_fused_matches_the_reference(case, size, dtype):
    # MLP weights ×3 so every nonlinearity is exercised (some ReLUs off, tanh bent); float32 rounding, summed in
    # another order by the GEMMs, drifts over T: tolerances relative to the values' magnitude
    _parity(CASES[case], *_inputs(*size, CASES[case], dtype, spikes=False))


def test_auto_uses_the_fused_kernels_on_cpu(monkeypatch):
    calls = []
    original = elm_numba.run
    monkeypatch.setattr(elm_numba, "run", lambda *a: calls.append(1) or original(*a))
    elm = ELM(4, 2, memory=3)
    elm(torch.rand(5, 2, 4))
    assert calls
    elm_torch = ELM(4, 2, memory=3, backend="torch")
    elm_torch(torch.rand(5, 2, 4))
    assert len(calls) == 1


def test_numba_backend_refuses_other_dtypes():
    from snn.kernels.backends import BackendUnavailable

    elm = ELM(4, 2, memory=3, backend="numba").to(torch.bfloat16)
    with pytest.raises(BackendUnavailable, match="float32/float64 CPU"):
        elm(torch.rand(5, 2, 4, dtype=torch.bfloat16))


def test_fused_forward_without_grad_and_empty_sequences():
    elm = ELM(4, 2, memory=3, backend="numba")
    with torch.no_grad():
        y = elm(torch.rand(6, 2, 4))
    assert y.shape == (6, 2, 2) and torch.isfinite(y).all()
    assert elm(torch.rand(0, 2, 4)).shape == (0, 2, 2)


@pytest.mark.parametrize("dtype", [torch.float64, torch.float32])
@pytest.mark.parametrize("case", ["elm", "branch-random", "branch-window", "long-tau"])
@pytest.mark.parametrize("size", [(1, 3), (40, 5)])
@pytest.mark.parametrize("spikes", [True, False], ids=["spikes", "dense"])
@pytest.mark.parametrize("density_limit", [0.0, 1.0], ids=["gemm-path", "event-path"])
def test_both_input_layer_paths_match_the_reference(case, size, dtype, spikes, density_limit, monkeypatch):
    # the input layer adds weight rows per event up to SPARSE_DENSITY nonzero inputs and uses a GEMM above it:
    # force each path on spiking and on dense input
    monkeypatch.setattr(elm_numba, "SPARSE_DENSITY", density_limit)
    _parity(CASES[case], *_inputs(*size, CASES[case], dtype, spikes))


@pytest.mark.parametrize("dtype", [torch.float64, torch.float32])
@pytest.mark.parametrize("case", ["elm", "branch-random", "long-tau"])
@pytest.mark.parametrize("spikes", [True, False], ids=["spikes", "dense"])
def test_synapses_with_different_decays_match_the_reference(case, dtype, spikes):
    _parity(CASES[case], *_inputs(13, 4, CASES[case], dtype, spikes), spread_tau_s=True)


def test_spiking_input_takes_the_event_path(monkeypatch):
    calls = []
    original = elm_numba._input_forward
    monkeypatch.setattr(elm_numba, "_input_forward", lambda *a: calls.append(a[-3]) or original(*a))
    elm = ELM(140, 4, memory=5, backend="numba")
    x, _ = _inputs(20, 3, dict(in_features=140, memory=5), torch.float32, spikes=True)
    elm(x)
    elm(torch.rand(20, 3, 140))
    assert calls == [True, False]


@pytest.mark.parametrize("spikes", [True, False], ids=["spikes", "dense"])
def test_fused_matches_the_reference_split_across_threads(spikes):
    # samples split into uneven blocks (5 over 3 threads): block GEMMs at an offset, per-chunk event sums
    threads = torch.get_num_threads()
    torch.set_num_threads(3)
    try:
        for case in ("elm", "elm-deep-silu", "branch-random"):
            _parity(CASES[case], *_inputs(17, 5, CASES[case], torch.float64, spikes))
    finally:
        torch.set_num_threads(threads)
