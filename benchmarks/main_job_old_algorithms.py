"""The main job (or any `snn` CLI command) with the delay layers' pre-issue-17 CPU algorithms switched back on.

    python benchmarks/main_job_old_algorithms.py train examples/configs/spoken_digits.yaml --set training.seed=5
    python benchmarks/main_job_old_algorithms.py --reverse-taps train examples/configs/spoken_digits.yaml ...

Without options: the input gradient by one GEMM per delay tap and the kernel built by the torch formula — a run that
reproduces the old code's seeded run bit for bit (checked for seed 5 against commit 09f1a19). ``--reverse-taps`` sums
the per-tap GEMMs in reverse tap order: the same arithmetic in another float order, a control for how far summation
order alone moves a seeded run's accuracy (README, "Measured").
"""
from __future__ import annotations

import sys

import torch

import snn.layers.delay_functional as DF


def _direct_reversed(grad_out: torch.Tensor, kernel: torch.Tensor, t_in: int) -> torch.Tensor:
    d, c_in, _ = kernel.shape
    t_out, batch, c_out = grad_out.shape
    gx = grad_out.new_zeros(t_in * batch, c_in)
    g = grad_out.reshape(t_out * batch, c_out)
    for j in reversed(range(d)):
        delay = d - 1 - j
        n = min(t_in, t_out - delay)
        if n > 0:
            gx[: n * batch].addmm_(g[delay * batch : (delay + n) * batch], kernel[j].t())
    return gx.view(t_in, batch, c_in)


def use_old_algorithms(reverse_taps: bool = False) -> None:
    """Per-tap input gradient (optionally summed in reverse tap order) and the torch kernel construction."""
    DF._SPECTRAL_SHARE = 0.0
    DF._fused_kernel_supported = lambda weight: False
    if reverse_taps:
        DF._direct_grad_input = _direct_reversed


def main(argv: list[str]) -> int:
    reverse = "--reverse-taps" in argv
    use_old_algorithms(reverse)
    from snn.cli.main import main as snn_main

    return snn_main([a for a in argv if a != "--reverse-taps"])


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
