"""Meta-SpikeFormer conv stages against the reference formulas with SpikingJelly's LIFNode."""
from __future__ import annotations

import torch

from snn.layers import MetaConvBlock, SpikingDownsample


def test_conv_block_equals_reference_formula(sj_oracle, helpers):
    torch.manual_seed(12)
    m = MetaConvBlock(8).double()
    helpers.randomize(m)
    x = 2.0 * torch.randn(3, 2, 8, 6, 6, dtype=torch.float64)
    stats = sj_oracle.snapshot(m)
    torch.testing.assert_close(m(x), sj_oracle.meta_conv_block(m, x, stats), rtol=1e-10, atol=1e-10)


def test_conv_block_parameter_count_by_hand():
    C = 8
    sep = C * 2 * C + 2 * 2 * C + 2 * C * 49 + 2 * C * C + 2 * C      # pw1, bn1, dw7x7, pw2, bn2
    mlp = C * 4 * C * 9 + 2 * 4 * C + 4 * C * C * 9 + 2 * C           # conv1, bn1, conv2, bn2
    assert sum(p.numel() for p in MetaConvBlock(C).parameters()) == sep + mlp


def test_downsample_first_layer_sees_raw_input_and_later_ones_fire():
    first, later = SpikingDownsample(3, 8, 7, 2, 3, first_layer=True), SpikingDownsample(8, 16)
    assert first.lif is None and later.lif is not None
    x = torch.randn(2, 2, 3, 16, 16)
    assert later(first(x)).shape == (2, 2, 16, 4, 4)
