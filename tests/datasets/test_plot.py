import matplotlib

matplotlib.use("Agg")

import numpy as np
import pytest
import torch

from snn.datasets import raster


def test_raster_draws_every_event_and_nonzero_bin():
    ev = np.zeros(5, dtype=[("t", np.int64), ("x", np.int64), ("p", np.int64)])
    ev["t"], ev["x"] = [0, 1000, 2000, 3000, 4000], [1, 2, 3, 4, 5]
    ax = raster(ev, title="events")
    np.testing.assert_allclose(ax.collections[0].get_offsets(), np.c_[[0, 1, 2, 3, 4], [1, 2, 3, 4, 5]])
    frames = torch.zeros(4, 3)
    frames[1, 2] = 2
    frames[3, 0] = 1
    ax2 = raster(frames, dt_ms=10.0)
    np.testing.assert_allclose(ax2.collections[0].get_offsets(), [[10, 2], [30, 0]])
    assert ax2.get_xlabel() == "time (ms)"
    ax3 = raster((np.array([0.5]), np.array([7])))
    np.testing.assert_allclose(ax3.collections[0].get_offsets(), [[500, 7]])
    with pytest.raises(ValueError, match=r"\[T, C\]"):
        raster(np.zeros((2, 2, 2)))
