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


def test_softhebb_centre_learns_on_batch_centred_rates():
    """centre=True: Δw is the formula applied to x − mean(x) over the batch's rows (hand-computed rates)."""
    model = _model()
    rule = SoftHebb(layers="0", tau=1.0, norm=1.0, anti_hebbian=False, centre=True, batch_reduction="sum")
    rule.attach(model)
    x = torch.tensor([[[1.0, 0.0], [0.0, 0.0]], [[1.0, 1.0], [0.0, 1.0]]])  # [T=2, B=2, 2]: rates [1, .5], [0, .5]
    with rule.record():
        model(x)
    dw = rule.write_grads()["0"]
    xc = torch.tensor([[0.5, 0.0], [-0.5, 0.0]])  # rates minus their mean [.5, .5]
    u = xc  # W = I
    expected = torch.zeros(2, 2)
    for r in range(2):
        y = torch.softmax(u[r], 0)
        expected += y[:, None] * (xc[r][None, :] - u[r][:, None] * torch.eye(2))
    torch.testing.assert_close(dw, expected)


def _digit_features(weight: torch.Tensor, train: torch.Tensor, test: torch.Tensor) -> tuple:
    """Spike counts of a LIF layer driven by the currents ``W x[t]`` standardised per neuron with the training
    set's statistics (what a BatchNorm on the currents does at inference)."""
    def currents(x):
        return torch.einsum("tbk,nk->tbn", x, weight)

    c_train = currents(train)
    mu, sd = c_train.mean((0, 1)), c_train.std((0, 1)) + 1e-6
    lif = snn.LIF(tau=2.0, backend="torch")
    return tuple(lif((currents(x) - mu) / sd).sum(0).numpy() for x in (train, test))


def test_softhebb_features_beat_random_features_at_the_same_width():
    """Hidden 32 on 8×8 digits: a linear classifier (scikit-learn's logistic regression, fitted to convergence) on the
    spike counts of SoftHebb-learned features beats the same classifier on the random initial weights."""
    sklearn = pytest.importorskip("sklearn.linear_model")
    from snn.datasets.digits8x8_spikes import Digits8x8Spikes

    train, test = Digits8x8Spikes("train"), Digits8x8Spikes("test")
    x_train, x_test = train.x.transpose(0, 1), test.x.transpose(0, 1)  # [T, N, 64]
    torch.manual_seed(0)
    fc = nn.Linear(64, 32, bias=False)
    w0 = fc.weight.detach().clone()
    model = nn.Sequential(fc, snn.LIF(tau=2.0, backend="torch"))
    rule = SoftHebb(layers="0", tau=0.1, norm=1.0, anti_hebbian=False, centre=True, batch_reduction="mean")
    rule.attach(model)
    opt = torch.optim.SGD([fc.weight], lr=0.05, momentum=0.9)
    g = torch.Generator().manual_seed(0)
    for _ in range(5):
        for idx in torch.randperm(x_train.shape[1], generator=g).split(32):
            opt.zero_grad()
            with rule.record(), torch.no_grad():
                model(x_train[:, idx])
            rule.write_grads()
            opt.step()
    acc = {}
    for name, w in (("random", w0), ("softhebb", fc.weight.detach())):
        f_train, f_test = _digit_features(w, x_train, x_test)
        clf = sklearn.LogisticRegression(max_iter=3000).fit(f_train, train.labels)
        acc[name] = clf.score(f_test, test.labels)
    assert acc["softhebb"] > acc["random"] + 0.03, acc


def test_softhebb_rates_use_each_samples_real_steps_not_the_padding():
    """A sample padded with silent steps (as in a batch with a longer sample) gives the same Δw when the rule gets the
    lengths; without them its rates are diluted by the padding (the bug this guards against)."""
    x = torch.tensor([[1.0, 1.0], [1.0, 0.0]])[:, None, :]  # [T=2, B=1, 2]: rates [1, .5]
    padded = torch.cat([x, torch.zeros(3, 1, 2)])  # 3 silent steps after the sample's end
    out = {}
    for name, inp, lengths in (("plain", x, None), ("padded", padded, torch.tensor([2])),
                               ("padded_no_lengths", padded, None)):
        model = _model()
        rule = SoftHebb(layers="0", tau=1.0, norm=1.0, anti_hebbian=True, batch_reduction="sum")
        rule.attach(model)
        with rule.record(inp.shape[0], lengths):
            model(inp)
        out[name] = rule.write_grads()["0"]
    torch.testing.assert_close(out["padded"], out["plain"])
    assert not torch.allclose(out["padded_no_lengths"], out["plain"])


def test_softhebb_keeps_the_weights_it_does_not_constrain():
    """No bounds, no row normalisation: the rule adds no weight constraint, and applying its (absent) constraints
    leaves the weights as they are (a SoftHebb flag once shadowed LocalRule's row normalisation and zeroed them)."""
    model = _model()
    rule = SoftHebb(layers="0", normalise=False)
    rule.attach(model)
    before = model[0].weight.detach().clone()
    rule.apply_bounds()
    assert rule.callbacks() == []
    torch.testing.assert_close(model[0].weight.detach(), before)
