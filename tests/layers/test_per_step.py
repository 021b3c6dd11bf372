"""PerStep: a per-sample module applied to every time step equals a loop over the steps."""
from __future__ import annotations

import pytest
import torch
from torch import nn

from snn.layers import PerStep


def test_per_step_equals_a_loop_over_time():
    torch.manual_seed(0)
    conv = nn.Conv2d(2, 3, 3, stride=2, padding=1)
    x = torch.randn(5, 4, 2, 9, 9)
    expected = torch.stack([conv(x[t]) for t in range(x.shape[0])])
    torch.testing.assert_close(PerStep(conv)(x), expected, rtol=0, atol=1e-6)
    assert PerStep(nn.Flatten())(x).shape == (5, 4, 2 * 9 * 9)


def test_per_step_rejects_bad_input():
    with pytest.raises(TypeError, match="module: expected a torch.nn.Module"):
        PerStep(lambda x: x)
    with pytest.raises(ValueError, match=r"x: expected a tensor \[T, B, ...\]"):
        PerStep(nn.Identity())(torch.zeros(3))
