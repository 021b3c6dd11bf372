"""NIR export/import: round trips per layer and for the delay network, the discretisation against a hand-written
Euler loop of NIR's equations, agreement with Norse and snnTorch on the same weights and inputs, and clear errors."""
from __future__ import annotations

import warnings

import h5py
import nir
import numpy as np
import pytest
import torch
from torch import nn

import snn
from snn.interop import NIRConversionError, NIRExportWarning, NIRFormatError, from_nir, read_nir, to_nir, write_nir
from snn.interop.nir_network import DelayBank
from snn.layers import LearnableDelay, PerStep, SequenceDropout
from snn.models import DelayNet, RecurrentSNN, SpikingMLP

pytestmark = pytest.mark.filterwarnings("ignore::snn.interop.NIRExportWarning")


def _spikes(T: int, B: int, *shape: int, p: float = 0.3, seed: int = 0, dtype=torch.float32) -> torch.Tensor:
    g = torch.Generator().manual_seed(seed)
    return (torch.rand((T, B, *shape), generator=g) < p).to(dtype)


def _round_trip(model: nn.Module, dt: float = 1e-3, dtype=torch.float32, **kw) -> nn.Module:
    return from_nir(to_nir(model, dt, **kw), dt, dtype=dtype)


def _scaled(model: nn.Module, factor: float) -> nn.Module:
    with torch.no_grad():
        for m in model.modules():
            if isinstance(m, (nn.Linear, nn.Conv1d, nn.Conv2d)):
                m.weight.mul_(factor)
    return model.eval()


# ---------------------------------------------------------------------------------------------- round trips per layer
@pytest.mark.parametrize("layer", [
    lambda: snn.LIF(tau=2.5),
    lambda: snn.LIF(tau=4.0, decay_input=False, v_threshold=0.8, v_reset=-0.1),
    lambda: snn.LIF(tau=torch.linspace(1.5, 6.0, 16)),
    lambda: snn.ParametricLIF(init_tau=3.0, shape=(16,)),
    lambda: snn.IF(v_threshold=1.3),
    lambda: snn.LI(tau=3.0, decay_input=False),
], ids=["lif", "lif_no_decay_input", "lif_per_neuron_tau", "plif", "if", "li"])
@pytest.mark.parametrize("bias", [True, False], ids=["affine", "linear"])
def test_round_trip_linear_and_neuron_gives_same_output(layer, bias):
    torch.manual_seed(1)
    model = _scaled(nn.Sequential(nn.Linear(8, 16, bias=bias), layer()), 3.0)
    graph = to_nir(model, 1e-3)
    assert isinstance(graph.nodes["0"], nir.Affine if bias else nir.Linear)
    x = _spikes(40, 4, 8)
    y = model(x)
    assert torch.equal(from_nir(graph, 1e-3)(x), y)
    if not isinstance(model[1], snn.LI):
        assert 0 < y.mean() < 1  # the comparison covers spikes and silences


def test_round_trip_conv_pool_flatten_network():
    torch.manual_seed(2)
    model = _scaled(nn.Sequential(
        PerStep(nn.Conv2d(2, 4, 3, padding=1)), snn.LIF(tau=2.0),
        PerStep(nn.AvgPool2d(2, divisor_override=1)),            # NIR SumPool2d
        PerStep(nn.Conv2d(4, 4, 3, stride=2, padding=1, bias=False)), snn.IF(),
        PerStep(nn.AvgPool2d(2)),
        PerStep(nn.Flatten()), nn.Linear(4, 3), snn.LIF(tau=2.0)), 4.0)
    with torch.no_grad():
        model[7].weight.abs_()
    graph = to_nir(model, 1e-3, input_shape=(2, 8, 8))
    kinds = [type(graph.nodes[k]).__name__ for k in ("0", "2", "3", "5", "6")]
    assert kinds == ["Conv2d", "SumPool2d", "Conv2d", "AvgPool2d", "Flatten"]
    x = _spikes(20, 3, 2, 8, 8)
    y = model(x)
    assert y.sum() > 0
    assert torch.equal(from_nir(graph, 1e-3)(x), y)


def test_round_trip_conv1d_and_lppool_as_sum_pool():
    torch.manual_seed(3)
    model = _scaled(nn.Sequential(PerStep(nn.Conv1d(3, 4, 5, dilation=2)), snn.LIF(tau=2.0),
                                  PerStep(nn.Unflatten(1, (4, 1))), PerStep(nn.LPPool2d(1, (1, 2)))), 2.0)
    with pytest.raises(NIRConversionError, match="Unflatten"):
        to_nir(model, 1e-3, input_shape=(3, 16))
    model = model[:2]
    graph = to_nir(model, 1e-3, input_shape=(3, 16))
    assert isinstance(graph.nodes["0"], nir.Conv1d)
    x = _spikes(20, 3, 3, 16)
    assert torch.equal(from_nir(graph, 1e-3)(x), model(x))
    pool = nn.Sequential(PerStep(nn.LPPool2d(1, 2)), snn.IF(v_threshold=2.0))
    graph = to_nir(pool, 1e-3, input_shape=(2, 4, 4))
    assert isinstance(graph.nodes["0"], nir.SumPool2d)
    x = _spikes(10, 2, 2, 4, 4, p=0.6)
    assert torch.equal(from_nir(graph, 1e-3)(x), pool(x))


def _randomise_bn(bn: nn.Module, seed: int) -> None:
    g = torch.Generator().manual_seed(seed)
    with torch.no_grad():
        for t, lo, hi in ((bn.running_mean, -0.3, 0.3), (bn.running_var, 0.3, 2.0), (bn.weight, 0.5, 1.5),
                          (bn.bias, -0.2, 0.4)):
            t.copy_(torch.rand(t.shape, generator=g, dtype=t.dtype) * (hi - lo) + lo)


def test_batchnorm_folds_into_linear_and_conv():
    torch.manual_seed(4)
    model = nn.Sequential(nn.Linear(6, 12, bias=False), PerStep(nn.BatchNorm1d(12)), snn.LIF(tau=2.0),
                          nn.Linear(12, 2 * 3 * 3), PerStep(nn.Unflatten(1, (2, 3, 3))),
                          ).double()
    _randomise_bn(model[1].module, 0)
    model = _scaled(model, 3.0)
    conv = nn.Sequential(PerStep(nn.Conv2d(2, 3, 3, padding=1)), PerStep(nn.BatchNorm2d(3)), snn.LIF(tau=2.0)).double()
    _randomise_bn(conv[1].module, 1)
    conv = _scaled(conv, 3.0)
    head = model[:3]
    graph = to_nir(head, 1e-3)
    assert [type(n).__name__ for n in graph.nodes.values()] == ["Input", "Affine", "LIF", "Output"]
    x = _spikes(30, 4, 6, dtype=torch.float64)
    y = head(x)
    assert 0 < y.mean() < 1
    assert torch.equal(from_nir(graph, 1e-3, dtype=torch.float64)(x), y)
    x2 = _spikes(20, 2, 2, 3, 3, dtype=torch.float64)
    y2 = conv(x2)
    assert 0 < y2.mean() < 1
    assert torch.equal(_round_trip(conv, dtype=torch.float64, input_shape=(2, 3, 3))(x2), y2)


def test_learnable_delay_exports_as_delay_branches():
    torch.manual_seed(5)
    syn = LearnableDelay(6, 5, max_delay=7, kernel_count=2, version="max", sigma=0.0, bias=True)
    syn.to_integer_delays()
    model = _scaled(nn.Sequential(syn, snn.LIF(tau=2.0)), 2.0)
    graph = to_nir(model, 1e-2)
    sub = graph.nodes["0"]
    assert isinstance(sub, nir.NIRGraph)
    delays = sorted(float(n.delay[0]) for n in sub.nodes.values() if isinstance(n, nir.Delay))
    present = sorted({int(d) for d in syn.rounded_delays().flatten()} - {0})
    assert delays == pytest.approx([d * 1e-2 for d in present])
    x = _spikes(25, 3, 6)
    y = model(x)  # [T + R, B, 5]: the layer appends R zero steps
    net = from_nir(graph, 1e-2)
    xp = torch.cat([x, x.new_zeros(syn.right_pad, 3, 6)])
    assert torch.equal(net(xp), y)
    assert y.sum() > 0
    bank = net.layers["0"].layers["delay_bank"]  # the branches run as one convolution over time
    assert isinstance(bank, DelayBank) and bank.delays == sorted({int(d) for d in syn.rounded_delays().flatten()})
    a, state = bank.stream(xp[:9], None)
    b, _ = bank.stream(xp[9:], state)
    torch.testing.assert_close(torch.cat([a, b]), bank(xp), rtol=0, atol=1e-6)


def test_gaussian_delays_export_rounded_with_a_warning():
    torch.manual_seed(6)
    syn = LearnableDelay(4, 3, max_delay=5, sigma=1.5)
    model = nn.Sequential(syn, snn.LIF(tau=2.0), SequenceDropout(0.3))
    with pytest.warns(NIRExportWarning, match=r"rounded integer delays: 0.*dropped.*2 \(SequenceDropout\)|dropped.*2 \(SequenceDropout\).*rounded integer delays: 0"):
        graph = to_nir(model, 1e-3)
    syn.to_integer_delays()
    x = _spikes(20, 2, 4)
    y = model.eval()(x)
    assert torch.equal(from_nir(graph, 1e-3)(torch.cat([x, x.new_zeros(syn.right_pad, 2, 4)])), y)


# ---------------------------------------------------------------------------------------------- the delay network
def _trained_shape_delaynet(dtype=torch.float64) -> DelayNet:
    """The main job's network (examples/configs/spoken_digits.yaml: 70 inputs, 2 x 128, max_delay 25, tau 20 ms at
    10 ms bins, 20 classes) with a trained-looking state: spread positions, moved BatchNorm statistics."""
    torch.manual_seed(7)
    model = DelayNet(70, 20, hidden=128, layers=2, max_delay=25, tau=2.0, dropout=0.2).to(dtype)
    for i, bn in enumerate(model.norms):
        _randomise_bn(bn, 10 + i)
    with torch.no_grad():
        for s in model.synapses:
            s.weight.mul_(2.0)
            s.positions.add_(torch.randn_like(s.positions) * 3).clamp_(-12, 12)
    return model.eval()


def _hidden_spikes(model: nn.Module, kind: type, x: torch.Tensor, run) -> list[torch.Tensor]:
    seen = []
    hooks = [m.register_forward_hook(lambda _m, _i, o: seen.append(o[0] if isinstance(o, tuple) else o))
             for m in model.modules() if type(m) is kind]
    try:
        out = run(x)
    finally:
        for h in hooks:
            h.remove()
    return seen, out


def test_delaynet_round_trip_same_spikes_and_readout():
    model = _trained_shape_delaynet()
    graph = to_nir(model, 1e-2)
    assert [type(n).__name__ for n in graph.nodes.values()] == [
        "Input", "NIRGraph", "LIF", "NIRGraph", "LIF", "NIRGraph", "LI", "Output"]
    net = from_nir(graph, 1e-2, dtype=torch.float64)
    T, R = 60, model.right_pad
    x = _spikes(T, 4, 70, p=0.1, dtype=torch.float64)
    with model.evaluation():
        ref_spikes, ref_out = _hidden_spikes(model, snn.LIF, x, model)
    spikes, out = _hidden_spikes(net, snn.LIF, torch.cat([x, x.new_zeros(R, 4, 70)]), net)
    assert len(spikes) == 2 and all(0.01 < s.mean() < 0.5 for s in ref_spikes)
    for a, b in zip(ref_spikes, spikes):
        assert torch.equal(a[:T + R], b[:T + R])
    assert torch.allclose(out, ref_out[:T + R], rtol=0, atol=1e-12)


def test_delaynet_float32_round_trip_agrees_up_to_rare_threshold_ties():
    model = _trained_shape_delaynet(torch.float32)
    net = from_nir(to_nir(model, 1e-2), 1e-2)
    T, R = 60, model.right_pad
    x = _spikes(T, 8, 70, p=0.1)
    with model.evaluation():
        ref, _ = _hidden_spikes(model, snn.LIF, x, model)
    ours, _ = _hidden_spikes(net, snn.LIF, torch.cat([x, x.new_zeros(R, 8, 70)]), net)
    # BatchNorm folded into the weights rounds differently in float32: a spike flips only where a membrane sits
    # within float32 rounding of the threshold (the flip then propagates to later steps of that neuron)
    flips = sum(int((a[:T + R] != b).sum()) for a, b in zip(ref, ours))
    total = sum(b.numel() for b in ours)
    assert flips <= 1e-3 * total


def test_snn_mlp_round_trip_with_folded_batchnorm():
    torch.manual_seed(8)
    model = SpikingMLP(20, 5, hidden=32, layers=2, tau=2.0, dropout=0.3).double()
    for i, bn in enumerate(model.norms):
        _randomise_bn(bn, 20 + i)
    model = _scaled(model, 2.0)
    graph = to_nir(model, 1e-2)
    assert [type(n).__name__ for n in graph.nodes.values()] == [
        "Input", "Affine", "LIF", "Affine", "LIF", "Affine", "LI", "Output"]
    net = from_nir(graph, 1e-2, dtype=torch.float64)
    x = _spikes(50, 4, 20, dtype=torch.float64)
    ref_spikes, ref = _hidden_spikes(model, snn.LIF, x, model)
    spikes, out = _hidden_spikes(net, snn.LIF, x, net)
    assert all(0.02 < s.mean() < 0.6 for s in ref_spikes)
    assert all(torch.equal(a, b) for a, b in zip(ref_spikes, spikes))
    torch.testing.assert_close(out, ref, rtol=0, atol=1e-12)


def test_rsnn_round_trip_runs_the_recurrence_as_a_subgraph():
    torch.manual_seed(9)
    model = _scaled(RecurrentSNN(12, 5, hidden=24, layers=2, tau=2.0), 2.5)
    graph = to_nir(model, 1e-2)
    sub = graph.nodes["recurrent_layers_0"]
    assert isinstance(graph.nodes["recurrent_layers_0_input"], nir.Affine)
    assert set(sub.edges) == {("input", "lif"), ("lif", "w_rec"), ("w_rec", "lif"), ("lif", "output")}
    net = from_nir(graph, 1e-2)
    x = _spikes(40, 3, 12)
    ref_spikes, ref = _hidden_spikes(model, snn.LIF, x, model)
    out = net(x)
    assert model.recurrent_layers[0](x).mean() > 0.05
    torch.testing.assert_close(out, ref, rtol=0, atol=1e-6)


# ---------------------------------------------------------------------------------------------- discretisation
def _euler(node, I: np.ndarray, dt: float):
    """NIR's equations stepped by forward Euler in float64, starting from v_reset (our resting state)."""
    kind = type(node).__name__
    out = []
    if kind == "CubaLIF":
        cur = np.zeros(I.shape[1:])
    v = np.broadcast_to(np.asarray(node.v_reset if hasattr(node, "v_reset") else node.v_leak, float), I.shape[1:]).copy()
    for t in range(I.shape[0]):
        if kind == "IF":
            v = v + dt * node.r * I[t]
        elif kind == "CubaLIF":
            cur = cur + dt / node.tau_syn * (-cur + node.w_in * I[t])
            v = v + dt / node.tau_mem * (node.v_leak - v + node.r * cur)
        else:
            v = v + dt / node.tau * (node.v_leak - v + node.r * I[t])
        if kind == "LI":
            out.append(v.copy())
            continue
        z = v >= node.v_threshold
        v = np.where(z, node.v_reset, v)
        out.append(z.astype(float))
    return np.stack(out)


_N = 12
_RNG = np.random.default_rng(0)


@pytest.mark.parametrize("node", [
    nir.LIF(tau=np.full(_N, 3e-3), r=np.ones(_N), v_leak=np.zeros(_N), v_threshold=np.ones(_N), v_reset=np.zeros(_N)),
    nir.LIF(tau=np.full(_N, 4e-3), r=np.full(_N, 4.0), v_leak=np.zeros(_N), v_threshold=np.ones(_N), v_reset=np.zeros(_N)),
    nir.LIF(tau=_RNG.uniform(1.5e-3, 8e-3, _N), r=_RNG.uniform(0.5, 3.0, _N), v_leak=_RNG.uniform(-0.2, 0.5, _N),
            v_threshold=np.full(_N, 0.7), v_reset=np.full(_N, -0.1)),
    nir.LI(tau=_RNG.uniform(1.5e-3, 8e-3, _N), r=_RNG.uniform(0.5, 3.0, _N), v_leak=_RNG.uniform(-0.2, 0.5, _N)),
    nir.IF(r=np.full(_N, 600.0), v_threshold=np.full(_N, 1.1), v_reset=np.zeros(_N)),
    nir.CubaLIF(tau_syn=np.full(_N, 2e-3), tau_mem=_RNG.uniform(2e-3, 6e-3, _N), r=np.full(_N, 2.0),
                v_leak=np.zeros(_N), v_threshold=np.ones(_N), v_reset=np.zeros(_N), w_in=np.full(_N, 1.5)),
], ids=["lif_r1", "lif_r_tau", "lif_general", "li_general", "if_r", "cubalif"])
def test_imported_neuron_follows_nir_euler_step(node):
    dt = 1e-3
    I = _RNG.normal(0.4, 1.0, (80, 3, _N))
    ref = _euler(node, I, dt)
    graph = nir.NIRGraph.from_list(node)
    got = from_nir(graph, dt, dtype=torch.float64)(torch.as_tensor(I)).numpy()
    if isinstance(node, nir.LI):
        np.testing.assert_allclose(got, ref, rtol=0, atol=1e-12)
    else:
        assert 0.02 < ref.mean() < 0.9
        np.testing.assert_array_equal(got, ref)


@pytest.mark.parametrize("neuron", [snn.LIF(tau=3.0), snn.LIF(tau=5.0, decay_input=False, v_reset=0.2),
                                    snn.LI(tau=2.5), snn.IF()], ids=["lif", "lif_no_decay_input", "li", "if"])
def test_exported_neuron_parameters_state_the_euler_mapping(neuron):
    dt = 2e-3
    node = to_nir(nn.Sequential(nn.Linear(3, 4), neuron), dt).nodes["1"]
    if isinstance(neuron, snn.IF):
        assert isinstance(node, nir.IF)
        np.testing.assert_allclose(node.r, 1.0 / dt)  # H = V + dt·R·I
        return
    tau = float(neuron.tau)
    np.testing.assert_allclose(node.tau, tau * dt)
    np.testing.assert_allclose(node.r, 1.0 if neuron.decay_input else tau)
    np.testing.assert_allclose(node.v_leak, neuron.v_reset)


# ---------------------------------------------------------------------------------------------- against the peers
def _lif_mlp(decay_input: bool, seed: int = 11) -> nn.Sequential:
    torch.manual_seed(seed)
    model = nn.Sequential(nn.Linear(10, 32), snn.LIF(tau=3.0, decay_input=decay_input), nn.Linear(32, 4),
                          snn.LIF(tau=3.0, decay_input=decay_input))
    with torch.no_grad():
        model[0].bias.add_(0.2)
    return _scaled(model, 8.0 if decay_input else 3.0)


def _step_by_step(module, x: torch.Tensor) -> torch.Tensor:
    state, outs = None, []
    for t in range(x.shape[0]):
        y, state = module(x[t], state)
        outs.append(y)
    return torch.stack(outs)


def test_norse_runs_our_exported_lif_mlp_with_the_same_spikes():
    import norse.torch as norse

    model = _lif_mlp(decay_input=True)  # Norse's LIFBox ignores r (it warns), so R = 1: decay_input=True
    x = _spikes(100, 16, 10)
    ours = model(x)
    peer = _step_by_step(norse.from_nir(to_nir(model, 1e-3), dt=1e-3), x)
    assert ours.sum() > 100
    assert torch.equal(peer, ours)


def _rsnn_layer_then_lif() -> nn.Sequential:
    torch.manual_seed(14)
    rsnn = RecurrentSNN(10, 4, hidden=24, layers=1, tau=2.0)
    # snnTorch imports no LI: the peer comparison ends on a spiking layer
    return _scaled(nn.Sequential(rsnn.recurrent_layers[0], rsnn.output, snn.LIF(tau=2.0, decay_input=False)), 2.5)


@pytest.mark.parametrize("make", [lambda: _lif_mlp(False), lambda: _lif_mlp(True), _rsnn_layer_then_lif],
                         ids=["r_tau_exact", "r1_threshold_rescaled", "recurrent_layer_as_rleaky"])
def test_snntorch_runs_our_exported_network_with_the_same_spikes(make):
    from snntorch.import_nir import import_from_nir

    model = make()
    x = _spikes(100, 16, 10)
    ours = model(x)
    # snnTorch's importer fixes dt = 1e-4 s; with R = 1 it divides the threshold by dt/tau instead of scaling inputs
    peer = _step_by_step(import_from_nir(to_nir(model, 1e-4)), x)
    assert ours.mean() > 0.01
    assert torch.equal(peer, ours)


def test_norse_exported_graph_reproduces_norse():
    import norse.torch as norse

    torch.manual_seed(12)
    dt = 1.0  # Norse's to_nir writes tau = dt / tau_mem_inv (norse/norse#411): correct only for dt = 1
    model = norse.SequentialState(
        nn.Linear(10, 16), norse.LIFBoxCell(norse.LIFBoxParameters(tau_mem_inv=torch.tensor(1 / 3.0)), dt=dt),
        nn.Linear(16, 16), norse.IAFCell(norse.IAFParameters(v_th=torch.tensor(1.5)), dt=dt),
        nn.Linear(16, 4), norse.LIBoxCell(norse.LIBoxParameters(tau_mem_inv=torch.tensor(0.25)), dt=dt))
    with torch.no_grad():
        model[0].weight.mul_(5)
        model[2].weight.mul_(2)
    x = _spikes(60, 8, 10)
    ref = _step_by_step(model, x)
    graph = norse.to_nir(model, torch.randn(1, 10), dt=dt)
    net = from_nir(graph, dt)
    spikes, out = _hidden_spikes(net, snn.LIF, x, net)
    assert spikes[0].mean() > 0.05
    torch.testing.assert_close(out, ref, rtol=0, atol=1e-6)


def _snntorch_models():
    import snntorch as sn

    kw = dict(init_hidden=True, reset_mechanism="zero", reset_delay=False)  # NIR resets to v_reset, no delay

    def readout():
        return sn.Leaky(beta=torch.full((4,), 0.7), threshold=torch.ones(4), output=True, **kw)

    return {
        "leaky": lambda: nn.Sequential(nn.Linear(10, 16), sn.Leaky(beta=torch.full((16,), 0.8),
                                                                   threshold=torch.ones(16), **kw),
                                       nn.Linear(16, 4), readout()),
        "synaptic": lambda: nn.Sequential(nn.Linear(10, 16), sn.Synaptic(alpha=torch.full((16,), 0.6),
                                                                         beta=torch.full((16,), 0.8),
                                                                         threshold=torch.ones(16), **kw),
                                          nn.Linear(16, 4), readout()),
        "rleaky": lambda: nn.Sequential(nn.Linear(10, 16), sn.RLeaky(beta=torch.full((16,), 0.8),
                                                                     threshold=torch.ones(16), linear_features=16,
                                                                     all_to_all=True, **kw),
                                        nn.Linear(16, 4), readout()),
    }


@pytest.mark.parametrize("kind", ["leaky", "synaptic", "rleaky"])
def test_snntorch_exported_graph_reproduces_snntorch(kind):
    from snntorch import utils as sn_utils
    from snntorch.export_nir import export_to_nir

    torch.manual_seed(13)
    model = _snntorch_models()[kind]()
    with torch.no_grad():
        model[0].weight.mul_(3)
        model[2].weight.mul_(3)
        if kind == "rleaky":
            model[1].recurrent.weight.mul_(2)
    x = _spikes(60, 8, 10)
    sn_utils.reset(model)
    ref = torch.stack([model(x[t])[0] for t in range(x.shape[0])])
    graph = export_to_nir(model, torch.randn(1, 10), ignore_dims=[0])
    net = from_nir(graph, 1e-4)  # snnTorch's exporter uses dt = 1e-4 s
    hidden, out = _hidden_spikes(net, snn.LIF, x, net)
    assert hidden[0].mean() > 0.05 and ref.sum() > 10
    assert torch.equal(out, ref)
    if kind == "rleaky":
        assert net.recurrent


def _sj_net(kind: str) -> nn.Sequential:
    from spikingjelly.activation_based import functional, layer, neuron

    torch.manual_seed(15)
    if kind == "spikingjelly":
        net = nn.Sequential(layer.Linear(10, 16), neuron.LIFNode(tau=3.0, decay_input=False), layer.Linear(16, 16),
                            neuron.IFNode(), layer.Linear(16, 4), neuron.ParametricLIFNode(init_tau=2.5))
        functional.set_step_mode(net, "m")
    else:
        net = nn.Sequential(nn.Linear(10, 16), snn.LIF(tau=3.0, decay_input=False), nn.Linear(16, 16), snn.IF(),
                            nn.Linear(16, 4), snn.LIF(tau=2.5))
    return _scaled(net, 4.0)


def _run_sj(net: nn.Module, x: torch.Tensor) -> torch.Tensor:
    from spikingjelly.activation_based import functional

    functional.reset_net(net)
    y = net(x)
    return y[0] if isinstance(y, tuple) else y


def test_spikingjelly_exported_graph_reproduces_spikingjelly():
    from spikingjelly.activation_based.nir_exchange import export_to_nir

    net = _sj_net("spikingjelly")
    x = _spikes(60, 8, 10)
    ref = _run_sj(net, x)
    ours = from_nir(export_to_nir(net, x, dt=1e-3), 1e-3)
    hidden, out = _hidden_spikes(ours, snn.IF, x, ours)
    assert hidden[0].mean() > 0.02 and ref.mean() > 0.02
    assert torch.equal(out, ref)


def test_spikingjelly_runs_our_exported_network_with_the_same_spikes():
    from spikingjelly.activation_based.nir_exchange import import_from_nir

    model = _sj_net("snn")
    x = _spikes(60, 8, 10)
    ours = model(x)
    peer = _run_sj(import_from_nir(to_nir(model, 1e-3), dt=1e-3, step_mode="m"), x)
    assert ours.mean() > 0.02
    assert torch.equal(peer, ours)


# ---------------------------------------------------------------------------------------------- files and errors
def test_file_round_trip_keeps_the_network(tmp_path):
    model = _lif_mlp(decay_input=False)
    path = write_nir(to_nir(model, 1e-3), tmp_path / "sub" / "m.nir")
    x = _spikes(30, 2, 10)
    assert torch.equal(from_nir(path, 1e-3)(x), model(x))
    assert torch.equal(from_nir(str(path), 1e-3)(x), model(x))
    assert isinstance(read_nir(path), nir.NIRGraph)


@pytest.mark.parametrize("module, match", [
    (snn.LIF(tau=2.0, v_reset=None), r"1: LIF uses the soft \(subtractive\) reset"),
    (snn.AdaptiveLIF(tau=2.0, tau_adapt=20.0), r"1: AdaptiveLIF has no NIR neuron"),
    (nn.ReLU(), r"1: ReLU has no NIR node"),
    (PerStep(nn.MaxPool1d(2)), r"1: MaxPool1d has no NIR node"),
])
def test_unrepresentable_module_is_named_in_the_error(module, match):
    with pytest.raises(NIRConversionError, match=match):
        to_nir(nn.Sequential(nn.Linear(4, 4), module), 1e-3)


def test_attention_and_leading_batchnorm_are_errors():
    with pytest.raises(NIRConversionError, match="MultiheadAttention has no NIR node"):
        to_nir(nn.MultiheadAttention(4, 2), 1e-3, input_shape=(4,))
    with pytest.raises(NIRConversionError, match="0: BatchNorm can only be exported folded"):
        to_nir(nn.Sequential(PerStep(nn.BatchNorm1d(4)), nn.Linear(4, 2)), 1e-3, input_shape=(4,))


def test_imported_parts_export_again_but_an_imported_network_does_not():
    n = 4
    node = nir.LIF(tau=np.full(n, 2e-3), r=np.full(n, 0.5), v_leak=np.full(n, 0.1), v_threshold=np.ones(n),
                   v_reset=np.zeros(n))
    net = from_nir(nir.NIRGraph.from_list(nir.Affine(weight=np.eye(n) * 3, bias=np.zeros(n)), node), 1e-3)
    again = to_nir(nn.Sequential(*net.layers.values()), 1e-3)  # Linear, Chain(ElementwiseAffine, LIF)
    lif = next(v for v in again.nodes.values() if isinstance(v, nir.LIF))
    np.testing.assert_allclose(lif.r, node.r)
    np.testing.assert_allclose(lif.v_leak, node.v_leak)
    with pytest.raises(NIRConversionError, match="a network imported from NIR is not exported again"):
        to_nir(net, 1e-3, input_shape=(n,))


def test_export_warns_about_dropped_training_parts():
    model = nn.Sequential(nn.Linear(4, 4), snn.LIF(), nn.Dropout(0.5), nn.Linear(4, 2), snn.LI())
    with pytest.warns(NIRExportWarning, match=r"dropped \(identity at inference\): 2 \(Dropout\).*surrogate"):
        graph = to_nir(model, 1e-3)
    assert "2" not in graph.nodes


def test_bad_arguments_are_named():
    with pytest.raises(ValueError, match="dt: expected the step in seconds"):
        to_nir(nn.Linear(2, 2), 0)
    with pytest.raises(ValueError, match="dt: expected the step in seconds"):
        from_nir(nir.NIRGraph.from_list(nir.Linear(weight=np.ones((2, 2)))), -1.0)
    with pytest.raises(ValueError, match="input_shape: needed"):
        to_nir(nn.Sequential(PerStep(nn.Conv2d(1, 1, 3)), snn.LIF()), 1e-3)
    with pytest.raises(TypeError, match="graph: expected a nir.NIRGraph"):
        from_nir({"nodes": {}}, 1e-3)


def test_malformed_files_give_clear_errors(tmp_path):
    junk = tmp_path / "junk.nir"
    junk.write_bytes(b"definitely not hdf5")
    with pytest.raises(NIRFormatError, match="junk.nir: not a NIR file"):
        from_nir(junk, 1e-3)
    empty = tmp_path / "empty.nir"
    with h5py.File(empty, "w") as f:
        f.create_dataset("weights", data=np.ones(3))
    with pytest.raises(NIRFormatError, match="empty.nir: an HDF5 file but not a valid NIR graph"):
        from_nir(empty, 1e-3)
    with pytest.raises(FileNotFoundError, match="NIR file not found"):
        from_nir(tmp_path / "missing.nir", 1e-3)


def test_unsupported_nodes_and_parameters_are_named():
    n = 3
    with pytest.raises(NIRConversionError, match=r"i: NIR node type I is not supported"):
        from_nir(nir.NIRGraph.from_list(nir.I(r=np.ones(n))), 1e-3)
    per_neuron_threshold = nir.LIF(tau=np.full(n, 1e-3), r=np.ones(n), v_leak=np.zeros(n),
                                   v_threshold=np.array([1.0, 2.0, 1.0]), v_reset=np.zeros(n))
    with pytest.raises(NIRConversionError, match="lif: v_threshold must be one value"):
        from_nir(nir.NIRGraph.from_list(per_neuron_threshold), 1e-3)
    with pytest.raises(NIRConversionError, match="delay: Delay/dt must be whole time steps"):
        from_nir(nir.NIRGraph.from_list(nir.Delay(delay=np.array([1.5e-3, 2e-3]))), 1e-3)
    two_inputs = nir.NIRGraph(nodes={"a": nir.Input(np.array([2])), "b": nir.Input(np.array([2])),
                                     "o": nir.Output(np.array([2]))}, edges=[("a", "o"), ("b", "o")],
                              type_check=False)
    with pytest.raises(NIRFormatError, match="exactly one Input and one Output"):
        from_nir(two_inputs, 1e-3)


def test_imported_delay_node_shifts_each_feature_by_its_own_steps():
    delays = [0, 1, 3, 2]
    net = from_nir(nir.NIRGraph.from_list(nir.Delay(delay=np.array(delays) * 1e-3)), 1e-3)
    x = torch.randn(10, 2, 4)
    expected = torch.zeros_like(x)
    for f, d in enumerate(delays):
        expected[d:, :, f] = x[:10 - d, :, f]
    assert torch.equal(net(x), expected)
    a, state = net(x[:4], {})
    b, _ = net(x[4:], state)
    assert torch.equal(torch.cat([a, b]), expected)


def test_imported_network_streams_in_chunks():
    model = _lif_mlp(decay_input=True)
    net = from_nir(to_nir(model, 1e-3), 1e-3)
    x = _spikes(40, 3, 10)
    a, state = net(x[:15], {})
    b, _ = net(x[15:], state)
    assert torch.equal(torch.cat([a, b]), model(x))
    with warnings.catch_warnings():
        warnings.simplefilter("error")
        net(x)  # no state left behind, no warning
