"""Re-parameterisable conv: the training form against the reference formula, and folding into one conv."""
from __future__ import annotations

import torch
from torch import nn

from snn.layers import RepConv, SpikeDrivenSelfAttentionV2, fold_rep_conv, reparameterize


def test_training_form_equals_reference_border_padding(sj_oracle, helpers):
    torch.manual_seed(9)
    rep = RepConv(6, 5).double()
    helpers.randomize(rep)
    x = torch.randn(4, 6, 5, 5, dtype=torch.float64)
    stats = sj_oracle.snapshot(rep)
    torch.testing.assert_close(rep(x), sj_oracle.rep_conv(x, rep, stats), rtol=1e-12, atol=1e-12)


def test_folded_conv_equals_block_in_evaluation_mode(helpers):
    torch.manual_seed(10)
    block = nn.Sequential(RepConv(6, 4), nn.BatchNorm2d(4)).double()
    helpers.randomize(block)
    block.eval()
    x = torch.randn(3, 6, 7, 5, dtype=torch.float64)
    conv = fold_rep_conv(block)
    assert (conv.kernel_size, conv.padding, conv.bias is not None) == ((3, 3), (1, 1), True)
    torch.testing.assert_close(conv(x), block(x), rtol=1e-12, atol=1e-12)


def test_reparameterized_attention_gives_the_same_spikes_and_outputs(helpers):
    torch.manual_seed(11)
    m = SpikeDrivenSelfAttentionV2(16, 2).double()
    helpers.randomize(m, bias_shift=0.5)
    m.eval()
    x = 2.0 * torch.randn(3, 2, 16, 5, 5, dtype=torch.float64)
    before = m(x)
    reparameterize(m)
    assert not any(isinstance(sub, RepConv) for sub in m.modules())
    assert isinstance(m.q_conv, nn.Conv2d) and isinstance(m.proj_conv, nn.Conv2d)
    torch.testing.assert_close(m(x), before, rtol=1e-9, atol=1e-9)
