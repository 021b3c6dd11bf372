"""Smoke test of benchmarks/bench_elm.py on a tiny shape: both backends run and the JSON holds the ratios."""
from __future__ import annotations

import json
from pathlib import Path

from snn.cli.bench import load_benchmark

BENCH = Path(__file__).resolve().parents[2] / "benchmarks" / "bench_elm.py"


def test_tiny_shape_reports_both_backends(tmp_path):
    import torch

    threads = torch.get_num_threads()
    bench = load_benchmark(BENCH)
    try:
        rows = bench.main(["--T", "6", "--B", "2", "--inputs", "5", "--memory", "3", "--repeats", "1",
                           "--threads", "1", "--out", str(tmp_path / "r.json")])
    finally:
        torch.set_num_threads(threads)
    saved = json.loads((tmp_path / "r.json").read_text())["results"]
    assert saved == json.loads(json.dumps(rows))
    assert saved[0]["d_m"] == 3 and saved[0]["torch_ms"] > 0 and saved[0]["numba_ms"] > 0
    assert saved[0]["saved_bytes_per_step_sample_numba"] > 0
