"""CompetitiveLIF: adaptive thresholds and lateral inhibition against a hand computation and a scalar loop."""
from __future__ import annotations

import math

import pytest
import torch

from snn.layers import CompetitiveLIF

LN2 = 1.0 / math.log(2.0)  # a time constant whose per-step decay is exactly 1/2

# one sample, two neurons, four steps
CURRENT = torch.tensor([[1.2, 0.6], [0.0, 0.6], [1.0, 0.9], [0.9, 0.3]], dtype=torch.float64)[:, None, :]


def _layer(theta0=(0.0, 0.0)) -> CompetitiveLIF:
    layer = CompetitiveLIF(2, tau=LN2, v_rest=0.0, v_reset=0.0, v_threshold=1.0, refractory=1, inhibition=0.5,
                           theta_plus=0.25, tau_theta=LN2).double()
    layer.theta.copy_(torch.tensor(theta0, dtype=torch.float64))
    return layer


def test_training_forward_matches_hand_computation_of_threshold_and_inhibition():
    # t0: v = (1.2, .6), thr (1, 1): n0 fires, resets, refractory 1 step; θ = (.25, 0)
    # t1: n0 refractory (v = 0); n1: .6/2 + .6 - .5 (inhibited by n0's spike) = .4; θ = (.125, 0)
    # t2: v = (1.0, .4/2 + .9 = 1.1), thr (1.125, 1): only n1 fires (n0 held back by its raised threshold); θ = (.0625, .25)
    # t3: n0: 1.0/2 + .9 - .5 = .9 < 1.0625; n1 refractory; θ = (.03125, .125)
    layer = _layer().train()
    s = layer(CURRENT)
    torch.testing.assert_close(s[:, 0], torch.tensor([[1.0, 0], [0, 0], [0, 1], [0, 0]], dtype=torch.float64))
    torch.testing.assert_close(layer.theta, torch.tensor([0.03125, 0.125], dtype=torch.float64))


def test_eval_forward_keeps_thresholds_fixed():
    # same input, θ stays 0: at t2 n0 (v = 1.0) reaches the unraised threshold too, both fire
    layer = _layer().eval()
    s = layer(CURRENT)
    torch.testing.assert_close(s[:, 0], torch.tensor([[1.0, 0], [0, 0], [1, 1], [0, 0]], dtype=torch.float64))
    torch.testing.assert_close(layer.theta, torch.zeros(2, dtype=torch.float64))


def test_batch_pools_every_samples_threshold_increment():
    # sample 0 as above from θ = (.1, 0): n0 fires at t0, θ_0 ends (.0375, .125); sample 1 is silent.
    # θ ← θ d^{2T} + Σ_b (θ_b[T-1] - θ d^T) = (.1/256 + .0375 - .1/16, .125)
    layer = _layer((0.1, 0.0)).train()
    current = torch.cat([CURRENT, torch.zeros_like(CURRENT)], 1)
    layer(current)
    torch.testing.assert_close(layer.theta, torch.tensor([0.1 / 256 + 0.0375 - 0.1 / 16, 0.125], dtype=torch.float64))


def _scalar_loop(layer: CompetitiveLIF, current: torch.Tensor, theta0: list[float], adapt: bool):
    """Each sample neuron by neuron, in Python floats (independent of the vectorised layer)."""
    T, B, N = current.shape
    a, d = math.exp(-1.0 / layer.tau), math.exp(-1.0 / layer.tau_theta)
    spikes = [[[0.0] * N for _ in range(B)] for _ in range(T)]
    gained = [0.0] * N
    for b in range(B):
        v, c, prev, th = [layer.v_rest] * N, [0] * N, [0.0] * N, list(theta0)
        for t in range(T):
            now = [0.0] * N
            for j in range(N):
                inh = layer.inhibition * sum(prev[k] for k in range(N) if k != j)
                v[j] = layer.v_rest + (v[j] - layer.v_rest) * a + (float(current[t, b, j]) - inh if c[j] == 0 else 0.0)
                c[j] = max(c[j] - 1, 0)
                if v[j] >= layer.v_threshold + th[j]:
                    now[j], v[j], c[j] = 1.0, layer.v_reset, layer.refractory
            if adapt:
                th = [th[j] * d + layer.theta_plus * now[j] for j in range(N)]
            spikes[t][b], prev = now, now
        for j in range(N):
            gained[j] += th[j] - theta0[j] * d ** T
    theta = [theta0[j] * d ** (B * T) + gained[j] for j in range(N)] if adapt else list(theta0)
    return torch.tensor(spikes, dtype=torch.float64), torch.tensor(theta, dtype=torch.float64)


@pytest.mark.parametrize("training", [True, False])
def test_random_input_equals_a_scalar_loop(training):
    torch.manual_seed(0)
    layer = CompetitiveLIF(4, tau=20.0, v_rest=-65.0, v_reset=-60.0, v_threshold=-52.0, refractory=3,
                           inhibition=6.0, theta_plus=1.5, tau_theta=50.0).double().train(training)
    theta0 = [0.0, 2.0, 0.5, 1.0]
    layer.theta.copy_(torch.tensor(theta0, dtype=torch.float64))
    current = torch.rand(40, 3, 4, dtype=torch.float64) * 6.0
    expected_s, expected_theta = _scalar_loop(layer, current, theta0, adapt=training)
    s = layer(current)
    assert s.sum() > 10  # the case exercises spikes, refractoriness and inhibition
    torch.testing.assert_close(s, expected_s)
    torch.testing.assert_close(layer.theta, expected_theta)


def test_bad_input_names_the_expected_shape():
    with pytest.raises(ValueError, match=r"current must be a tensor \[T, B, 3\], got \(5, 2, 4\)"):
        CompetitiveLIF(3)(torch.zeros(5, 2, 4))
    with pytest.raises(ValueError, match="refractory: expected an int >= 0"):
        CompetitiveLIF(3, refractory=-1)
    with pytest.raises(ValueError, match="n_neurons: expected an int >= 1, got 0"):
        CompetitiveLIF(0)
