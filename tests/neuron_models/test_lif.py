"""The neuron modules' contract: equations, rest/streaming semantics, validation."""
import math

import pytest
import torch

from snn import surrogate as sg
from snn.kernels import reference
from snn.neuron_models import IF, LI, LIF, AdaptiveLIF, ParametricLIF

BACKENDS = ["torch", "numba"]


@pytest.mark.parametrize("backend", BACKENDS)
def test_lif_follows_the_documented_equations(backend):
    x = torch.tensor([[0.6], [0.6], [0.6], [-1.0]]).view(4, 1, 1)
    out = LIF(tau=2.0, v_threshold=0.5, v_reset=0.0, backend=backend).run(x, record=True)
    # H0 = 0.3 -> no spike; H1 = 0.3 + 0.5*(0.6-0.3) = 0.45; H2 = 0.45 + 0.5*(0.6-0.45) = 0.525 -> spike, reset to 0
    assert out.spikes.flatten().tolist() == [0.0, 0.0, 1.0, 0.0]
    assert torch.allclose(out.recorded["v"].flatten(), torch.tensor([0.3, 0.45, 0.0, -0.5]))


@pytest.mark.parametrize("backend", BACKENDS)
def test_soft_reset_subtracts_the_threshold(backend):
    x = torch.full((2, 1, 1), 3.0)
    out = IF(v_threshold=1.0, v_reset=None, backend=backend).run(x, record=True)
    assert out.spikes.flatten().tolist() == [1.0, 1.0]
    assert out.recorded["v"].flatten().tolist() == [2.0, 4.0]


@pytest.mark.parametrize("backend", BACKENDS)
def test_forward_starts_from_rest_and_leaves_no_state(backend):
    lif = LIF(tau=3.0, v_reset=-0.25, backend=backend)
    x = torch.rand(10, 2, 5) * 2
    rest = {"v": torch.full((2, 5), -0.25)}  # the documented rest: V[-1] = V_reset
    from_rest, _ = lif(x, rest)
    assert torch.equal(lif(x), from_rest)
    # a run from an excited state differs, so the comparison above can fail
    excited, _ = lif(x, {"v": torch.full((2, 5), 0.9)})
    assert not torch.equal(excited, from_rest)
    # a strong earlier call leaves nothing behind for the next one
    lif(torch.full((10, 2, 5), 5.0))
    assert torch.equal(lif(x), from_rest)


@pytest.mark.parametrize("backend", BACKENDS)
def test_streaming_in_chunks_equals_one_pass(backend):
    lif = AdaptiveLIF(tau=3.0, tau_adapt=7.0, beta=0.5, backend=backend)
    x = torch.rand(12, 2, 5) * 3
    whole, state_whole = lif(x, lif.initial_state(x[0]))
    first, state = lif(x[:5], lif.initial_state(x[0]))
    second, state = lif(x[5:], state)
    assert torch.equal(torch.cat([first, second]), whole)
    for key in state:
        assert torch.equal(state[key], state_whole[key])


@pytest.mark.parametrize("backend", BACKENDS)
def test_single_step_equals_multi_step(backend):
    lif = LIF(tau=2.0, backend=backend)
    x = torch.rand(6, 3, 4) * 2
    state, outs = None, []
    for t in range(x.shape[0]):
        s, state = lif.step(x[t], state)
        outs.append(s)
    assert torch.equal(torch.stack(outs), lif(x))


@pytest.mark.peers
def test_spikingjelly_reset_net_reaches_our_neurons_and_changes_nothing(monkeypatch):
    functional = pytest.importorskip("spikingjelly.activation_based.functional")
    model = torch.nn.Sequential(torch.nn.Linear(4, 6), LIF(tau=2.0), torch.nn.Linear(6, 3), AdaptiveLIF(tau=3.0))
    calls = []
    for m in (model[1], model[3]):
        monkeypatch.setattr(m, "reset", lambda m=m: calls.append(m) or type(m).reset(m))
    x = torch.rand(8, 2, 4) * 3
    before = model(x)
    functional.reset_net(model)
    assert calls == [model[1], model[3]]  # reset_net found both neurons through their reset() method
    assert torch.equal(model(x), before)


def test_li_readout_is_the_closed_form_leaky_integral():
    x = torch.ones(5, 1, 1)
    v = LI(tau=2.0)(x).flatten()
    expected = torch.tensor([1 - 0.5 ** (t + 1) for t in range(5)])
    assert torch.allclose(v, expected)


@pytest.mark.parametrize("backend", BACKENDS)
def test_parametric_lif_starts_at_init_tau_and_learns_a_target_tau(backend):
    # The membrane of a non-firing PLIF driven by a fixed input is a smooth function of tau: fitting it to the
    # membrane of a neuron with tau = 8 must recover tau = 8 from init_tau = 2.
    plif = ParametricLIF(init_tau=2.0, v_threshold=1e9, backend=backend)
    assert math.isclose(plif.tau.item(), 2.0, rel_tol=1e-6)
    g = torch.Generator().manual_seed(0)
    x = torch.rand(30, 4, 8, generator=g) * 2
    target = LIF(tau=8.0, v_threshold=1e9, backend="torch").run(x, record=True).recorded["v"]
    optimizer = torch.optim.Adam(plif.parameters(), lr=0.05)
    for _ in range(300):
        optimizer.zero_grad()
        loss = ((plif.run(x, record=True).recorded["v"] - target) ** 2).mean()
        loss.backward()
        optimizer.step()
    assert math.isclose(plif.tau.item(), 8.0, rel_tol=0.02), plif.tau.item()


@pytest.mark.parametrize("v_reset", [0.0, None])
def test_gradcheck_reference_float64(v_reset):
    # With detach_reset the membrane is a smooth function of the input and of tau between threshold crossings
    # (spikes are locally constant and no surrogate enters its derivative), so the autograd gradient of the
    # membrane must equal finite differences exactly: the float64 check is meaningful there.
    torch.manual_seed(0)
    lif = ParametricLIF(init_tau=2.0, v_reset=v_reset, detach_reset=True, backend="torch").double()
    x = (torch.rand(8, 2, 3, dtype=torch.float64) * 2.0).requires_grad_()

    dynamics = lif.dynamics()
    scalars = list(lif.scalar_values().values()) + list(lif.surrogate.kernel_parameters)
    v0 = torch.full_like(x[0], v_reset or 0.0)

    def membrane(inp, w):
        return reference.run(dynamics, inp, [v0], [torch.sigmoid(w)], scalars, record=True)[2][0]

    assert lif.run(x, record=True).spikes.sum() > 0  # crossings happen: the reset path is exercised
    assert torch.autograd.gradcheck(membrane, (x, lif.w.detach().clone().requires_grad_()))


def test_surrogate_gradient_flows_through_spikes():
    x = torch.full((1, 1, 1), 0.9, requires_grad=True)
    LIF(tau=1.0, surrogate=sg.ATan(2.0), backend="torch")(x).sum().backward()
    # ∂S/∂X = σ'(H - V_th) · ∂H/∂X = ATan'(-0.1) · 1
    expected = 1.0 / (1 + (math.pi / 2 * 2.0 * -0.1) ** 2)
    assert math.isclose(x.grad.item(), expected, rel_tol=1e-6)


@pytest.mark.parametrize(
    "build, fragment",
    [
        (lambda: LIF(tau=0.0), "tau: expected finite values > 0"),
        (lambda: LIF(tau=-2.0), "tau: expected finite values > 0"),
        (lambda: LIF(tau=float("nan")), "tau"),
        (lambda: LIF(v_threshold=float("nan")), "v_threshold"),
        (lambda: LIF(backend="gpu"), "backend: expected one of"),
        (lambda: LIF(surrogate="nope"), "surrogate: unknown name"),
        (lambda: ParametricLIF(init_tau=1.0), "init_tau: expected a value > 1"),
        (lambda: AdaptiveLIF(beta=-1.0), "beta: expected a value >= 0"),
        (lambda: AdaptiveLIF(tau_adapt=0.0), "tau_adapt"),
    ],
)
def test_bad_constructor_arguments_are_rejected(build, fragment):
    with pytest.raises((ValueError, TypeError), match=fragment):
        build()


@pytest.mark.parametrize(
    "call, error, fragment",
    [
        (lambda n: n(torch.ones(5)), ValueError, r"at least 2 dimensions, got shape \(5,\)"),
        (lambda n: n(torch.ones(3, 2, dtype=torch.int64)), TypeError, "floating-point tensor, got dtype torch.int64"),
        (lambda n: n([1.0, 2.0]), TypeError, "must be a torch.Tensor, got list"),
        (lambda n: n(torch.ones(3, 2, 4), {"v": torch.zeros(2, 5)}), ValueError, r"state\['v'\] must have shape \(2, 4\)"),
        (lambda n: n(torch.ones(3, 2, 4), {"u": torch.zeros(2, 4)}), ValueError, r"state must be a dict with keys \['v'\]"),
        (lambda n: n(torch.ones(3, 2, 4), {"v": torch.zeros(2, 4, dtype=torch.float64)}), TypeError, "dtype torch.float64"),
    ],
)
def test_bad_inputs_are_rejected_before_any_work(call, error, fragment):
    with pytest.raises(error, match=fragment):
        call(LIF())


def test_non_finite_input_is_reported_when_asked():
    x = torch.ones(3, 2, 2)
    x[1, 0, 0] = float("nan")
    with pytest.raises(ValueError, match="NaN or infinite"):
        LIF(check_finite=True)(x)


def test_per_neuron_tau_that_does_not_broadcast_is_rejected():
    with pytest.raises(ValueError, match=r"parameter tau of shape \(3,\) does not broadcast"):
        LIF(tau=torch.ones(3) * 2)(torch.ones(4, 2, 5))


def test_extra_repr_names_the_options():
    text = repr(LIF(tau=5.0, v_reset=None, detach_reset=True))
    assert "tau=5.0" in text and "soft" in text and "detach_reset=True" in text and "ATan(alpha=2.0)" in text


@pytest.mark.parametrize("backend", BACKENDS)
def test_tau_accepts_numbers_after_construction_like_spikingjelly(backend):
    lif = LIF(tau=2.0, backend=backend)
    lif.tau = 3.0
    assert isinstance(lif.tau, torch.Tensor) and lif.tau.item() == 3.0 and "tau" in dict(lif.named_buffers())
    x = torch.tensor([0.6, 2.6]).view(2, 1, 1)
    # SpikingJelly's arithmetic with tau = 3: H0 = 0.6 / 3 = 0.2, H1 = 0.2 + (2.6 - 0.2) / 3 = 0.99999994 in
    # float32 (a multiplication by float32(1/3) gives 1.0 and a spike)
    assert lif(x).flatten().tolist() == [0.0, 0.0]
    lif.tau = torch.full((1,), 1.5)
    assert lif(x).flatten().tolist() == [0.0, 1.0]
    for bad, error in ((0.0, ValueError), (-1, ValueError), ("3", TypeError), (float("inf"), ValueError)):
        with pytest.raises(error, match="tau"):
            lif.tau = bad
    assert lif.tau.item() == 1.5  # a rejected value leaves the old one


def test_step_mode_s_set_by_spikingjelly_is_refused_with_a_message():
    lif = LIF()
    assert lif.step_mode == "m"
    lif.step_mode = "s"  # what spikingjelly's functional.set_step_mode(net, "s") does
    with pytest.raises(RuntimeError, match="step_mode was set to 's'.*SingleStepNeuron"):
        lif(torch.ones(4, 3))
    spikes, _ = lif.step(torch.ones(4, 3), None)  # the explicit single-step API still works
    assert spikes.shape == (4, 3)
    with pytest.raises(ValueError, match="step_mode: expected 's' or 'm'"):
        lif.step_mode = "x"


def test_numba_forward_from_rest_saves_only_spikes_and_membrane_per_neuron():
    # From rest with a scalar τ, the rest state and τ reach the kernels as stride-0 views: what autograd keeps for
    # the backward is the spikes and H (2·T·L values) plus a few bytes, not another L-sized copy of each.
    T, B, N = 3, 4, 50
    x = torch.randn(T, B, N, requires_grad=True)
    storages: dict[int, int] = {}

    def pack(t):
        storages[t.untyped_storage().data_ptr()] = t.untyped_storage().nbytes()
        return t

    with torch.autograd.graph.saved_tensors_hooks(pack, lambda t: t):
        out = LIF(tau=2.0, backend="numba")(x)
    assert sum(storages.values()) <= 2 * T * B * N * 4 + 64
    out.sum().backward()
    reference_grad = torch.autograd.grad(LIF(tau=2.0, backend="torch")(x).sum(), x)[0]
    torch.testing.assert_close(x.grad, reference_grad, rtol=1e-6, atol=1e-7)
