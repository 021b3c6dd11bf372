"""SoftHebb: Δw of a 2-input, 2-neuron case against the formula computed by hand; the config section is checked."""
from __future__ import annotations

import math

import pytest
import torch
from torch import nn

import snn
from snn.config import ConfigError, load_config
from snn.rules import SoftHebb


def _model() -> nn.Sequential:
    fc = nn.Linear(2, 2, bias=False)
    with torch.no_grad():
        fc.weight.copy_(torch.eye(2))
    return nn.Sequential(fc, snn.LIF(tau=2.0))


# pre 0 fires at both steps, pre 1 at the first: rates x = [1, 0.5]; W = I so u = [1, 0.5]
X = torch.tensor([[1.0, 1.0], [1.0, 0.0]])[:, None, :]


@pytest.mark.parametrize("anti", [False, True])
def test_softhebb_matches_hand_computation(anti):
    model = _model()
    rule = SoftHebb(layers="0", tau=1.0, norm=1.0, anti_hebbian=anti, normalise=False, batch_reduction="sum")
    rule.attach(model)
    with rule.record():
        model(X)
    dw = rule.write_grads()["0"]
    y0 = math.exp(1.0) / (math.exp(1.0) + math.exp(0.5))
    y1 = 1 - y0
    if anti:  # neuron 0 wins (u0 = 1 > u1 = 0.5): the loser's y flips sign
        y1 = -y1
    # Δw_j = y_j (x - u_j w_j): row 0: y0 ([1, .5] - 1·[1, 0]); row 1: y1 ([1, .5] - .5·[0, 1])
    expected = torch.tensor([[0.0, 0.5 * y0], [y1, 0.0]])
    torch.testing.assert_close(dw, expected)
    torch.testing.assert_close(model[0].weight.grad, -expected)


def test_softhebb_normalise_scales_each_row_to_unit_max():
    model = _model()
    rule = SoftHebb(layers="0", normalise=True, anti_hebbian=False)
    rule.attach(model)
    with rule.record():
        model(X)
    dw = rule.write_grads()["0"]
    torch.testing.assert_close(dw, torch.tensor([[0.0, 1.0], [1.0, 0.0]]))


def test_softhebb_config_section_is_checked():
    cfg = load_config({"training": {"rule": {"name": "softhebb", "tau": 0.5, "layers": "synapses.0"}}})
    assert cfg.training.rule.tau == 0.5
    with pytest.raises(ConfigError, match=r"unknown key 'training.rule.temperature'.*allowed keys in training.rule"):
        load_config({"training": {"rule": {"name": "softhebb", "temperature": 0.5}}})
    with pytest.raises(ConfigError, match=r"training.rule.tau: expected a value > 0"):
        load_config({"training": {"rule": {"name": "softhebb", "tau": 0.0}}})
