"""Smoke test of benchmarks/bench_e2e.py on a tiny shape: every implementation, the delay network and the
crossover table run and are reported."""
from __future__ import annotations

import json
from pathlib import Path

from snn.cli.bench import load_benchmark

BENCH = Path(__file__).resolve().parents[2] / "benchmarks" / "bench_e2e.py"


def test_tiny_shape_reports_every_implementation(tmp_path, capsys):
    import numba
    import torch

    threads = torch.get_num_threads(), numba.get_num_threads()
    bench = load_benchmark(BENCH)
    try:
        payload = bench.main(["--threads", "1", "--T", "3", "--B", "2", "--densities", "0.05", "0.5", "--repeats", "1",
                              "--crossover", "--out", str(tmp_path / "r.json")])
    finally:
        torch.set_num_threads(threads[0])
        numba.set_num_threads(threads[1])
    run = json.loads((tmp_path / "r.json").read_text())["runs"][0]
    assert payload["runs"][0]["threads"] == run["threads"] == 1
    first, second = run["mlp"]
    assert set(first["ms"]) == {"snn-event", "snn-dense", "spikingjelly", "snntorch", "norse"} - set(first["skipped"])
    assert set(second["ms"]) == {"snn-event", "snn-dense", "spikingjelly"} - set(first["skipped"])
    assert all(v > 0 for v in first["ms"].values())
    assert run["delaynet"]["ours_s"] > 0 and run["crossover"]
    assert "snn-event" in capsys.readouterr().out


def test_skip_mlp_runs_the_delay_network_only_and_refuses_an_empty_run(tmp_path):
    import numba
    import pytest
    import torch

    threads = torch.get_num_threads(), numba.get_num_threads()
    bench = load_benchmark(BENCH)
    try:
        payload = bench.main(["--threads", "1", "--T", "3", "--repeats", "1", "--quick", "--skip-mlp",
                              "--out", str(tmp_path / "r.json")])
        with pytest.raises(SystemExit):
            bench.main(["--skip-mlp", "--skip-delay", "--out", str(tmp_path / "never.json")])
    finally:
        torch.set_num_threads(threads[0])
        numba.set_num_threads(threads[1])
    run = payload["runs"][0]
    assert "mlp" not in run and run["delaynet"]["ours_s"] > 0
    assert not (tmp_path / "never.json").exists()
