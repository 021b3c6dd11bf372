"""Smoke test of benchmarks/bench_event_conv.py: the layer grid and the model step run and are reported."""
from __future__ import annotations

import json
from pathlib import Path

import pytest

from snn.cli.bench import load_benchmark

BENCH = Path(__file__).resolve().parents[2] / "benchmarks" / "bench_event_conv.py"


def _run(args: list[str]) -> dict:
    import numba
    import torch

    threads = torch.get_num_threads(), numba.get_num_threads()
    try:
        return load_benchmark(BENCH).main(args)
    finally:
        torch.set_num_threads(threads[0])
        numba.set_num_threads(threads[1])


def test_layer_grid_reports_both_paths_and_break_even(tmp_path, monkeypatch):
    bench = load_benchmark(BENCH)
    layers = bench.LAYERS[:1] + bench.LAYERS[5:6]  # a 3x3 stem conv on event counts and a 1x1 on spikes
    monkeypatch.setattr(bench, "LAYERS", layers)
    bench.main(["--threads", "1", "--quick", "--skip-model", "--out", str(tmp_path / "r.json")])
    run = json.loads((tmp_path / "r.json").read_text())["runs"][0]
    assert [r["layer"] for r in run["layers"]] == [layers[0][0], layers[1][0]]
    for layer in run["layers"]:
        assert [r["density"] for r in layer["rows"]] == [0.05, 0.3]
        assert all(r["event"]["cpu_ms"] > 0 and r["dense"]["cpu_ms"] > 0 for r in layer["rows"])
        assert "break_even" in layer and 0 <= layer["default_threshold"] < 1


@pytest.mark.slow
def test_model_step_reports_event_and_dense(tmp_path):
    _run(["--threads", "1", "--quick", "--skip-layers", "--repeats", "1", "--out", str(tmp_path / "r.json")])
    models = json.loads((tmp_path / "r.json").read_text())["runs"][0]["models"]
    assert len(models) == 3
    for model in models:
        assert model["event"]["cpu_ms"] > 0 and model["dense"]["cpu_ms"] > 0 and model["conv_input_density"]
    assert set(models[0]["conv_input_density"]) >= {"blocks.0.attn.q_conv", "blocks.1.mlp.fc2_conv"}
