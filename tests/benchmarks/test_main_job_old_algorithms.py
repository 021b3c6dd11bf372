"""benchmarks/main_job_old_algorithms.py switches the delay layers back to the per-tap gradient and the torch kernel."""
from __future__ import annotations

from pathlib import Path

import torch

from snn.cli.bench import load_benchmark
from snn.layers import delay_functional as DF

BENCH = Path(__file__).resolve().parents[2] / "benchmarks" / "main_job_old_algorithms.py"


def test_old_algorithms_take_the_per_tap_route_and_the_torch_kernel(monkeypatch):
    for name in ("_SPECTRAL_SHARE", "_fused_kernel_supported", "_direct_grad_input"):
        monkeypatch.setattr(DF, name, getattr(DF, name))  # restored after the test
    bench = load_benchmark(BENCH)
    gen = torch.Generator().manual_seed(0)
    g = torch.randn(148, 8, 64, generator=gen, dtype=torch.float64)  # T = 124, D = 25: the spectral route's size
    kernel = torch.randn(25, 64, 64, generator=gen, dtype=torch.float64)
    direct = DF._direct_grad_input(g, kernel, 124)
    assert not torch.equal(DF._dense_grad_input(g, kernel, 124), direct)  # spectral: other rounding
    bench.use_old_algorithms()
    assert torch.equal(DF._dense_grad_input(g, kernel, 124), direct)
    assert not DF._fused_kernel_supported(kernel)
    bench.use_old_algorithms(reverse_taps=True)
    reversed_order = DF._dense_grad_input(g, kernel, 124)
    torch.testing.assert_close(reversed_order, direct, rtol=1e-12, atol=1e-12)
