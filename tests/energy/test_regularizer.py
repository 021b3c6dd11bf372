import pytest
import torch
from torch import nn

import snn
from snn.energy import SynOpsPenalty, count_operations

from .conftest import ConvSNN


def test_penalty_value_equals_counted_synops_per_sample():
    torch.manual_seed(0)
    net = ConvSNN()
    x = torch.rand(3, 2, 2, 8, 8) * 2
    counted = count_operations(net, x)
    exact = sum(layer.total("synops") for layer in counted.layers.values()) / counted.samples
    penalty = SynOpsPenalty(net, weight=2.0)
    net.eval()  # same BatchNorm behaviour as the counter; autograd on
    penalty.reset()
    net(x)
    assert penalty.synops().item() == pytest.approx(exact, rel=1e-6)
    assert penalty.penalty().item() == pytest.approx(2 * exact, rel=1e-6)
    penalty.reset()
    assert penalty.penalty().item() == 0
    penalty.remove()


def _train(weight):
    torch.manual_seed(1)
    net = nn.Sequential(nn.Linear(10, 32), snn.LIF(v_threshold=0.5), nn.Linear(32, 4), snn.LI())
    x = torch.rand(8, 16, 10) * 2
    y = torch.randint(0, 4, (16,))
    penalty = SynOpsPenalty(net, weight=weight)
    opt = torch.optim.Adam(net.parameters(), lr=1e-2)

    def rate():
        with torch.no_grad():
            return net[1](net[0](x)).mean().item()

    before = rate()
    for _ in range(30):
        penalty.reset()
        out = net(x)
        loss = nn.functional.cross_entropy(out.mean(0), y) + penalty.penalty()
        opt.zero_grad()
        loss.backward()
        opt.step()
    return before, rate()


def test_penalty_gradient_reduces_firing_on_a_toy_problem():
    before, plain = _train(0.0)
    assert before > 0.05
    _, penalised = _train(1e-2)
    assert penalised < 0.5 * before
    assert penalised < 0.5 * plain


def test_bad_arguments():
    net = nn.Sequential(nn.Linear(3, 3), snn.LIF())
    with pytest.raises(ValueError, match="weight"):
        SynOpsPenalty(net, weight=-1)
    with pytest.raises(ValueError, match="layers"):
        SynOpsPenalty(net, layers=["nope"])
    with pytest.raises(ValueError, match="no synaptic layer"):
        SynOpsPenalty(snn.LIF())
