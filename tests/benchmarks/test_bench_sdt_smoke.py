"""Smoke test of benchmarks/bench_sdt.py on one sample."""
from __future__ import annotations

import importlib.util
import json
from pathlib import Path

import pytest

BENCH = Path(__file__).resolve().parents[2] / "benchmarks" / "bench_sdt.py"


@pytest.mark.slow
def test_runs_one_sample_and_writes_json(tmp_path: Path, capsys):
    pytest.importorskip("spikingjelly.activation_based.neuron")
    spec = importlib.util.spec_from_file_location("snn_bench_sdt", BENCH)
    bench = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(bench)
    out = tmp_path / "sdt.json"
    assert bench.main(["--batch", "1", "--repeats", "1", "--warmup", "1", "--threads", "1", "--out", str(out)]) == 0
    payload = json.loads(out.read_text())
    rows = {r["variant"]: r for r in payload["results"]}
    assert set(rows) == {"snn", "spikingjelly", "no-neurons"}
    # at one sample the measured step can reuse the warm-up step's freed memory: its peak may add nothing
    assert all(r["fwd_bwd_ms"] > 0 and r["peak_step_bytes"] >= 0 and r["saved_bytes"] > 0 for r in rows.values())
    assert all(r["spread_cpu_ms"][0] <= r["fwd_bwd_cpu_ms"] <= r["spread_cpu_ms"][1] for r in rows.values())
    assert 0 < rows["snn"]["speedup_vs_spikingjelly"] and 0 < rows["spikingjelly"]["neuron_share"] < 1
    assert 0 < rows["snn"]["mask_and_sum_share"] < 1
    low, med, high = sorted(rows["snn"]["paired_speedup_median_min_max"])
    assert rows["snn"]["paired_speedup_median_min_max"][0] == med and 0 < low <= high
    assert "CPU ms [min-max]" in capsys.readouterr().out
