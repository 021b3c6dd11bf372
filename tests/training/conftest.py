"""Fixtures: a tiny, separable spike dataset in the SHD file layout, and a tiny run config."""
from __future__ import annotations

from pathlib import Path

import numpy as np
import pytest

from snn.datasets.h5_writer import write_spike_h5


def write_separable_shd(folder: Path, n_train: int = 48, n_test: int = 24, n_classes: int = 3,
                        n_channels: int = 40, seed: int = 0) -> Path:
    """``shd_train.h5`` / ``shd_test.h5`` where class ``c`` fires mostly on its own channel band, early or late.

    Bands make the task linearly separable within a few epochs; sample durations vary (padding is exercised).
    """
    rng = np.random.default_rng(seed)
    folder.mkdir(parents=True, exist_ok=True)
    band = n_channels // n_classes
    for name, n, speaker0 in (("shd_train.h5", n_train, 0), ("shd_test.h5", n_test, 100)):
        times, units, labels, speakers = [], [], [], []
        for i in range(n):
            c = i % n_classes
            dur = rng.uniform(0.05, 0.12)
            k_sig, k_noise = 60, 20
            t = np.concatenate([rng.uniform(0, dur, k_sig), rng.uniform(0, dur, k_noise)])
            u = np.concatenate([rng.integers(c * band, (c + 1) * band, k_sig), rng.integers(0, n_channels, k_noise)])
            order = np.argsort(t)
            times.append(t[order].astype(np.float32))
            units.append(u[order].astype(np.uint16))
            labels.append(c)
            speakers.append(speaker0 + i % 6)
        # the package's SHD-layout writer (tests/datasets/conftest.py keeps a raw writer for deliberately broken files)
        write_spike_h5(folder / name, times, units, np.asarray(labels, dtype=np.int64),
                       [f"c{i}" for i in range(n_classes)], np.asarray(speakers, dtype=np.int64),
                       times_dtype=np.float32)
    return folder


def tiny_config(root: Path, cache: Path, out_dir: Path, **sections) -> dict:
    cfg = {
        "data": {"dataset": "shd", "root": str(root), "dt_ms": 5.0, "n_channels": 40, "pool": 2,
                 "valid_fraction": 0.25, "valid_by": "fraction", "cache_dir": str(cache)},
        "model": {"hidden": 16, "layers": 1, "max_delay": 5, "tau_ms": 10.0, "dropout": 0.1},
        "training": {"epochs": 2, "batch_size": 8, "seed": 0, "threads": 1},
        "optim": {"lr": 1e-2, "max_lr": 2e-2},
        "run": {"name": "tiny", "out_dir": str(out_dir), "progress": False, "tensorboard": False, "plots": False,
                "energy": False},
    }
    for key, value in sections.items():
        cfg[key].update(value)
    return cfg


@pytest.fixture(scope="session")
def separable_root(tmp_path_factory) -> Path:
    return write_separable_shd(tmp_path_factory.mktemp("shd"))


@pytest.fixture
def tiny(separable_root, tmp_path):
    def make(**sections):
        return tiny_config(separable_root, tmp_path / "cache", tmp_path / "runs", **sections)
    return make


def interrupt_after_first_epoch(cfg: dict, folder: Path) -> None:
    """The construction :func:`snn.training.run` makes, stopped after epoch 1 into ``folder``."""
    from snn.config import load_config
    from snn.models import build_model
    from snn.training import Trainer
    from snn.training.data import build_datasets
    from snn.training.experiment import set_threads
    from snn.training.rules import Backprop
    from snn.training.trainer import seed_everything

    c = load_config(cfg)
    seed_everything(c.training.seed, c.training.deterministic)
    if c.training.threads is not None:  # torch's and numba's pools, as run() does (they set float sum orders)
        set_threads(c.training.threads)
    data = build_datasets(c.data)
    model = build_model(c, data.n_inputs, data.n_classes)
    Trainer(model, Backprop(), data.train, data.valid, data.test, config=c, run_dir=folder).fit(until=1)


@pytest.fixture
def interrupted_run():
    """``make(cfg, folder)``: :func:`interrupt_after_first_epoch`."""
    return interrupt_after_first_epoch
