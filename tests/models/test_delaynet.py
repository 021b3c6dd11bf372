"""DelayNet: shapes, the reference's loss, padding masks, delay modes, the sigma schedule and evaluation mode."""
from __future__ import annotations

import pytest
import torch
import torch.nn.functional as F

from snn.models import DelayNet, SequenceDropout, sigma_at_epoch


def _net(**kw):
    torch.manual_seed(0)
    args = dict(n_inputs=6, n_classes=4, hidden=8, layers=2, max_delay=5, tau=1.5, dropout=0.0)
    args.update(kw)
    return DelayNet(**args)


def _spikes(T, B, C, seed=1):
    g = torch.Generator().manual_seed(seed)
    return (torch.rand(T, B, C, generator=g) < 0.3).float()


def test_output_length_adds_right_padding_per_layer():
    net = _net()
    out = net(_spikes(10, 3, 6))
    assert out.shape == (10 + 3 * 2, 3, 4)


def test_loss_is_cross_entropy_of_summed_softmax():
    net = _net()
    out = net(_spikes(10, 3, 6))
    y = torch.tensor([0, 1, 3])
    expected = F.cross_entropy(F.softmax(out, 2).sum(0), y)
    assert torch.allclose(net.loss(out, y, None), expected)


@pytest.mark.parametrize("delays", ["learned", "frozen_zero"])
def test_loss_masks_padded_steps(delays):
    """A sample's scores and gradients inside a zero-padded batch equal its own (no BatchNorm, eval mode)."""
    net = _net(batchnorm=False, delays=delays).double().eval()
    short, long_ = _spikes(7, 1, 6, seed=2), _spikes(12, 1, 6, seed=3)
    short, long_ = short.double(), long_.double()
    x = torch.zeros(12, 2, 6, dtype=torch.double)
    x[:7, 0], x[:, 1] = short[:, 0], long_[:, 0]
    lengths = torch.tensor([7, 12])
    y = torch.tensor([2, 1])
    batched = net.scores(net(x, lengths), lengths)
    alone = net.scores(net(short, torch.tensor([7])), torch.tensor([7]))
    assert torch.allclose(batched[0], alone[0], atol=1e-6)
    unmasked = net.scores(net(x), None)
    assert not torch.allclose(unmasked[0], alone[0], atol=1e-3)  # the padded steps would count otherwise
    net.zero_grad()
    net.loss(net(x, lengths), y, lengths).backward()
    g_batch = net.synapses[0].weight.grad.clone()
    g_sum = 0
    for b, T in enumerate((7, 12)):
        net.zero_grad()
        xb, lb = x[:T, b:b + 1], torch.tensor([T])
        net.loss(net(xb, lb), y[b:b + 1], lb).backward()
        g_sum = g_sum + net.synapses[0].weight.grad / 2
    assert torch.allclose(g_batch, g_sum, atol=1e-6)


def test_frozen_zero_delays_act_like_plain_weights():
    net = _net(delays="frozen_zero", batchnorm=False, layers=1)
    assert all(not s.positions.requires_grad for s in net.synapses)
    x = _spikes(9, 2, 6)
    w = net.synapses[0].weight[:, :, 0] / (1 + 1e-7)
    y = net.synapses[0](x)
    assert torch.allclose(y[:9], x @ w.t(), atol=1e-6)
    assert torch.count_nonzero(y[9:]) == 0
    assert net.parameter_groups()["positions"].params == []


def test_learned_delays_train_positions_and_frozen_random_is_integer():
    net = _net()
    groups = net.parameter_groups()
    assert len(groups["positions"].params) == 3 and len(groups["weights"].params) == 3 and len(groups["norm"].params) == 4
    out = net(_spikes(10, 2, 6))
    net.loss(out, torch.tensor([0, 1]), None).backward()
    assert all(p.grad is not None and p.grad.abs().sum() > 0 for p in groups["positions"].params)
    frozen = _net(delays="frozen_random")
    assert all(s.has_integer_delays() and not s.positions.requires_grad for s in frozen.synapses)


def test_sigma_schedule_matches_reference_multiplication():
    sig0, final, E = 12.0, 0.23, 37  # reference: SIG *= (0.23/sigInit)^(1/final_epoch) after each epoch < final_epoch
    sig = sig0
    for e in range(E + 5):
        assert sigma_at_epoch(e, sig0, final, E) == pytest.approx(sig, rel=1e-9)
        if e < E:
            sig *= (final / sig0) ** (1 / E)
    net = _net(max_delay=25)
    net.set_epoch(0, 8)
    assert float(net.synapses[0].sigma) == 12.0
    net.set_epoch(5, 8)
    assert float(net.synapses[1].sigma) == pytest.approx(0.23)


def test_evaluation_uses_integer_delays_and_restores_state():
    net = _net()
    net.set_epoch(0, 4)
    before = [s.positions.detach().clone() for s in net.synapses]
    with net.evaluation():
        assert all(s.has_integer_delays() for s in net.synapses)
    assert all(torch.equal(b, s.positions) for b, s in zip(before, net.synapses))
    assert all(s.version == "gauss" and float(s.sigma) == 2.0 for s in net.synapses)


def test_evaluation_runs_the_spike_scatter_with_the_dense_paths_outputs():
    net = _net().eval()
    x = _spikes(12, 3, 6)
    with net.evaluation():
        assert all(s.inference == "sparse" for s in net.synapses)
        with torch.no_grad():
            sparse = net(x)
            for s in net.synapses:
                s.inference = "dense"
            dense = net(x)
    assert all(s.inference == "dense" for s in net.synapses)  # restored
    torch.testing.assert_close(sparse, dense, rtol=1e-5, atol=1e-5)


def test_sequence_dropout_keeps_one_mask_over_time():
    torch.manual_seed(0)
    d = SequenceDropout(0.5).train()
    y = d(torch.ones(6, 3, 10))
    assert torch.equal(y, y[:1].expand_as(y))
    assert set(y.unique().tolist()) <= {0.0, 2.0}
    assert torch.equal(d.eval()(torch.ones(2, 2)), torch.ones(2, 2))


def test_bad_arguments_rejected():
    with pytest.raises(ValueError, match="delays must be one of"):
        _net(delays="none")
    with pytest.raises(ValueError, match="hidden must be a positive int"):
        _net(hidden=0)
    with pytest.raises(ValueError, match="n_inputs=6 channels"):
        _net()(torch.zeros(3, 2, 5))
