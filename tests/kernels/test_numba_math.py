import numba as nb
import numpy as np
import torch

from snn.kernels.numba_math import exp32


@nb.njit(error_model="numpy")
def _apply(values, out):
    for i in range(values.size):
        out[i] = exp32(values[i])


def test_exp32_is_within_one_ulp_of_torch_over_the_float32_range():
    rng = np.random.default_rng(0)
    xs = np.concatenate([np.linspace(-87.3, 88.7, 200_001, dtype=np.float32), rng.normal(0, 10, 20_000).astype(np.float32)])
    xs = xs[(xs > -87.33) & (xs < 88.72)]
    out = np.empty_like(xs)
    _apply(xs, out)
    expected = torch.exp(torch.from_numpy(xs)).numpy()
    ulps = np.abs(out - expected) / np.spacing(expected)
    assert ulps.max() <= 1.0


def test_exp32_limits():
    xs = np.array([0.0, -0.0, 88.72, -87.33, 100.0, -100.0, np.inf, -np.inf], np.float32)
    out = np.empty_like(xs)
    _apply(xs, out)
    assert out[0] == 1.0 and out[1] == 1.0
    assert np.isfinite(out[2]) and out[2] > 3e38 and 0 < out[3] < 1.2e-38
    assert out[4] == np.inf and out[6] == np.inf and out[5] == 0.0 and out[7] == 0.0
