"""`snn export RUN --to FILE.nir` and `snn import FILE.nir`: a trained run leaves as a NIR file that rebuilds the same
network, and bad input gives one clear line and exit code 2."""
from __future__ import annotations

import json
import sys
from pathlib import Path

import pytest
import torch
import yaml

from snn.cli.main import main

sys.path.insert(0, str(Path(__file__).resolve().parents[1] / "training"))
from conftest import tiny_config, write_separable_shd  # noqa: E402


@pytest.fixture(scope="module")
def shd_root(tmp_path_factory):
    return write_separable_shd(tmp_path_factory.mktemp("shd"))


def _train(shd_root: Path, tmp_path: Path, model: dict) -> Path:
    cfg = tiny_config(shd_root, tmp_path / "cache", tmp_path / "runs")
    cfg["model"] = model
    path = tmp_path / "tiny.yaml"
    path.write_text(yaml.safe_dump(cfg))
    out = tmp_path / "run"
    assert main(["train", str(path), "--out", str(out), "--set", "training.epochs=1", "--no-progress"]) == 0
    return out


@pytest.mark.slow
@pytest.mark.parametrize("model", [
    {"name": "delaynet", "hidden": 16, "layers": 1, "max_delay": 5, "tau_ms": 10.0, "dropout": 0.1},
    {"name": "rsnn", "hidden": 16, "layers": 1, "tau_ms": 10.0, "dropout": 0.1},
], ids=["delaynet", "rsnn"])
def test_export_then_import_rebuilds_the_trained_network(shd_root, tmp_path, capsys, model):
    from snn.interop import from_nir
    from snn.training.experiment import load_run

    run = _train(shd_root, tmp_path, model)
    capsys.readouterr()
    nir_file = tmp_path / "out" / "model.nir"
    assert main(["export", str(run), "--to", str(nir_file)]) == 0
    text = capsys.readouterr().out
    assert f"wrote {nir_file}" in text and "dt = 0.005 s" in text and "dropouts.0 (SequenceDropout)" in text

    assert main(["import", str(nir_file), "--steps", "30"]) == 0
    text = capsys.readouterr().out
    assert "dt = 0.005 s" in text and "input [20] -> output [" in text and "ran 30 steps" in text
    assert ("recurrent" in text) == (model["name"] == "rsnn")
    assert main(["import", str(nir_file), "--json"]) == 0
    report = json.loads(capsys.readouterr().out)
    assert report["neurons"]["spiking"] == 16 and report["metadata"]["model"] == model["name"]

    # the file's network equals the best checkpoint's inference network on the run's test data
    trained, _cfg, data = load_run(run)
    x, _labels, _lengths = next(iter(data.test_loader()))
    net = from_nir(nir_file, 0.005)
    with trained.evaluation() if hasattr(trained, "evaluation") else torch.no_grad(), torch.no_grad():
        ref = trained(x)
    pad = ref.shape[0] - x.shape[0]  # DelayNet appends (L + 1) R steps; the stream sees them as zero input
    out = net(torch.cat([x, x.new_zeros(pad, *x.shape[1:])]))
    steps = x.shape[0] + (trained.right_pad if pad else 0)  # DelayNet: exact on the first T + R steps
    torch.testing.assert_close(out[:steps], ref[:steps], rtol=1e-4, atol=1e-4)


def test_import_bad_file_is_one_clear_error(tmp_path, capsys):
    junk = tmp_path / "junk.nir"
    junk.write_bytes(b"not a graph")
    assert main(["import", str(junk)]) == 2
    err = capsys.readouterr().err
    assert err.startswith("snn import: error:") and "not a NIR file" in err and "Traceback" not in err
    assert main(["import", str(tmp_path / "missing.nir")]) == 2
    assert "NIR file not found" in capsys.readouterr().err


def test_import_unsupported_node_names_it(tmp_path, capsys):
    import nir
    import numpy as np

    path = tmp_path / "threshold.nir"
    nir.write(path, nir.NIRGraph.from_list(nir.Linear(weight=np.ones((2, 2))), nir.Threshold(threshold=np.ones(2))))
    assert main(["import", str(path), "--dt", "0.001"]) == 2
    err = capsys.readouterr().err
    assert "threshold: NIR node type Threshold is not supported" in err and "Traceback" not in err


def test_import_without_dt_asks_for_it(tmp_path, capsys):
    import nir
    import numpy as np

    path = tmp_path / "peer.nir"
    nir.write(path, nir.NIRGraph.from_list(nir.Linear(weight=np.ones((2, 3)))))
    assert main(["import", str(path)]) == 2
    assert "pass --dt SECONDS" in capsys.readouterr().err
    assert main(["import", str(path), "--dt", "0.001", "--steps", "5"]) == 0
    assert "output [2]" in capsys.readouterr().out


def test_export_missing_run_is_one_clear_error(tmp_path, capsys):
    assert main(["export", str(tmp_path / "nothing"), "--to", str(tmp_path / "m.nir")]) == 2
    err = capsys.readouterr().err
    assert err.startswith("snn export: error:") and not (tmp_path / "m.nir").exists()
