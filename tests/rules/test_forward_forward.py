"""Spiking forward-forward: label embedding, the per-layer loss against softplus by hand, no gradient across
layers (each layer's gradient equals that of its own loss computed independently), inference by goodness."""
from __future__ import annotations

import math

import pytest
import torch
from torch import nn

import snn
from snn.rules import ForwardForward, StepContext, embed_label


class Net(nn.Module):
    def __init__(self) -> None:
        super().__init__()
        self.fc1 = nn.Linear(5, 4)
        self.lif1 = snn.LIF(tau=2.0, v_threshold=0.5)
        self.fc2 = nn.Linear(4, 3)
        self.lif2 = snn.LIF(tau=2.0, v_threshold=0.5)
        self.n_classes = 2

    def forward(self, x):
        return self.lif2(self.fc2(self.lif1(self.fc1(x))))


def test_embed_label_writes_the_one_hot_into_the_first_channels():
    x = torch.ones(3, 2, 4)
    out = embed_label(x, torch.tensor([1, 0]), 2, amplitude=0.5)
    assert torch.equal(out[:, 0, :2], torch.tensor([[0.0, 0.5]] * 3))
    assert torch.equal(out[:, 1, :2], torch.tensor([[0.5, 0.0]] * 3))
    assert torch.equal(out[:, :, 2:], x[:, :, 2:])
    with pytest.raises(ValueError, match="fewer than the 3 label slots"):
        embed_label(torch.ones(1, 1, 2), torch.tensor([0]), 3)


def test_loss_matches_softplus_by_hand_and_collaborative_uses_detached_others():
    rule = ForwardForward(theta=0.2, sharpness=10.0)
    g_pos, g_neg = torch.tensor([[0.3], [0.1]]), torch.tensor([[0.25], [0.05]])
    sp = lambda z: math.log1p(math.exp(z))  # noqa: E731
    hand = sp(10 * (0.2 - 0.3)) + sp(10 * (0.25 - 0.2)) + sp(10 * (0.2 - 0.1)) + sp(10 * (0.05 - 0.2))
    assert rule.loss(g_pos, g_neg).item() == pytest.approx(hand, rel=1e-6)
    collab = ForwardForward(theta=0.2, sharpness=10.0, collaborative=True)
    hand_c = 2 * (sp(10 * (0.4 - 0.4)) + sp(10 * (0.3 - 0.4)))  # γ = 0.4 (pos), 0.3 (neg) for both layers, θ·L = 0.4
    gp = g_pos.clone().requires_grad_()
    loss = collab.loss(gp, g_neg)
    assert loss.item() == pytest.approx(hand_c, rel=1e-6)
    loss.backward()
    # d/dg_l of layer l's own term only: -α σ(α(θL - γ)) = -10 · 0.5 for both (the others are detached)
    torch.testing.assert_close(gp.grad, torch.tensor([[-5.0], [-5.0]]))


def _rate_goodness(s):
    return (s.mean(0) ** 2).mean(1)


def test_each_layer_gets_the_gradient_of_its_own_loss_only():
    torch.manual_seed(0)
    net = Net()
    ref = Net()
    ref.load_state_dict(net.state_dict())
    x = (torch.rand(6, 4, 5) < 0.6).float()
    labels = torch.tensor([0, 1, 1, 0])
    rule = ForwardForward(theta=0.1, sharpness=5.0)
    rule.attach(net)
    torch.manual_seed(1)
    out = rule.training_step(net, (x, labels, None), StepContext())
    torch.manual_seed(1)
    wrong = (labels + torch.randint(1, 2, labels.shape)) % 2
    # independent oracle: layer by layer, layer 2 sees layer 1's spikes as a constant
    xin = torch.cat([embed_label(x, labels, 2), embed_label(x, wrong, 2)], 1)
    s1 = ref.lif1(ref.fc1(xin))
    s2 = ref.lif2(ref.fc2(s1.detach()))
    sp = nn.functional.softplus
    loss = 0
    for s in (s1, s2):
        g = _rate_goodness(s)
        loss = loss + (sp(5.0 * (0.1 - g[:4])) + sp(5.0 * (g[4:] - 0.1))).mean()
    loss.backward()
    assert out["loss"].item() == pytest.approx(loss.item(), rel=1e-6)
    for a, b in ((net.fc1, ref.fc1), (net.fc2, ref.fc2)):
        torch.testing.assert_close(a.weight.grad, b.weight.grad)
        torch.testing.assert_close(a.bias.grad, b.bias.grad)
    assert net.fc1.weight.grad.abs().sum() > 0 and net.fc2.weight.grad.abs().sum() > 0


def test_inference_picks_the_label_with_the_highest_summed_goodness():
    torch.manual_seed(2)
    net = Net()
    x = (torch.rand(6, 3, 5) < 0.6).float()
    rule = ForwardForward()
    rule.attach(net)
    with torch.no_grad():
        res = rule.evaluation_step(net, (x, torch.tensor([0, 1, 0]), None), StepContext())
        for k in range(2):
            xk = embed_label(x, torch.full((3,), k), 2)
            s1 = net.lif1(net.fc1(xk))
            s2 = net.lif2(net.fc2(s1))
            torch.testing.assert_close(res["scores"][:, k], _rate_goodness(s1) + _rate_goodness(s2))


def test_membrane_goodness_is_the_mean_squared_positive_membrane():
    torch.manual_seed(3)
    net = Net()
    x = (torch.rand(6, 3, 5) < 0.6).float()
    rule = ForwardForward(goodness="membrane")
    rule.attach(net)
    g = rule.layer_goodness(net, x, torch.tensor([0, 1, 1]), None)
    xk = embed_label(x, torch.tensor([0, 1, 1]), 2)
    v1 = net.lif1.run(net.fc1(xk), record=True).recorded["v"]
    v2 = net.lif2.run(net.fc2(net.lif1(net.fc1(xk))), record=True).recorded["v"]
    for layer, v in enumerate((v1, v2)):
        torch.testing.assert_close(g[layer], (v.clamp_min(0) ** 2).mean((0, 2)))
    assert g.requires_grad
