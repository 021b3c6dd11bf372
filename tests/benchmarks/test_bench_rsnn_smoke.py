"""Smoke test of benchmarks/bench_rsnn.py on a tiny shape: every implementation runs and is reported."""
from __future__ import annotations

import json
from pathlib import Path

from snn.cli.bench import load_benchmark

BENCH = Path(__file__).resolve().parents[2] / "benchmarks" / "bench_rsnn.py"


def test_tiny_shape_reports_every_implementation(tmp_path, capsys):
    import numba
    import torch

    threads = torch.get_num_threads(), numba.get_num_threads()
    bench = load_benchmark(BENCH)
    try:
        payload = bench.main(["--T", "5", "--B", "2", "--C", "6", "--H", "4", "--repeats", "1", "--warmup", "1",
                              "--threads", "1", "--out", str(tmp_path / "r.json")])
    finally:
        torch.set_num_threads(threads[0])
        numba.set_num_threads(threads[1])
    rows = {r["impl"]: r for r in json.loads((tmp_path / "r.json").read_text())["results"]}
    assert set(rows) == {"snn-torch-step", "snn-fused-step", "snntorch"} == {r["impl"] for r in payload["results"]}
    assert all(r["skipped"] is None and r["ms"] > 0 for r in rows.values())
    assert "snn-torch-step" in capsys.readouterr().out
