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


@pytest.mark.parametrize("dtype", [torch.float64, torch.float32])
@pytest.mark.parametrize("case", sorted(CASES))
@pytest.mark.parametrize("size", SIZES)
def test_fused_matches_the_reference(case, size, dtype):
    T, B = size
    kwargs = CASES[case]
    torch.manual_seed(3)
    ref = ELM(out_features=3, backend="torch", **kwargs).to(dtype)
    with torch.no_grad():  # spread the parameters so every nonlinearity is exercised (some ReLUs off, tanh bent)
        for p in ref.mlp.parameters():
            p.mul_(3.0)
    fused = ELM(out_features=3, backend="numba", **kwargs).to(dtype)
    fused.load_state_dict(ref.state_dict())
    g = torch.Generator().manual_seed(T * 10 + B)
    x = torch.rand(T, B, ref.in_features, generator=g, dtype=dtype) * 2
    state = {"s": torch.rand(B, ref.n_synapses, generator=g, dtype=dtype),
             "m": torch.randn(B, ref.memory, generator=g, dtype=dtype)}
    out_r, g_r = _run(ref, x, state)
    out_f, g_f = _run(fused, x, state)
    tol = 1e-5 if dtype == torch.float32 else 1e-12
    # within tol of the values' magnitude (float32 rounding, summed in another order by the GEMMs, drifts over T)
    for got, want in [(out_f.output, out_r.output), (out_f.memory, out_r.memory),
                      (out_f.state["s"], out_r.state["s"]), (out_f.state["m"], out_r.state["m"])]:
        torch.testing.assert_close(got, want, rtol=tol, atol=tol * max(1.0, want.abs().max().item()))
    _grads_close(g_f, g_r, 1e-4 if dtype == torch.float32 else 1e-10, f"{case} T={T} B={B} {dtype}")


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
