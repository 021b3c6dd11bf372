"""Training step of a recurrent LIF network (the SHD baseline of Cramer et al. 2020): which per-step path to use.

A recurrent layer cannot run its neurons over all ``T`` steps in one fused call (step ``t`` needs the spikes of
step ``t-1``), so :class:`snn.layers.RecurrentLIF` hoists the input GEMM and walks time, updating the neurons once
per step. This benchmark measures, in one run and inside the whole network (input GEMM, recurrent GEMMs, neurons,
LI readout, summed-softmax loss, backward, Adam step), the two ways ours can update the neurons per step and
snnTorch's ``RLeaky`` (the same network built from ``nn.Linear`` + ``RLeaky(all_to_all=True)`` + ``Leaky``):

* ``snn-torch-step``: the torch reference step called directly (the default, ``backend="torch"``);
* ``snn-fused-step``: one fused numba launch per step through the neuron module (``backend="numba"``);
* ``snntorch``: ``RLeaky`` stepped in a Python loop, as snnTorch is used.

Shapes: ``T`` steps, batch ``B``, ``C`` inputs at ``--density`` spikes, one recurrent layer of ``H`` neurons, 20
classes. Reported: median milliseconds per training step over ``--repeats`` after ``--warmup``; ratios to snnTorch.

    python benchmarks/bench_rsnn.py [--T 100] [--B 32] [--C 140] [--H 256] [--threads 1] [--out FILE.json]
"""
from __future__ import annotations

import argparse
import json
import platform
import statistics
import time
from pathlib import Path
from typing import Callable

import torch
import torch.nn.functional as F
from torch import nn

from snn.atomic import write_atomic
from snn.models import RecurrentSNN

N_CLASSES = 20
TAU = 2.0


def _ours(backend: str, C: int, H: int) -> nn.Module:
    torch.manual_seed(0)
    return RecurrentSNN(C, N_CLASSES, hidden=H, layers=1, tau=TAU, dropout=0.0, v_reset=0.0, backend=backend)


class _SnnTorchRSNN(nn.Module):
    def __init__(self, C: int, H: int) -> None:
        super().__init__()
        import snntorch

        self.fc_in = nn.Linear(C, H)
        self.rlif = snntorch.RLeaky(beta=1 - 1 / TAU, linear_features=H, reset_mechanism="zero", reset_delay=False)
        self.fc_out = nn.Linear(H, N_CLASSES)
        self.li = snntorch.Leaky(beta=1 - 1 / TAU, reset_mechanism="none")

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        spk, mem = self.rlif.init_rleaky()
        mem_out = self.li.init_leaky()
        outs = []
        for x_t in x:
            spk, mem = self.rlif(self.fc_in(x_t), spk, mem)
            _, mem_out = self.li(self.fc_out(spk), mem_out)
            outs.append(mem_out)
        return torch.stack(outs)


def _step_fn(model: nn.Module, x: torch.Tensor, y: torch.Tensor) -> Callable[[], None]:
    opt = torch.optim.Adam(model.parameters(), lr=1e-3)

    def step() -> None:
        opt.zero_grad(set_to_none=True)
        out = model(x)
        loss = F.cross_entropy(F.softmax(out, 2).sum(0), y)
        loss.backward()
        opt.step()
    return step


def run(args: argparse.Namespace) -> dict:
    if args.threads is not None:
        from snn.training.experiment import set_threads

        set_threads(args.threads)
    g = torch.Generator().manual_seed(1)
    x = (torch.rand(args.T, args.B, args.C, generator=g) < args.density).float()
    y = torch.randint(0, N_CLASSES, (args.B,), generator=g)
    impls = {"snn-torch-step": lambda: _ours("torch", args.C, args.H),
             "snn-fused-step": lambda: _ours("numba", args.C, args.H),
             "snntorch": lambda: _SnnTorchRSNN(args.C, args.H)}
    results = []
    for name, make in impls.items():
        try:
            fn = _step_fn(make(), x, y)
        except ImportError as err:
            results.append({"impl": name, "ms": None, "skipped": f"not installed: {err}"})
            continue
        for _ in range(args.warmup):
            fn()
        times = []
        for _ in range(args.repeats):
            t0 = time.perf_counter()
            fn()
            times.append(time.perf_counter() - t0)
        results.append({"impl": name, "ms": statistics.median(times) * 1e3, "skipped": None})
    base = next((r["ms"] for r in results if r["impl"] == "snntorch" and r["ms"]), None)
    for r in results:
        r["speedup_vs_snntorch"] = base / r["ms"] if base and r["ms"] else None
    payload = {"shape": {"T": args.T, "B": args.B, "C": args.C, "H": args.H, "density": args.density},
               "torch_threads": torch.get_num_threads(), "machine": platform.processor() or platform.machine(),
               "torch": torch.__version__, "results": results}
    print(f"recurrent LIF training step, T={args.T} B={args.B} C={args.C} H={args.H} "
          f"({torch.get_num_threads()} torch threads)")
    print(f"{'impl':<16} {'ms/step':>10} {'vs snnTorch':>12}")
    for r in results:
        if r["ms"] is None:
            print(f"{r['impl']:<16} {'skipped':>10}  {r['skipped']}")
        else:
            ratio = f"{r['speedup_vs_snntorch']:.2f}x" if r["speedup_vs_snntorch"] else "-"
            print(f"{r['impl']:<16} {r['ms']:>10.1f} {ratio:>12}")
    if args.out:
        write_atomic(Path(args.out), json.dumps(payload, indent=2))
    return payload


def main(argv: list[str] | None = None) -> dict:
    p = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    p.add_argument("--T", type=int, default=100)
    p.add_argument("--B", type=int, default=32)
    p.add_argument("--C", type=int, default=140)
    p.add_argument("--H", type=int, default=256)
    p.add_argument("--density", type=float, default=0.05)
    p.add_argument("--repeats", type=int, default=5)
    p.add_argument("--warmup", type=int, default=2)
    p.add_argument("--threads", type=int, default=None)
    p.add_argument("--out", default=None, help="JSON path (default: print only)")
    args = p.parse_args(argv)
    for key in ("T", "B", "C", "H", "repeats"):
        if getattr(args, key) < 1:
            p.error(f"--{key} must be >= 1, got {getattr(args, key)}")
    if not 0.0 <= args.density <= 1.0:
        p.error(f"--density must lie in [0, 1], got {args.density}")
    return run(args)


if __name__ == "__main__":
    main()
