"""PoissonEncoder: spike probability per step, empirical rates, bad arguments."""
from __future__ import annotations

import pytest
import torch

from snn.layers import PoissonEncoder


def test_probability_is_intensity_times_rate_times_step_clamped_to_one():
    enc = PoissonEncoder(steps=4, max_rate_hz=200.0, dt_ms=2.0)  # 200 Hz × 2 ms = 0.4 per step at intensity 1
    p = enc.probability(torch.tensor([0.0, 0.5, 1.0, 3.0]))
    torch.testing.assert_close(p, torch.tensor([0.0, 0.2, 0.4, 1.0]))


def test_empirical_rate_matches_and_output_is_binary_time_major():
    torch.manual_seed(0)
    enc = PoissonEncoder(steps=2000, max_rate_hz=100.0, dt_ms=1.0)
    s = enc(torch.tensor([[0.0, 0.5, 1.0]]))
    assert s.shape == (2000, 1, 3) and set(s.unique().tolist()) <= {0.0, 1.0}
    rate = s.mean(0)[0]
    assert rate[0] == 0.0
    # binomial standard error at p = 0.1 over 2000 steps is 0.0067: 4 standard errors
    assert abs(float(rate[1]) - 0.05) < 0.02 and abs(float(rate[2]) - 0.1) < 0.027


@pytest.mark.parametrize("kwargs, message", [({"steps": 0, "max_rate_hz": 10.0}, "steps: expected an int >= 1, got 0"),
                                             ({"steps": 5, "max_rate_hz": -1.0}, "max_rate_hz: expected a finite number > 0, got -1.0")])
def test_bad_arguments_are_named(kwargs, message):
    with pytest.raises(ValueError, match=message):
        PoissonEncoder(**kwargs)


def test_eval_mode_trains_depend_only_on_each_samples_intensities():
    enc = PoissonEncoder(steps=50, max_rate_hz=300.0).eval()
    x = torch.rand(4, 6)
    torch.manual_seed(0)
    a = enc(x)
    torch.manual_seed(1)
    b = enc(x[2:])  # another batch, another global generator state
    assert torch.equal(a[:, 2:], b)
    assert not torch.equal(a[:, 0], a[:, 1])  # different samples, different trains
    assert 0.1 < float(a.mean()) < 0.2  # mean rate 0.5 × 0.3 per step
    enc.train()
    torch.manual_seed(0)
    c = enc(x)
    torch.manual_seed(0)
    assert torch.equal(c, enc(x)) and not torch.equal(c, a)  # training draws follow the global generator
