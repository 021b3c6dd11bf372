"""SHD-Adding from configs: ``data.dataset: spoken_digits_adding`` builds pairs within each split of the embedded
set (checked against the base samples read on their own), and the example config trains."""
from pathlib import Path

import numpy as np
import pytest
import torch

from snn.config import ConfigError, load_config
from snn.datasets import SpokenDigits, ToFrames
from snn.training.data import build_datasets

CONFIGS = Path(__file__).resolve().parents[2] / "examples" / "configs"
SMALL = {"data.cache_dir": None, "model.memory": 8, "training.epochs": 2, "training.batch_size": 64, "training.limit_train_batches": 30,
         "training.threads": 1, "run.plots": False, "run.energy": False, "run.tensorboard": False,
         "run.progress": False, "run.log_energy": False}


@pytest.fixture(scope="module")
def adding_config(tmp_path_factory):
    cache = tmp_path_factory.mktemp("cache")
    return load_config(CONFIGS / "shd_adding_elm.yaml", {**SMALL, "data.cache_dir": str(cache)})


def _base(cfg, split):
    frames = ToFrames(dt_ms=cfg.data.dt_ms, n_channels=cfg.data.n_channels, pool=cfg.data.pool)
    kw = {} if split == "test" else {"valid_fraction": cfg.data.valid_fraction, "valid_by": "speaker", "seed": 0}
    return SpokenDigits(split, frames=frames, **kw)


def test_the_config_builds_pairs_of_the_same_split_labelled_with_their_digit_sum(adding_config):
    cfg = adding_config
    data = build_datasets(cfg.data)
    assert data.n_classes == 19 and data.n_inputs == 70
    for split, ds in (("train", data.train), ("valid", data.valid), ("test", data.test)):
        base = _base(cfg, split)
        assert len(ds) == cfg.data.adding_factor * len(base)
        for k in range(0, len(ds), len(ds) // 7):  # a handful of items, compared with the base read independently
            i, j = ds.pairs[k]
            (xi, yi), (xj, yj) = base[int(i)], base[int(j)]
            x, y = ds[k]
            assert torch.equal(x, torch.cat([xi, xj]))
            assert y == yi % 10 + yj % 10
    train_speakers = set(_base(cfg, "train").speakers.tolist())
    valid_base = _base(cfg, "valid")
    assert not train_speakers & set(valid_base.speakers[np.unique(data.valid.pairs)].tolist())
    assert not np.array_equal(data.train.pairs[:50], data.valid.pairs[:50])  # each split draws its own pairs


def test_redraw_applies_to_the_training_pairs_only(adding_config):
    import dataclasses

    from snn.training.data import build_split

    data = dataclasses.replace(adding_config.data, adding_redraw=True)
    assert [build_split(data, split).redraw for split in ("train", "valid", "test")] == [True, False, False]


def test_adding_factor_must_be_positive():
    with pytest.raises(ConfigError, match="data.adding_factor"):
        load_config({"data": {"dataset": "spoken_digits_adding", "adding_factor": 0}})


@pytest.mark.slow
def test_a_tiny_run_of_the_config_trains(adding_config, tmp_path):
    from snn.training import run

    result = run(adding_config, out=tmp_path / "run")
    losses = [row["train_loss"] for row in result.history]
    assert losses[-1] < losses[0] < np.log(19) + 0.1  # from about the uniform guess's loss, falling
    assert result.model.elm.out_features == 19
    assert 0.0 <= result.test["test_acc"] <= 1.0  # accuracy of the real run: README, ELM section
