"""Spiking MLP branch against its formula with SpikingJelly's LIFNode."""
from __future__ import annotations

import pytest
import torch

from snn.layers import SpikeDrivenMLP


@pytest.mark.parametrize("hidden,shortcut", [(32, False), (16, True)])
def test_mlp_equals_formula_and_spikes(sj_oracle, helpers, hidden, shortcut):
    torch.manual_seed(5)
    m = SpikeDrivenMLP(16, hidden, hidden_shortcut=shortcut).double()
    helpers.randomize(m)
    x = 2.0 * torch.randn(4, 2, 16, 3, 3, dtype=torch.float64)
    store, handles = helpers.record(m, {"fc1_lif": "fc1", "fc2_lif": "fc2"})
    stats = sj_oracle.snapshot(m)
    ours = m(x)
    theirs = sj_oracle.mlp(m, x, stats)
    torch.testing.assert_close(ours, theirs, rtol=1e-10, atol=1e-10)
    for key in ("fc1", "fc2"):
        assert torch.equal(store[key], sj_oracle.spikes[key])
        assert 0 < store[key].mean() < 1


def test_hidden_shortcut_needs_equal_widths():
    with pytest.raises(ValueError, match="hidden_shortcut: needs hidden == dim, got hidden=32, dim=16"):
        SpikeDrivenMLP(16, 32, hidden_shortcut=True)
