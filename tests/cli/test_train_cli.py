"""`snn train | eval | plot` on a tiny config: exit codes, outputs, and error messages."""
from __future__ import annotations

import sys
from pathlib import Path

import pytest
import yaml

from snn.cli.main import main

sys.path.insert(0, str(Path(__file__).resolve().parents[1] / "training"))
from conftest import tiny_config, write_separable_shd  # noqa: E402


@pytest.fixture
def config_file(tmp_path):
    root = write_separable_shd(tmp_path / "shd")
    cfg = tiny_config(root, tmp_path / "cache", tmp_path / "runs", run={"plots": True, "energy": True})
    path = tmp_path / "tiny.yaml"
    path.write_text(yaml.safe_dump(cfg))
    return path


@pytest.mark.slow
def test_train_eval_plot(config_file, tmp_path, capsys):
    out = tmp_path / "run"
    assert main(["train", str(config_file), "--out", str(out), "--set", "training.epochs=2", "--no-progress"]) == 0
    text = capsys.readouterr().out
    assert "test accuracy" in text and "Energy per sample" in text
    for name in ("best.pt", "last.pt", "metrics.csv", "energy.json", "plots/curves.png", "plots/delays.png"):
        assert (out / name).is_file(), name
    assert main(["eval", str(out), "--split", "test"]) == 0
    assert "test accuracy" in capsys.readouterr().out
    (out / "plots" / "curves.png").unlink()
    assert main(["plot", str(out)]) == 0
    assert (out / "plots" / "curves.png").is_file()


def test_train_rejects_bad_config_before_training(config_file, capsys):
    assert main(["train", str(config_file), "--set", "model.hiden=3"]) == 2
    err = capsys.readouterr().err
    assert "unknown key 'model.hiden'" in err and "Did you mean 'model.hidden'" in err


def test_help_explains_options(capsys):
    with pytest.raises(SystemExit):
        main(["train", "--help"])
    text = capsys.readouterr().out
    for opt in ("--set", "--out", "--resume", "--device", "--epochs"):
        assert opt in text
