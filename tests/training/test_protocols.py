"""The DCLS reproduction configs: the reference's model sizes, both selection protocols end to end on the embedded
set disguised as SHD, the reference's padded readout, and the checks on protocol settings."""
from __future__ import annotations

import json
import shutil
from pathlib import Path

import pytest
import torch

from snn.config import ConfigError, load_config
from snn.models import DelayNet, build_model

CONFIGS = Path(__file__).resolve().parents[2] / "examples" / "configs"


def test_reproduction_configs_build_the_reference_models():
    shd = load_config(CONFIGS / "shd_delays.yaml")
    ssc = load_config(CONFIGS / "ssc_delays.yaml")
    n_shd = sum(p.numel() for p in build_model(shd, 140, 20).parameters())
    n_ssc = sum(p.numel() for p in build_model(ssc, 140, 35).parameters())
    assert (n_shd, n_ssc) == (214_016, 1_230_848)  # counts of the reference code (Thvnvtos/SNN-delays)
    for c in (shd, ssc):
        assert (c.data.binning, c.training.amp, c.model.respect_lengths) == ("event_anchored", False, False)
    assert (shd.training.protocol, shd.data.train_split) == ("paper", "full_train")
    honest = load_config(CONFIGS / "shd_delays_heldout.yaml")
    assert (honest.training.protocol, honest.data.train_split) == ("heldout", "train")


def test_paper_protocol_needs_the_full_training_file():
    with pytest.raises(ConfigError, match=r"protocol 'paper'.*data\.train_split to 'full_train'"):
        load_config({"training": {"protocol": "paper"}})


def test_reference_readout_sums_softmax_over_padded_steps():
    torch.manual_seed(0)
    ours = DelayNet(6, 3, hidden=8, layers=1, max_delay=5, dropout=0.0)
    ref = DelayNet(6, 3, hidden=8, layers=1, max_delay=5, dropout=0.0, respect_lengths=False)
    ref.load_state_dict(ours.state_dict())
    out = torch.randn(9, 2, 3)
    lengths = torch.tensor([7, 3])
    assert ref.accepts_lengths is False and ours.accepts_lengths is True
    assert torch.allclose(ref.scores(out, lengths), torch.softmax(out, 2).sum(0))
    # sample 1: 3 input steps + (L + 1)·R = 2·2 output steps of the delay layers = 7 valid steps
    assert torch.allclose(ours.scores(out, lengths)[1], torch.softmax(out[:7, 1], 1).sum(0))


@pytest.fixture
def disguised_shd(tmp_path) -> Path:
    """The embedded spoken-digits files under SHD's file names (same HDF5 layout)."""
    from snn.datasets.shd import DATA_DIR as src

    root = tmp_path / "SHD"
    root.mkdir()
    for split in ("train", "test"):
        shutil.copy(src / f"spoken_digits_{split}.h5", root / f"shd_{split}.h5")
    return root


@pytest.mark.slow
@pytest.mark.parametrize("config", ["shd_delays.yaml", "shd_delays_heldout.yaml"])
def test_one_epoch_under_each_protocol_on_the_disguised_embedded_set(config, disguised_shd, tmp_path):
    from snn.training import run

    small = {"data.root": str(disguised_shd), "data.num_workers": 0, "data.cache_dir": str(tmp_path / "cache"),
             "model.hidden": 16, "training.epochs": 1, "training.limit_train_batches": 2, "training.batch_size": 32,
             "training.threads": 1, "run.plots": False, "run.energy": False, "run.tensorboard": False,
             "run.progress": False, "run.log_energy": False}
    result = run(load_config(CONFIGS / config, small), out=tmp_path / "run")
    row = result.history[0]
    saved = json.loads((tmp_path / "run" / "test_metrics.json").read_text())
    if config == "shd_delays.yaml":  # the test set is evaluated every epoch and selects the model
        assert "test_acc" in row and "valid_acc" not in row
        assert saved["protocol"] == "paper" and saved["selected_on"].startswith("test set")
        assert saved["test_acc"] == pytest.approx(row["test_acc"])
    else:
        assert "valid_acc" in row and "test_acc" not in row
        assert saved["protocol"] == "heldout" and saved["selected_on"].startswith("validation set")
