"""Spiking patch-splitting stem with relative position embedding against the reference formula."""
from __future__ import annotations

import pytest
import torch

from snn.layers import SpikingPatchSplit


@pytest.mark.parametrize("pooling", ["0011", "1111", "0111"])
def test_stem_equals_reference_formula(sj_oracle, helpers, pooling):
    torch.manual_seed(6)
    m = SpikingPatchSplit(3, 32, (16, 16), pooling).double()
    helpers.randomize(m)
    x = torch.randn(2, 2, 3, 16, 16, dtype=torch.float64)
    stats = sj_oracle.snapshot(m)
    ours = m(x)
    theirs = sj_oracle.patch_split(m, x, stats)
    side = 16 // 2 ** pooling.count("1")
    assert ours.shape == (2, 2, 32, side, side)
    torch.testing.assert_close(ours, theirs, rtol=1e-10, atol=1e-10)


def _check_1d_against_reference(m, sj_oracle, helpers):
    """Random weights and statistics, spike input [3, 2, 10, 24]: same output as the reference formula, 6 tokens."""
    m = m.double()
    helpers.randomize(m)
    x = (torch.rand(3, 2, 10, 24) < 0.3).double()
    stats = sj_oracle.snapshot(m)
    ours = m(x)
    assert ours.shape == (3, 2, m.dim, 1, 6)
    torch.testing.assert_close(ours[:, :, :, 0], sj_oracle.patch_split(m, x, stats), rtol=1e-10, atol=1e-10)


def test_one_dimensional_stem_turns_frames_into_tokens(sj_oracle, helpers):
    torch.manual_seed(7)
    _check_1d_against_reference(SpikingPatchSplit(10, 16, 24, "0011", dims=1), sj_oracle, helpers)


def test_stage_widths_option_against_reference_formula(sj_oracle, helpers):
    torch.manual_seed(9)
    m = SpikingPatchSplit(10, 16, 24, "0011", dims=1, widths=(12, 12, 12))
    assert [c.out_channels for c in m.convs] == [12, 12, 12, 16] and m.convs[0].in_channels == 10
    _check_1d_against_reference(m, sj_oracle, helpers)
    # parameters: three 3-tap convs and the RPE conv (no bias) plus two BatchNorm vectors per stage
    expected = 3 * (10 * 12 + 12 * 12 + 12 * 12 + 12 * 16 + 16 * 16) + 2 * (12 + 12 + 12 + 16 + 16)
    assert sum(p.numel() for p in m.parameters()) == expected


def test_kernel_option_against_reference_formula(sj_oracle, helpers):
    torch.manual_seed(10)
    m = SpikingPatchSplit(10, 16, 24, "0011", dims=1, widths=(12, 12, 12), kernel=5)
    assert [c.kernel_size for c in m.convs] == [(5,)] * 4 and m.rpe_conv.kernel_size == (3,)
    _check_1d_against_reference(m, sj_oracle, helpers)
    # four 5-tap stage convs, the 3-tap RPE conv, two BatchNorm vectors per stage
    expected = 5 * (10 * 12 + 12 * 12 + 12 * 12 + 12 * 16) + 3 * 16 * 16 + 2 * (12 + 12 + 12 + 16 + 16)
    assert sum(p.numel() for p in m.parameters()) == expected
    for bad in (4, 0, 3.0):
        with pytest.raises(ValueError, match=f"kernel: expected an odd positive int .*got {bad!r}"):
            SpikingPatchSplit(10, 16, 24, "0011", dims=1, kernel=bad)


def test_gradients_reach_every_parameter():
    torch.manual_seed(8)
    m = SpikingPatchSplit(2, 16, (8, 8), "0011")
    out = m(3 * torch.rand(2, 2, 2, 8, 8))
    (out * torch.randn_like(out)).sum().backward()
    assert all(p.grad is not None and p.grad.abs().sum() > 0 for p in m.parameters())


def test_size_not_divisible_by_downsampling_fails_at_construction():
    with pytest.raises(ValueError, match=r"size: every dimension must be divisible by the stem's downsampling 16 "
                                         r"\(pooling='1111'\), got \(40, 40\)"):
        SpikingPatchSplit(3, 64, (40, 40), "1111")
    with pytest.raises(ValueError, match="dim: expected a positive multiple of 8"):
        SpikingPatchSplit(3, 60, (32, 32), "0011")
    with pytest.raises(ValueError, match="pooling: expected four characters"):
        SpikingPatchSplit(3, 64, (32, 32), "011")
    with pytest.raises(ValueError, match=r"widths: expected three positive ints .*, got \(8, 8\)"):
        SpikingPatchSplit(3, 64, (32, 32), "0011", widths=(8, 8))


def test_wrong_input_size_is_reported():
    with pytest.raises(ValueError, match=r"x must be \[T, B, 3, 32, 32\], got \(1, 1, 3, 16, 16\)"):
        SpikingPatchSplit(3, 64, (32, 32), "0011")(torch.zeros(1, 1, 3, 16, 16))
