"""Smoke test of benchmarks/bench_neurons.py (and `snn bench neurons`) on a tiny shape."""
from __future__ import annotations

import json
from pathlib import Path

import pytest

from snn.cli.bench import DEFAULT_SCRIPT, load_benchmark
from snn.cli.main import main as snn_main

bench = load_benchmark(DEFAULT_SCRIPT)


@pytest.fixture
def restore_threads():
    import numba
    import torch

    before = torch.get_num_threads(), numba.get_num_threads()
    yield
    torch.set_num_threads(before[0])
    numba.set_num_threads(before[1])


def test_cli_runs_tiny_shapes_and_writes_json(tmp_path: Path, capsys, restore_threads):
    out = tmp_path / "res.json"
    rc = snn_main(["bench", "neurons", "--shapes", "tiny,tinylinear", "--impls", "snn-torch,snn-numba",
                   "--repeats", "1", "--warmup", "1", "--threads", "1", "--out", str(out)])
    assert rc == 0
    payload = json.loads(out.read_text())
    assert payload["torch_threads"] == 1
    rows = {(r["shape"], r["impl"]): r for r in payload["results"]}
    assert set(rows) == {(s, i) for s in ("tiny", "tinylinear") for i in ("snn-torch", "snn-numba")}
    for r in rows.values():
        assert r["skipped"] is None and r["fwd_ms"] > 0 and r["fwd_bwd_ms"] > 0 and r["saved_bytes"] > 0
    # numba saves the spikes and one float per neuron-step (h), plus per-neuron vectors: at most 2.5 floats here
    assert rows[("tiny", "snn-numba")]["saved_floats_per_neuron_step"] <= 2.5
    assert "snn-numba" in capsys.readouterr().out
    assert not list(tmp_path.glob(".*.tmp"))  # the atomic write left no temporary file


def test_ratios_are_medians_of_spikingjelly_over_ours(tmp_path: Path, monkeypatch):
    pytest.importorskip("spikingjelly.activation_based")
    # a fake clock: per implementation, the first (budget) run, 3 forward+backward runs, then 3 forward runs
    first_impl = [0.001, 0.010, 0.030, 0.020, 0.006, 0.002, 0.004]  # medians: f+b 20 ms, fwd 4 ms
    second_impl = [0.001, 0.005, 0.100, 0.004, 0.001, 0.001, 0.003]  # medians: f+b 5 ms, fwd 1 ms
    clock = iter(first_impl + second_impl)
    monkeypatch.setattr(bench, "_timed", lambda fn, device: (fn(), next(clock))[1])
    args = bench.argparse.Namespace(shapes="tiny", impls="snn-numba,spikingjelly", quick=False, repeats=3, warmup=1,
                                    threads=None, budget=30.0, device="cpu", out=str(tmp_path / "r.json"))
    results = bench.run(args)["results"]
    order = [r["impl"] for r in results]
    rows = {r["impl"]: r for r in results}
    assert sorted(order) == ["snn-numba", "spikingjelly"]
    # by hand: SpikingJelly's median time over ours
    expected = (20 / 5, 4 / 1) if order[0] == "spikingjelly" else (5 / 20, 1 / 4)
    ours = rows["snn-numba"]
    assert ours["speedup_fwd_bwd_vs_spikingjelly"] == pytest.approx(expected[0])
    assert ours["speedup_fwd_vs_spikingjelly"] == pytest.approx(expected[1])
    assert rows["spikingjelly"]["speedup_fwd_bwd_vs_spikingjelly"] == pytest.approx(1.0)


def test_budget_skips_a_case_and_says_why(tmp_path: Path):
    args = bench.argparse.Namespace(shapes="tiny", impls="snn-torch", quick=False, repeats=1, warmup=1,
                                    threads=None, budget=0.0, device="cpu", out=None)
    (row,) = bench.run(args)["results"]
    assert row["fwd_ms"] is None and "budget" in row["skipped"]


def test_bad_options_give_one_line_and_exit_code_2(capsys):
    assert snn_main(["bench", "neurons", "--shapes", "huge", "--out", "/dev/null"]) == 2
    err = capsys.readouterr().err
    assert "--shapes" in err and "Traceback" not in err and len(err.strip().splitlines()) == 1
    assert snn_main(["bench", "neurons", "--shapes", "tiny", "--impls", "brian2", "--out", "/dev/null"]) == 2
    assert "--impls" in capsys.readouterr().err
