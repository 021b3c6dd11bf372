"""8×8 digits as spike trains: spike counts ⌊T q⌋ evenly spaced, fixed stratified split, label slots silent."""
from __future__ import annotations

import numpy as np
import pytest

from snn.datasets.digits8x8_spikes import Digits8x8Spikes, regular_spike_trains


def test_regular_spike_trains_fire_floor_T_q_spikes_evenly():
    s = regular_spike_trains(np.array([0.0, 0.25, 0.5, 1.0]), 8)
    assert s.shape == (8, 4)
    assert s.sum(0).tolist() == [0, 2, 4, 8]
    assert np.flatnonzero(s[:, 1]).tolist() == [3, 7]  # t with ⌊(t+1)/4⌋ > ⌊t/4⌋
    assert np.flatnonzero(s[:, 2]).tolist() == [1, 3, 5, 7]


def test_split_sizes_label_slots_and_pixels():
    pytest.importorskip("sklearn")
    from sklearn.datasets import load_digits

    train, test = Digits8x8Spikes("train", steps=16, label_channels=10), Digits8x8Spikes("test", steps=16)
    assert (len(train), len(test)) == (1437, 360)
    assert np.bincount(test.labels).min() >= 35  # stratified
    x, y = train[0]
    assert x.shape == (16, 74) and x[:, :10].sum() == 0
    digits = load_digits()
    match = np.flatnonzero((digits.data == (x[:, 10:].sum(0).numpy() * 1.0)).all(1) & (digits.target == y))
    assert match.size >= 1  # counts ⌊16 p/16⌋ = p: the pixel values themselves
    with pytest.raises(ValueError, match="split must be"):
        Digits8x8Spikes("valid")
