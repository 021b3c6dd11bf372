"""grid="event_anchored": SpikingJelly's SHD frame rule as the DCLS reference used it, against a hand-computed case
and a brute-force re-implementation of that rule's loop (float16 arithmetic included)."""
from __future__ import annotations

import numpy as np
import pytest

from snn.datasets.binning import ToFrames, bin_events, bin_events_batch, event_anchored_groups


def _reference_loop(t_s: np.ndarray, units: np.ndarray, dt_ms: float, width: int) -> np.ndarray:
    """The rule written as a plain loop: t in ms in the times' own type; a frame starts at event ``left`` and takes
    events while ``t[right] - t[left] <= dt``."""
    t = (t_s.dtype.type(1000) * t_s).astype(t_s.dtype)
    frames, left, n = [], 0, t.size
    while left < n:
        right = left
        while right < n and not (t[right] - t[left] > dt_ms):
            right += 1
        f = np.zeros(width)
        for k in range(left, right):
            f[units[k]] += 1
        frames.append(f)
        left = right
    return np.stack(frames)


def test_hand_computed_case_drops_silences():
    t = np.array([0.000, 0.004, 0.010, 0.0105, 0.030, 0.041, 0.0415])  # s
    u = np.array([0, 1, 1, 2, 0, 2, 2])
    # frames start at 0 ms (takes 0, 4, 10: the edge is inclusive), 10.5 ms (alone: 30 > 20.5), 30 ms, 41 ms
    assert event_anchored_groups(t, 10.0).tolist() == [0, 0, 0, 1, 2, 3, 3]
    f = bin_events(t, u, dt_ms=10.0, n_channels=3, grid="event_anchored")
    assert f.tolist() == [[1, 2, 0], [0, 0, 1], [1, 0, 0], [0, 0, 2]]
    fixed = bin_events(t, u, dt_ms=10.0, n_channels=3)  # bins from t = 0 keep the silence: 5 rows
    assert fixed.shape == (5, 3) and fixed[2].sum() == 0


@pytest.mark.parametrize("dtype", [np.float16, np.float32, np.float64])
def test_matches_the_reference_loop_on_random_sorted_events(dtype):
    rng = np.random.default_rng(0)
    for _ in range(20):
        n = int(rng.integers(1, 300))
        t = np.sort(rng.uniform(0, 1.2, n)).astype(dtype)
        u = rng.integers(0, 7, n)
        ours = bin_events(t, u, dt_ms=10.0, n_channels=7, grid="event_anchored", dtype=np.float64)
        np.testing.assert_array_equal(ours, _reference_loop(t, u, 10.0, 7))


def test_float16_times_group_as_the_reference_not_as_exact_times():
    # two float16 times 10.254 ms apart exactly; 1000·t rounded to float16 gives 965.5 and 975.5 ms: 10.0 ms apart,
    # so the reference puts both in one frame, while exact arithmetic would open a second frame
    t16 = np.array([0.96533203125, 0.9755859375], dtype=np.float16)
    assert (np.float16(1000) * t16).tolist() == [965.5, 975.5]
    assert event_anchored_groups(t16, 10.0).tolist() == [0, 0]
    assert event_anchored_groups(t16.astype(np.float64), 10.0).tolist() == [0, 1]


def test_batch_pooling_cap_and_errors():
    t = np.array([0.0, 0.002, 0.05, 0.1, 0.3])
    u = np.array([0, 5, 9, 1, 3])
    frames, lengths = bin_events_batch(np.concatenate([t, t[:2]]), np.concatenate([u, u[:2]]), np.array([0, 5, 7]),
                                       dt_ms=10.0, n_channels=10, pool=5, grid="event_anchored")
    assert lengths.tolist() == [4, 1]
    assert frames[:4].tolist() == [[1, 1], [0, 1], [1, 0], [1, 0]] and frames[4].tolist() == [1, 1]
    capped = ToFrames(dt_ms=10.0, n_channels=10, pool=5, max_duration_ms=20.0, grid="event_anchored")
    assert capped(t, u).shape == (2, 2)
    assert ToFrames(grid="event_anchored").cache_key()["grid"] == "event_anchored"
    assert "grid" not in ToFrames().cache_key()  # caches of the fixed grid keep their keys
    with pytest.raises(ValueError, match="grid must be one of"):
        ToFrames(grid="sliding")
    with pytest.raises(ValueError, match="sorted by time; sample 0"):
        bin_events(t[::-1].copy(), u, dt_ms=10.0, n_channels=10, grid="event_anchored")
