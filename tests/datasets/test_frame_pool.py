"""Spatial sum-pooling of event frames."""
from __future__ import annotations

import pytest
import torch

from snn.datasets.frame_pool import PoolFrames


def test_pooling_sums_blocks_and_keeps_every_event():
    x = torch.randint(0, 5, (3, 2, 8, 6)).float()
    y = PoolFrames(2)(x)
    assert y.shape == (3, 2, 4, 3)
    assert y[1, 0, 2, 1] == x[1, 0, 4:6, 2:4].sum()
    assert y.sum() == x.sum()


def test_size_not_divisible_is_reported():
    with pytest.raises(ValueError, match=r"divisible by 2, got \(1, 2, 5, 4\)"):
        PoolFrames(2)(torch.zeros(1, 2, 5, 4))
