"""Fixtures: small HDF5 files in the exact SHD/SSC layout (ragged arrays as h5py vlen datasets)."""

from __future__ import annotations

from pathlib import Path

import h5py
import numpy as np
import pytest


def make_samples(n: int, *, seed: int = 0, n_channels: int = 700, max_events: int = 300, duration_s: float = 0.8,
                 times_dtype=np.float16):
    """Random spike trains: list of (times_s sorted, float16 like the real SHD files; units uint16), labels, speakers."""
    rng = np.random.default_rng(seed)
    times, units = [], []
    for _ in range(n):
        e = int(rng.integers(1, max_events))
        times.append(np.sort(rng.uniform(0, duration_s, e)).astype(times_dtype))
        units.append(rng.integers(0, n_channels, e).astype(np.uint16))
    labels = rng.integers(0, 20, n).astype(np.uint16)
    speakers = rng.integers(0, 6, n).astype(np.uint16)
    return times, units, labels, speakers


def write_shd_file(path, times, units, labels, speakers=None, keys=None, *, skip=()):
    """Write the SHD layout: spikes/times (vlen float, dtype of ``times``), spikes/units (vlen uint16), labels, extra/*."""
    path = Path(path)
    with h5py.File(path, "w") as f:
        if "spikes/times" not in skip:
            t_dtype = np.asarray(times[0]).dtype if len(times) else np.float16
            d = f.create_dataset("spikes/times", (len(times),), dtype=h5py.vlen_dtype(t_dtype))
            for i, t in enumerate(times):
                d[i] = t
        if "spikes/units" not in skip:
            d = f.create_dataset("spikes/units", (len(units),), dtype=h5py.vlen_dtype(np.uint16))
            for i, u in enumerate(units):
                d[i] = u
        if "labels" not in skip:
            f.create_dataset("labels", data=np.asarray(labels, dtype=np.uint16))
        if keys is None:
            keys = [f"digit-{i}".encode() for i in range(20)]
        f.create_dataset("extra/keys", data=np.array(keys, dtype="S"))
        if speakers is not None:
            f.create_dataset("extra/speaker", data=np.asarray(speakers, dtype=np.uint16))
    return path


@pytest.fixture
def shd_file(tmp_path):
    times, units, labels, speakers = make_samples(40)
    path = write_shd_file(tmp_path / "shd_train.h5", times, units, labels, speakers)
    return path, (times, units, labels, speakers)


@pytest.fixture
def cache_dir(tmp_path):
    d = tmp_path / "cache"
    d.mkdir()
    return d


@pytest.fixture
def shd_tools():
    """(make_samples, write_shd_file) for tests that build their own files (importlib mode: no conftest import)."""
    return make_samples, write_shd_file
