"""TET loss against its definition written as the reference code's loop."""
from __future__ import annotations

import pytest
import torch

from snn.models import tet_loss


@pytest.mark.parametrize("lamb", [0.0, 0.001, 0.3])
def test_tet_equals_loop_over_steps_plus_mse(lamb):
    torch.manual_seed(0)
    out, y = torch.randn(5, 7, 3, dtype=torch.float64), torch.randint(0, 3, (7,))
    ce = sum(torch.nn.functional.cross_entropy(out[t], y) for t in range(5)) / 5
    mse = ((out - 1.0) ** 2).mean()
    expected = (1 - lamb) * ce + lamb * mse if lamb else ce
    torch.testing.assert_close(tet_loss(out, y, means=1.0, lamb=lamb), expected)


def test_tet_checks_shapes():
    with pytest.raises(ValueError, match=r"outputs: expected \[T, B, K\]"):
        tet_loss(torch.zeros(4, 3), torch.zeros(4, dtype=torch.long))
