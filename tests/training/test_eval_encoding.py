"""`snn eval` warns when the evaluated file was encoded with other settings than the model's training file."""
from __future__ import annotations

import shutil
import warnings

import h5py
import pytest

from snn.datasets.encoder import PRESETS
from snn.datasets.encoding import EncodingMismatchWarning
from snn.training import evaluate_run, run
from snn.training.checkpoint import load_checkpoint


def test_eval_warns_on_data_encoded_with_other_settings(tiny, separable_root, tmp_path):
    root = tmp_path / "shd"
    shutil.copytree(separable_root, root)
    for name, preset in (("shd_train.h5", "spoken-digits"), ("shd_test.h5", "shd-like")):
        with h5py.File(root / name, "a") as f:
            f.attrs["encoder_preset"] = preset
            f.attrs["encoder_settings"] = PRESETS[preset].to_json()
    cfg = tiny(training={"epochs": 1})
    cfg["data"]["root"] = str(root)
    result = run(cfg, out=tmp_path / "run")
    assert load_checkpoint(result.run_dir / "best.pt")["metadata"]["encoding"] == PRESETS["spoken-digits"].to_json()
    with pytest.warns(EncodingMismatchWarning):
        evaluate_run(result.run_dir, "test")
    with warnings.catch_warnings():
        warnings.simplefilter("error", EncodingMismatchWarning)
        evaluate_run(result.run_dir, "valid")  # the training file's own speakers: same settings, no warning
