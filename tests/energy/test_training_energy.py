"""Energy inside training: load_run + `snn energy RUN_DIR`, per-epoch synops/energy in metrics.csv, the
synops_penalty regulariser (config, rule, effect), and dropout-scaled spikes in SynOpsPenalty."""
from __future__ import annotations

import csv
import json

import pytest
import torch
from torch import nn

from snn.cli.main import main
from snn.config import ConfigError, load_config
from snn.energy import SynOpsPenalty, estimate
from snn.models import DelayNet
from snn.training import Backprop, RunSplits, load_run, run

from ..training.conftest import tiny_config, write_separable_shd


@pytest.fixture(scope="module")
def shd_root(tmp_path_factory):
    return write_separable_shd(tmp_path_factory.mktemp("shd_energy"))


@pytest.fixture(scope="module")
def tiny_run(shd_root, tmp_path_factory):
    out = tmp_path_factory.mktemp("runs")
    cfg = tiny_config(shd_root, out / "cache", out, training={"epochs": 2})
    return run(cfg, out=out / "r")


def _rows(path):
    with open(path, newline="") as f:
        return list(csv.DictReader(f))


def test_metrics_csv_logs_validation_synops_and_energy_every_epoch(tiny_run):
    rows = _rows(tiny_run.run_dir / "metrics.csv")
    assert len(rows) == 2
    for r in rows:
        assert float(r["valid_synops"]) > 0 and float(r["valid_energy_nj"]) > 0
    # the logged count is the energy counter's on the same (best) model and data: re-count the validation set
    model, _cfg, data = load_run(tiny_run.run_dir, checkpoint="last")
    with model.evaluation():
        report = estimate(model, data.loader("valid"), ann_equivalent=False)
    assert float(rows[-1]["valid_synops"]) == pytest.approx(report.synops, rel=1e-6)
    assert float(rows[-1]["valid_energy_nj"]) == pytest.approx(report.total_pj * 1e-3, rel=1e-6)


def test_energy_pass_runs_padded_batches_with_their_lengths(tiny_run):
    model, _cfg, data = load_run(tiny_run.run_dir)
    x, labels, lengths = next(iter(data.test_loader()))
    assert int(lengths.min()) < x.shape[0]  # the batch is padded
    with model.evaluation():
        padded = estimate(model, [(x, labels, lengths)], ann_equivalent=False).synops
        alone = sum(estimate(model, [x[: int(n), b:b + 1]], ann_equivalent=False).synops for b, n in enumerate(lengths))
        ignoring = estimate(model, [x], ann_equivalent=False).synops
    assert padded == pytest.approx(alone / len(lengths), rel=1e-9)
    assert ignoring != pytest.approx(padded)  # without lengths the padded steps add operations


def test_estimate_and_snn_energy_run_give_identical_totals_on_the_same_checkpoint(tiny_run, tmp_path, capsys):
    assert main(["energy", str(tiny_run.run_dir), "--batches", "2", "--out", str(tmp_path)]) == 0
    capsys.readouterr()
    cli = json.loads((tmp_path / "energy_45nm_fp32.json").read_text())
    model, _cfg, data = load_run(tiny_run.run_dir)
    api = estimate(model, data.test_loader(), max_batches=2)  # no evaluation() by hand: estimate enters it
    assert "DelayNet.evaluation()" in api.form and cli["form"] == api.form
    assert cli["totals"]["synops"] == api.synops and cli["totals"]["total_pj"] == api.total_pj
    assert cli["ann"] == api.ann and cli["ratios"] == api.ratios
    as_is = estimate(model, data.test_loader(), max_batches=2, form="as_is")  # the Gaussian training kernel
    assert as_is.synops > api.synops


def test_load_run_rebuilds_the_trained_model_and_its_test_batches(tiny_run):
    model, cfg, data = load_run(tiny_run.run_dir)
    assert isinstance(model, DelayNet) and not model.training
    assert cfg.model == tiny_run.config.model and cfg.data == tiny_run.config.data and isinstance(data, RunSplits)
    assert cfg.training.device == "cpu"  # load_run's default device
    best = torch.load(tiny_run.run_dir / "best.pt", map_location="cpu", weights_only=False)["model"]
    for k, v in model.state_dict().items():
        assert torch.equal(v, best[k]), k
    x, labels, lengths = next(iter(data.test_loader()))
    assert x.dim() == 3 and x.shape[1] == labels.shape[0] == lengths.shape[0] and x.shape[2] == model.n_inputs
    with pytest.raises(ValueError, match="checkpoint must be"):
        load_run(tiny_run.run_dir, checkpoint="first")


def test_snn_energy_on_a_run_folder_end_to_end(tiny_run, capsys):
    rc = main(["energy", str(tiny_run.run_dir), "--profile", "45nm_fp32", "--profile", "loihi", "--batches", "2"])
    out = capsys.readouterr().out
    assert rc == 0, out
    assert "profile 45nm_fp32" in out and "profile loihi" in out
    report = json.loads((tiny_run.run_dir / "energy_loihi.json").read_text())
    assert report["samples"] > 0 and report["totals"]["synops"] > 0
    assert (tiny_run.run_dir / "plots" / "energy_45nm_fp32.png").is_file()


def test_synops_penalty_config_is_checked():
    assert load_config({"training": {"synops_penalty": 1e-6}}).training.synops_penalty == 1e-6
    with pytest.raises(ConfigError, match="synops_penalty"):
        load_config({"training": {"synops_penalty": -1.0}})
    with pytest.raises(ValueError, match="synops_penalty"):
        Backprop(synops_penalty=float("nan"))


def test_penalty_counts_dropout_scaled_spikes_like_spikes():
    lin = nn.Linear(6, 4)
    pen = SynOpsPenalty(lin, weight=1.0)
    s = (torch.rand(5, 3, 6) < 0.4).float().requires_grad_()
    lin(s)
    plain = float(pen.synops().detach())
    pen.reset()
    lin(s / (1 - 0.2))  # inverted dropout with every spike kept: the same spikes, scaled by 1.25
    assert float(pen.synops().detach()) == pytest.approx(plain) and plain == pytest.approx(float(s.detach().sum()) * 4 / 3)
    pen.reset()
    lin(torch.rand(5, 3, 6, requires_grad=True))  # not spikes: left out
    assert float(pen.synops()) == 0.0


def test_synops_penalty_lowers_synaptic_operations(shd_root, tmp_path):
    def train(weight):
        cfg = tiny_config(shd_root, tmp_path / "cache", tmp_path, training={"epochs": 3, "synops_penalty": weight},
                          model={"dropout": 0.0})
        return run(cfg, out=tmp_path / f"w{weight}")

    free, penalised = train(0.0), train(0.1)
    assert "train_synops" not in free.history[-1]
    assert penalised.history[-1]["train_synops"] < penalised.history[0]["train_synops"]
    assert penalised.history[-1]["valid_synops"] < free.history[-1]["valid_synops"]
    assert penalised.test["test_synops"] < free.test["test_synops"]

    def hidden_synops(result):  # the penalty acts on spikes; the input layer's events (the data) stay
        model, _cfg, data = load_run(result.run_dir)
        report = estimate(model, data.loader("valid"), ann_equivalent=False)
        return sum(layer["synops"] for layer in report.layers if layer["kind"] == "delay" and layer["name"] != "synapses.0")

    assert hidden_synops(penalised) < 0.6 * hidden_synops(free)


@pytest.mark.slow
def test_energy_tradeoff_example_writes_table_and_plot(shd_root, tmp_path):
    import importlib.util
    from pathlib import Path

    script = Path(__file__).resolve().parents[2] / "examples" / "energy_tradeoff.py"
    spec = importlib.util.spec_from_file_location("energy_tradeoff", script)
    mod = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(mod)
    cfg = tmp_path / "tiny.yaml"
    import yaml

    cfg.write_text(yaml.safe_dump(tiny_config(shd_root, tmp_path / "cache", tmp_path, training={"epochs": 1})))
    rows = mod.main(["--config", str(cfg), "--weights", "0", "0.1", "--out", str(tmp_path / "sweep")])
    assert [r["penalty"] for r in rows] == [0.0, 0.1]
    assert rows[1]["synops_per_sample"] < rows[0]["synops_per_sample"]
    for name in ("tradeoff.csv", "tradeoff.md", "tradeoff.png"):
        assert (tmp_path / "sweep" / name).is_file(), name
    assert "| 0.1 |" in (tmp_path / "sweep" / "tradeoff.md").read_text()
    again = mod.main(["--config", str(cfg), "--weights", "0.1", "--reuse", "--out", str(tmp_path / "sweep")])
    assert again[0]["test_acc"] == rows[1]["test_acc"] and again[0]["synops_per_sample"] == rows[1]["synops_per_sample"]
