"""Membrane-shortcut block (v1 and v2 attention) against the published formulas with SpikingJelly's LIFNode."""
from __future__ import annotations

import pytest
import torch

from snn.layers import SpikeDrivenBlock


@pytest.mark.parametrize("attention,mlp_ratio", [("v1", 4.0), ("v1", 1.0), ("v2", 4.0)])
def test_block_equals_published_formula(sj_oracle, helpers, attention, mlp_ratio):
    torch.manual_seed(3)
    m = SpikeDrivenBlock(16, 2, mlp_ratio=mlp_ratio, attention=attention).double()
    helpers.randomize(m, bias_shift=0.3)
    x = 2.0 * torch.randn(3, 2, 16, 4, 4, dtype=torch.float64)
    stats = sj_oracle.snapshot(m)
    ours = m(x)
    theirs = sj_oracle.block(m, x, stats)
    torch.testing.assert_close(ours, theirs, rtol=1e-10, atol=1e-10)
    assert m.mlp.hidden_shortcut == (attention == "v1" and mlp_ratio == 1.0)


def test_block_residual_stream_is_membrane_level():
    # the block adds real-valued branch outputs to a real-valued input: its output is not binary
    torch.manual_seed(4)
    out = SpikeDrivenBlock(16, 2)(torch.randn(2, 2, 16, 3, 3))
    assert not torch.all((out == 0) | (out == 1))


def test_bad_arguments_fail_at_construction():
    with pytest.raises(ValueError, match="attention: expected 'v1' or 'v2', got 'v3'"):
        SpikeDrivenBlock(16, 2, attention="v3")
    with pytest.raises(ValueError, match="erode: only the v1 attention"):
        SpikeDrivenBlock(16, 2, attention="v2", erode=True)
