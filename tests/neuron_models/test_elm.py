"""ELM reference against a plain-Python computation of the authors' equations, routing, state and errors."""
import math

import pytest
import torch

from snn.neuron_models import ELM
from snn.neuron_models.elm_routing import RoutingError, make_routing


def _python_elm(x, w_s, tau_s, tau_m, dt, lam, W1, b1, W2, b2, Wy, by, spb, *, before_leak=True,
                kappa_on_input=True, contiguous=True, same_step_readout=True):
    """One sample, plain floats: the ELM step as reference.md states it. The keyword switches give the
    plausible mistakes, so the tests can show that the module is distinguishable from each of them."""
    n = len(w_s)
    n_branch = n // spb
    w = [max(v, 0.0) for v in w_s]
    ks = [math.exp(-dt / max(t, 1e-6)) for t in tau_s]
    km = [math.exp(-dt / max(t, 1e-6)) for t in tau_m]
    s = [0.0] * n
    m = [0.0] * len(tau_m)
    ys, ms = [], []
    for xt in x:
        if before_leak:
            s = [ks[j] * s[j] + w[j] * xt[j] for j in range(n)]
        else:
            s = [ks[j] * (s[j] + w[j] * xt[j]) for j in range(n)]
        if contiguous:
            b = [sum(s[br * spb:(br + 1) * spb]) for br in range(n_branch)]
        else:
            b = [sum(s[j] for j in range(n) if j % n_branch == br) for br in range(n_branch)]
        mem_in = [km[k] * m[k] for k in range(len(m))] if kappa_on_input else list(m)
        inp = b + mem_in
        h = [max(sum(W1[i][j] * inp[j] for j in range(len(inp))) + b1[i], 0.0) for i in range(len(W1))]
        z = [sum(W2[i][j] * h[j] for j in range(len(h))) + b2[i] for i in range(len(W2))]
        delta = [1.7159 * math.tanh(2.0 / 3.0 * v) for v in z]
        m_new = [km[k] * m[k] + lam * (1.0 - km[k]) * delta[k] for k in range(len(m))]
        read = m_new if same_step_readout else m
        ys.append([sum(Wy[i][k] * read[k] for k in range(len(read))) + by[i] for i in range(len(Wy))])
        m = m_new
        ms.append(m)
    return ys, ms, s


def _set(elm, W1, b1, W2, b2, Wy, by, w_s):
    with torch.no_grad():
        elm.mlp[0].weight.copy_(torch.tensor(W1, dtype=torch.float64))
        elm.mlp[0].bias.copy_(torch.tensor(b1, dtype=torch.float64))
        elm.mlp[1].weight.copy_(torch.tensor(W2, dtype=torch.float64))
        elm.mlp[1].bias.copy_(torch.tensor(b2, dtype=torch.float64))
        elm.readout.weight.copy_(torch.tensor(Wy, dtype=torch.float64))
        elm.readout.bias.copy_(torch.tensor(by, dtype=torch.float64))
        elm.w_s_raw.copy_(torch.tensor(w_s, dtype=torch.float64))


TINY = dict(  # 2 inputs, 2 memory units, MLP 4 -> 3 -> 2, readout 2 -> 2
    W1=[[0.3, -0.2, 0.5, 0.1], [-0.4, 0.6, 0.2, -0.3], [0.25, 0.15, -0.35, 0.45]],
    b1=[0.05, -0.1, 0.2],
    W2=[[0.7, -0.5, 0.3], [-0.2, 0.4, 0.6]],
    b2=[0.1, -0.05],
    Wy=[[1.0, -2.0], [0.5, 0.25]],
    by=[0.3, -0.1],
    w_s=[0.5, 0.8],
)


def test_tiny_case_matches_a_plain_python_computation_in_float64():
    torch.set_default_dtype(torch.float64)
    try:
        elm = ELM(2, 2, memory=2, mlp_hidden=3, tau_m_min=1.0, tau_m_max=30.0, dt=1.0, backend="torch")
    finally:
        torch.set_default_dtype(torch.float32)
    _set(elm, **TINY)
    x = [[1.0, 0.0], [0.0, 2.0], [1.0, 1.0]]
    tau_m = elm.tau_m().tolist()
    assert tau_m == pytest.approx([1.0, 30.0], abs=1e-5)
    ys, ms, s = _python_elm(x, TINY["w_s"], [5.0, 5.0], tau_m, 1.0, 5.0, TINY["W1"], TINY["b1"], TINY["W2"],
                            TINY["b2"], TINY["Wy"], TINY["by"], 1)
    out = elm.run(torch.tensor(x, dtype=torch.float64)[:, None, :], record=True)
    torch.testing.assert_close(out.output[:, 0], torch.tensor(ys, dtype=torch.float64), rtol=0, atol=1e-13)
    torch.testing.assert_close(out.memory[:, 0], torch.tensor(ms, dtype=torch.float64), rtol=0, atol=1e-13)
    torch.testing.assert_close(out.state["s"][0], torch.tensor(s, dtype=torch.float64), rtol=0, atol=1e-13)
    # the first step by hand: s_0 = w_s ⊙ x_0 = (0.5, 0), b = s, m_{-1} = 0
    h = [max(0.3 * 0.5 + 0.05, 0.0), max(-0.4 * 0.5 - 0.1, 0.0), max(0.25 * 0.5 + 0.2, 0.0)]  # (0.2, 0, 0.325)
    z = [0.7 * h[0] + 0.3 * h[2] + 0.1, -0.2 * h[0] + 0.6 * h[2] - 0.05]
    k = [math.exp(-1.0 / t) for t in tau_m]
    m0 = [5.0 * (1 - k[i]) * 1.7159 * math.tanh(2 / 3 * z[i]) for i in range(2)]
    assert out.memory[0, 0].tolist() == pytest.approx(m0, abs=1e-13)


@pytest.mark.parametrize("mistake", ["before_leak", "kappa_on_input", "contiguous", "same_step_readout"])
def test_reference_details_are_the_authors_and_each_mistake_is_detectable(mistake):
    # 4 inputs in 2 branches of 2 synapses; long memory time constants (κ_m near 1) where a misplaced κ_m shows only
    # as a small error; float64 with a tight tolerance
    g = torch.Generator().manual_seed(1)
    elm = ELM(4, 3, memory=3, mlp_hidden=5, branches=2, synapses_per_branch=2, tau_m_min=100.0, tau_m_max=500.0,
              dt=10.0, backend="torch").double()
    with torch.no_grad():
        for p in elm.parameters():
            p.copy_(torch.randn(p.shape, generator=g, dtype=torch.float64) * 0.7)
        elm.w_s_raw.copy_(torch.tensor([0.5, -0.2, 1.1, 0.7]))  # one negative: relu'd to 0
    T = 6
    x = torch.rand(T, 1, 4, generator=g, dtype=torch.float64)
    W1, b1 = elm.mlp[0].weight.tolist(), elm.mlp[0].bias.tolist()
    W2, b2 = elm.mlp[1].weight.tolist(), elm.mlp[1].bias.tolist()
    args = (x[:, 0].tolist(), elm.w_s_raw.tolist(), elm.tau_s.tolist(), elm.tau_m(torch.float64).tolist(), 10.0, 5.0,
            W1, b1, W2, b2, elm.readout.weight.tolist(), elm.readout.bias.tolist(), 2)
    y = elm(x)[:, 0]
    want, _, _ = _python_elm(*args)
    torch.testing.assert_close(y, torch.tensor(want, dtype=torch.float64), rtol=0, atol=1e-12)
    wrong, _, _ = _python_elm(*args, **{mistake: False})
    assert (y - torch.tensor(wrong, dtype=torch.float64)).abs().max() > 1e-6


def test_trace_takes_the_weighted_input_before_the_leak():
    elm = ELM(3, 1, memory=2, tau_s=4.0, backend="torch").double()
    with torch.no_grad():
        elm.w_s_raw.copy_(torch.tensor([0.5, 2.0, -1.0]))
    x = torch.zeros(3, 1, 3, dtype=torch.float64)
    x[0] = 1.0
    _, state = elm(x, elm.initial_state(1, x))
    k = math.exp(-1.0 / 4.0)
    torch.testing.assert_close(state["s"][0], torch.tensor([0.5 * k * k, 2.0 * k * k, 0.0], dtype=torch.float64))


def test_streaming_in_chunks_equals_one_run():
    torch.manual_seed(0)
    elm = ELM(6, 4, memory=5, backend="torch").double()
    x = torch.rand(10, 3, 6, dtype=torch.float64)
    full = elm.run(x, record=True)
    y1, st = elm(x[:4], elm.initial_state(3, x))
    y2, st = elm(x[4:], st)
    torch.testing.assert_close(torch.cat([y1, y2]), full.output)
    torch.testing.assert_close(st["m"], full.memory[-1])
    y_step, st1 = elm.step(x[0], elm.initial_state(3, x))
    torch.testing.assert_close(y_step, full.output[0])


def test_memory_recorded_on_request_only_and_stacking_works():
    elm = ELM(5, 7, memory=4, backend="torch")
    x = torch.rand(8, 2, 5)
    assert elm.run(x).memory is None
    assert elm.run(x, record=True).memory.shape == (8, 2, 4)
    second = ELM(7, 3, memory=4, backend="torch")
    assert second(elm(x)).shape == (8, 2, 3)
    assert elm(x[:0]).shape == (0, 2, 7)


def test_tau_m_is_log_spaced_and_learnable_only_when_asked():
    elm = ELM(2, 1, memory=4, tau_m_min=1.0, tau_m_max=1000.0, backend="torch")
    torch.testing.assert_close(elm.tau_m(), torch.tensor([1.0, 10.0, 100.0, 1000.0]), rtol=1e-4, atol=1e-4)
    assert not elm.tau_m_raw.requires_grad
    learn = ELM(2, 1, memory=4, learn_tau_m=True, backend="torch")
    learn(torch.rand(5, 2, 2)).sum().backward()
    assert learn.tau_m_raw.grad is not None and learn.tau_m_raw.grad.abs().sum() > 0


def test_random_routing_is_kept_in_the_state_dict_and_reaches_every_input():
    elm = ELM(10, 2, memory=3, branches=4, synapses_per_branch=5, routing="random", backend="torch")
    assert set(elm.synapse_index.tolist()) == set(range(10))
    other = ELM(10, 2, memory=3, branches=4, synapses_per_branch=5, routing="random", backend="torch")
    other.load_state_dict(elm.state_dict())
    assert torch.equal(other.synapse_index, elm.synapse_index)
    x = torch.rand(4, 2, 10)
    torch.testing.assert_close(other(x), elm(x))
    assert "synapse_index" in elm.state_dict()


def test_window_routing_overlaps_and_pads_past_the_last_input():
    index, mask = make_routing("window", 5, 3, 3)  # stride 2: [0,1,2], [2,3,4], [4,(5),(6)]
    assert index.tolist() == [0, 1, 2, 2, 3, 4, 4, 4, 4]
    assert mask.tolist() == [1, 1, 1, 1, 1, 1, 1, 0, 0]
    elm = ELM(5, 1, memory=2, branches=3, synapses_per_branch=3, routing="window", backend="torch").double()
    x = torch.rand(2, 1, 5, dtype=torch.float64)
    routed = elm.route(x)
    assert torch.equal(routed[..., 7:], torch.zeros(2, 1, 2, dtype=torch.float64))
    assert torch.equal(routed[..., 3], x[..., 2])


@pytest.mark.parametrize("kwargs, match", [
    (dict(branches=4, synapses_per_branch=2, routing="window", in_features=5), "branches \\[3\\] have no connected"),
    (dict(branches=2, synapses_per_branch=3, routing="window", in_features=8), "inputs \\[3, 7\\]"),
    (dict(branches=2, synapses_per_branch=3, routing="random", in_features=8), "cannot reach all 8 inputs"),
    (dict(branches=3, in_features=4), "routing: branches × synapses_per_branch = 3 differs"),
    (dict(tau_m_min=5.0, tau_m_max=5.0), "tau_m_min < tau_m_max"),
    (dict(tau_m_min=10.0, tau_m_max=2.0), "tau_m_min < tau_m_max"),
    (dict(memory=0), "memory: expected a positive int"),
    (dict(activation="tanh"), "activation"),
    (dict(routing="grid"), "routing: expected one of"),
])
def test_bad_configurations_raise_naming_the_argument(kwargs, match):
    kwargs = {"in_features": 4, **kwargs}
    with pytest.raises((ValueError, RoutingError), match=match):
        ELM(out_features=2, **kwargs)


def test_unrouted_inputs_are_accepted_when_allowed():
    elm = ELM(8, 1, memory=2, branches=2, synapses_per_branch=3, routing="random", allow_unrouted=True)
    assert elm.synapse_index.shape == (6,)


def test_wrong_input_and_state_raise_before_any_work():
    elm = ELM(4, 2, memory=3, backend="torch")
    with pytest.raises(ValueError, match="in_features=4"):
        elm(torch.rand(3, 2, 5))
    with pytest.raises(ValueError, match="in_features=4"):
        elm(torch.rand(3, 4))
    with pytest.raises(TypeError, match="floating-point"):
        elm(torch.ones(3, 2, 4, dtype=torch.long))
    with pytest.raises(ValueError, match="state\\['m'\\] must be a tensor of shape \\(2, 3\\)"):
        elm(torch.rand(3, 2, 4), {"s": torch.zeros(2, 4), "m": torch.zeros(2, 2)})
    with pytest.raises(ValueError, match="keys"):
        elm(torch.rand(3, 2, 4), {"s": torch.zeros(2, 4)})


def test_energy_counter_reports_synaptic_ops_and_mlp_macs_by_hand_count():
    from snn.energy import count_operations

    elm = ELM(4, 3, memory=2, mlp_hidden=5, branches=2, synapses_per_branch=3, routing="window",
              backend="torch").eval()  # stride 2: branch 0 reads inputs 0,1,2; branch 1 reads 2,3,(pad)
    x = torch.zeros(5, 2, 4)
    x[0, 0, 2] = 1.0  # input 2 has two synapses
    x[1, 1, 0] = 1.0
    x[3, 0, 3] = 1.0
    counter = count_operations(elm, [(x, torch.zeros(2, dtype=torch.long))])
    rows = {r.name: r for r in (counter.layers.values() if isinstance(counter.layers, dict) else counter.layers)}
    syn = next(r for r in rows.values() if r.kind == "elm_synapse")
    mlp = next(r for r in rows.values() if r.kind == "elm_mlp")
    assert syn.synops.sum() == pytest.approx(2 + 1 + 1)
    # MLP (2 branches + 2 memory) -> 5 -> 2, readout 2 -> 3: 4*5 + 5*2 + 2*3 = 36 MACs per sample and step
    assert elm.mlp_macs_per_step() == 36
    assert mlp.macs.sum() == pytest.approx(36 * 5 * 2)
