"""snn_mlp and rsnn: forward and gradients against a direct re-implementation of their equations on the same weights,
rsnn against snnTorch's RLeaky, readout modes against hand computations, registration as model families."""
from __future__ import annotations

import math

import pytest
import torch
import torch.nn.functional as F
from torch import nn

from snn.config import load_config
from snn.models import RecurrentSNN, SpikingMLP, build_model
from snn.models.readout import time_scores


class _ATanSpike(torch.autograd.Function):
    """Θ(u) (Θ(0) = 1) with the ATan surrogate derivative α/2 / (1 + (π/2 α u)²), written out for the oracle."""

    @staticmethod
    def forward(ctx, u, alpha):
        ctx.save_for_backward(u)
        ctx.alpha = alpha
        return (u >= 0).to(u.dtype)

    @staticmethod
    def backward(ctx, g):
        (u,) = ctx.saved_tensors
        a = ctx.alpha
        return g * (a / 2) / (1 + (math.pi / 2 * a * u) ** 2), None


def _lif_loop(drive_fn, T, shape, tau, alpha, hard=True, v_th=1.0):
    """Hand-written LIF (decay_input=False, V_reset 0, detach_reset): H = V - V/τ + I; S = Θ(H - θ); reset."""
    v = torch.zeros(shape, dtype=torch.float64)
    s = torch.zeros(shape, dtype=torch.float64)
    out = []
    for t in range(T):
        h = v - v / tau + drive_fn(t, s)
        s = _ATanSpike.apply(h - v_th, alpha)
        v = h * (1 - s.detach()) if hard else h - v_th * s.detach()
        out.append(s)
    return torch.stack(out)


def _li_loop(x, tau):
    v = torch.zeros_like(x[0])
    out = []
    for t in range(x.shape[0]):
        v = v - v / tau + x[t]
        out.append(v)
    return torch.stack(out)


def _inputs(T=12, B=3, C=7, seed=0):
    g = torch.Generator().manual_seed(seed)
    return (torch.rand(T, B, C, generator=g) < 0.4).double()


def test_snn_mlp_matches_its_equations_forward_and_backward():
    torch.manual_seed(0)
    net = SpikingMLP(7, 4, hidden=6, layers=2, tau=2.5, readout_tau=3.0, surrogate_alpha=4.0, dropout=0.0,
                     batchnorm=True, backend="torch").double().eval()
    with torch.no_grad():
        for norm in net.norms:  # non-trivial BatchNorm statistics
            norm.running_mean.uniform_(-0.2, 0.2)
            norm.running_var.uniform_(0.5, 1.5)
            norm.weight.uniform_(0.5, 1.5)
        for syn in net.synapses:
            syn.weight.mul_(3.0)
    x, labels, lengths = _inputs(), torch.tensor([0, 3, 1]), torch.tensor([12, 7, 4])
    out = net(x, lengths)
    loss = net.loss(out, labels, lengths)
    loss.backward()

    s = x
    for syn, norm in zip(net.synapses, net.norms):
        drive = F.batch_norm(F.linear(s, syn.weight, syn.bias).reshape(-1, 6), norm.running_mean, norm.running_var,
                             norm.weight, norm.bias, False, 0.0, norm.eps).reshape(12, 3, 6)
        s = _lif_loop(lambda t, _prev, d=drive: d[t], 12, (3, 6), 2.5, 4.0)
    v = _li_loop(F.linear(s, net.output.weight, net.output.bias), 3.0)
    assert torch.allclose(out, v, atol=1e-12)
    p = torch.softmax(v, 2) * (torch.arange(12)[:, None] < lengths[None, :])[:, :, None]
    ref_loss = F.cross_entropy(p.sum(0), labels)
    assert torch.allclose(loss, ref_loss, atol=1e-12)
    params = [net.synapses[0].weight, net.synapses[1].weight, net.norms[0].weight, net.output.weight]
    ref_grads = torch.autograd.grad(ref_loss, params)
    for p_, g in zip(params, ref_grads):
        assert torch.allclose(p_.grad, g, rtol=1e-9, atol=1e-12)


@pytest.mark.parametrize("backend", ["torch", "numba"])
@pytest.mark.parametrize("hard", [True, False])
def test_rsnn_matches_its_equations_forward_and_backward(backend, hard):
    torch.manual_seed(1)
    net = RecurrentSNN(7, 4, hidden=5, layers=1, tau=3.0, surrogate_alpha=5.0, dropout=0.0,
                       v_reset=0.0 if hard else None, readout="max", backend=backend).double()
    layer = net.recurrent_layers[0]
    with torch.no_grad():
        layer.input.weight.mul_(4.0)
        layer.recurrent.weight.normal_(0, 0.8)
    x, labels, lengths = _inputs(seed=2), torch.tensor([2, 0, 1]), torch.tensor([12, 9, 3])
    out = net(x, lengths)
    loss = net.loss(out, labels, lengths)
    loss.backward()

    drive = F.linear(x, layer.input.weight, layer.input.bias)
    s = _lif_loop(lambda t, prev: drive[t] + prev @ layer.recurrent.weight.t(), 12, (3, 5), 3.0, 5.0, hard=hard)
    assert 0.05 < float(s.detach().mean()) < 0.95  # the recurrence and the reset are exercised
    v = _li_loop(F.linear(s, net.output.weight, net.output.bias), 3.0)
    assert torch.allclose(out, v, atol=1e-12)
    mask = torch.arange(12)[:, None] < lengths[None, :]
    ref_loss = F.cross_entropy(v.masked_fill(~mask[:, :, None], -math.inf).amax(0), labels)
    params = [layer.input.weight, layer.recurrent.weight, net.output.weight]
    for p_, g in zip(params, torch.autograd.grad(ref_loss, params)):
        assert torch.allclose(p_.grad, g, rtol=1e-9, atol=1e-12)


def test_rsnn_input_projections_are_event_driven_by_default_and_train_like_dense_ones(monkeypatch):
    from snn.layers import EventLinear, event_functional

    calls = []
    original = event_functional._apply
    monkeypatch.setattr(event_functional, "_apply", lambda *a: calls.append(1) or original(*a))
    grads = []
    for event in (True, False):
        torch.manual_seed(3)
        net = RecurrentSNN(7, 4, hidden=6, layers=2, tau=3.0, dropout=0.0, event_driven=event).double()
        kinds = {type(m) for layer in net.recurrent_layers for m in (layer.input, layer.recurrent)}
        assert kinds == ({EventLinear, nn.Linear} if event else {nn.Linear})
        for layer in net.recurrent_layers:
            if event:
                layer.input.threshold = 1.0  # 6 outputs: the default threshold would keep it dense
        x, labels, lengths = _inputs(seed=4), torch.tensor([2, 0, 1]), torch.tensor([12, 9, 3])
        net.loss(net(x, lengths), labels, lengths).backward()
        grads.append([p.grad.clone() for p in net.parameters()])
    assert calls, "the event path did not run"
    for a, b in zip(*grads):
        assert torch.allclose(a, b, rtol=1e-9, atol=1e-12)


@pytest.mark.peers
@pytest.mark.parametrize("reset", ["subtract", "zero"])
def test_recurrent_lif_matches_snntorch_rleaky(reset):
    snntorch = pytest.importorskip("snntorch")
    from snn.layers import RecurrentLIF

    torch.manual_seed(3)
    tau = 4.0
    # float32: snnTorch's spike function returns float32 whatever the membrane's dtype
    ours = RecurrentLIF(6, 5, tau=tau, v_reset=0.0 if reset == "zero" else None, detach_reset=True)
    with torch.no_grad():
        ours.input.weight.mul_(1.2)
        ours.recurrent.weight.normal_(0, 0.3)
    theirs = snntorch.RLeaky(beta=1 - 1 / tau, linear_features=5, reset_mechanism=reset, reset_delay=False)
    with torch.no_grad():
        theirs.recurrent.weight.copy_(ours.recurrent.weight)
        theirs.recurrent.bias.zero_()
    x = _inputs(T=20, B=4, C=6, seed=4).float()
    with torch.no_grad():
        spikes, state = ours(x, ours.initial_state(torch.zeros(4, 5)))
    spk, mem = torch.zeros(4, 5), torch.zeros(4, 5)
    ref, mems = [], []
    for t in range(20):
        with torch.no_grad():
            spk, mem = theirs(ours.input(x[t]), spk, mem)
        ref.append(spk)
        mems.append(mem)
    ref = torch.stack(ref)
    assert 0.05 < float(ref.mean()) < 0.9  # 12.5 % of neuron-steps spike
    # snnTorch subtracts θ once more at the next step when the membrane is still >= θ after a reset (H >= 2θ); the
    # two definitions agree whenever that never happens, which these weights ensure:
    assert float(torch.stack(mems).max()) < 1.0
    assert torch.equal(spikes, ref)
    # the same membrane up to float32 rounding: ours computes V - V/τ, snnTorch β·V with β = 1 - 1/τ
    assert torch.allclose(state["v"], mems[-1], atol=1e-5)


def test_readout_modes_against_hand_values():
    out = torch.tensor([[[1.0, 0.0]], [[3.0, 5.0]], [[2.0, -1.0]]])  # [T=3, B=1, K=2]
    lengths = torch.tensor([2])
    assert torch.allclose(time_scores(out, lengths, "mean"), torch.tensor([[2.0, 2.5]]))
    assert torch.allclose(time_scores(out, lengths, "max"), torch.tensor([[3.0, 5.0]]))
    assert torch.allclose(time_scores(out, lengths, "last"), torch.tensor([[3.0, 5.0]]))
    e = math.exp
    p0 = [e(1) / (e(1) + 1), 1 / (e(1) + 1)]
    p1 = [e(3) / (e(3) + e(5)), e(5) / (e(3) + e(5))]
    assert torch.allclose(time_scores(out, lengths, "sum_softmax"), torch.tensor([[p0[0] + p1[0], p0[1] + p1[1]]]))
    with pytest.raises(ValueError, match="readout: expected one of"):
        time_scores(out, lengths, "median")


def test_families_build_from_configs_with_ms_converted_to_steps():
    cfg = load_config({"data": {"dt_ms": 5.0}, "model": {"name": "rsnn", "hidden": 9, "tau_ms": 20.0}})
    net = build_model(cfg, 11, 3)
    assert isinstance(net, RecurrentSNN) and float(net.recurrent_layers[0].neuron.tau) == 4.0
    assert net.recurrent_layers[0].recurrent.weight.shape == (9, 9)
    cfg = load_config({"model": {"name": "snn_mlp", "layers": 3, "readout": "max"}})
    net = build_model(cfg, 11, 3)
    assert isinstance(net, SpikingMLP) and len(net.synapses) == 3 and net.readout_mode == "max"
    groups = net.parameter_groups()
    assert groups["norm"].weight_decay == 0.0 and len(groups["norm"].params) == 6
    from snn.config import ConfigError
    with pytest.raises(ConfigError, match=r"model\.dropout: expected a value in \[0, 1\)"):
        load_config({"model": {"name": "snn_mlp", "dropout": 1.0}})
    with pytest.raises(ConfigError, match=r"unknown key 'model\.batchnorm'"):
        load_config({"model": {"name": "rsnn", "batchnorm": True}})
