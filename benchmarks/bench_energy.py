"""Overhead of the energy pass: ``count_operations`` (dispatch mode + hooks + counting) vs a plain forward.

    python benchmarks/bench_energy.py [--repeats 5] [--threads 1] [--json benchmarks/results/bench_energy.json]

Both run in eval mode under ``torch.no_grad``; the energy pass's first call (which computes the conv fan-out maps)
is warm-up; the two are timed alternately and the minimum of each is kept. Target: ratio ≤ 2.
"""
from __future__ import annotations

import argparse
import json
import os
import time

import torch
from torch import nn

import snn
from snn.atomic import write_atomic
from snn.energy import count_operations


class ConvNet(nn.Module):
    def __init__(self):
        super().__init__()
        self.c1, self.l1 = nn.Conv2d(2, 32, 3, padding=1), snn.LIF()
        self.c2, self.l2 = nn.Conv2d(32, 64, 3, stride=2, padding=1), snn.LIF()
        self.c3, self.l3 = nn.Conv2d(64, 64, 3, stride=2, padding=1, groups=2), snn.LIF()
        self.fc, self.out = nn.Linear(64 * 8 * 8, 10), snn.LI()

    def forward(self, x):
        T, B = x.shape[:2]
        for conv, lif in ((self.c1, self.l1), (self.c2, self.l2), (self.c3, self.l3)):
            y = conv(x.flatten(0, 1))
            x = lif(y.reshape(T, B, *y.shape[1:]))
        return self.out(self.fc(x.flatten(2)))


def mlp():
    return nn.Sequential(nn.Linear(140, 256), snn.LIF(), nn.Linear(256, 256), snn.LIF(), nn.Linear(256, 20), snn.LI())


def best_times(fns, repeats):
    """Minimum wall time of each function, runs interleaved so that load from other processes hits both alike."""
    for fn in fns:
        fn()
    times = [[] for _ in fns]
    for _ in range(repeats):
        for fn, ts in zip(fns, times):
            t0 = time.perf_counter()
            fn()
            ts.append(time.perf_counter() - t0)
    return [min(ts) for ts in times]


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--repeats", type=int, default=5)
    parser.add_argument("--threads", type=int, default=None,
                        help="torch intra-op threads (1 gives stable timings on a loaded machine)")
    parser.add_argument("--json", default="benchmarks/results/bench_energy.json", help="where to write the results")
    args = parser.parse_args()
    if args.threads:
        torch.set_num_threads(args.threads)
    torch.manual_seed(0)
    cases = {
        "MLP 140-256-256-20, T=100, B=32": (mlp(), torch.rand(100, 32, 140) * 2),
        "ConvSNN 2-32-64-64 on 32x32, T=4, B=16": (ConvNet(), torch.rand(4, 16, 2, 32, 32) * 2),
    }
    print(f"torch {torch.__version__}, {torch.get_num_threads()} threads")
    results = {"torch": torch.__version__, "threads": torch.get_num_threads(), "load_1min": os.getloadavg()[0],
               "target_ratio": 2.0, "cases": {}}
    for name, (model, x) in cases.items():
        model.eval()

        def plain():
            with torch.no_grad():
                model(x)

        plain_s, energy_s = best_times([plain, lambda: count_operations(model, x)], args.repeats)
        print(f"{name}: plain forward {plain_s * 1e3:.1f} ms, energy pass {energy_s * 1e3:.1f} ms, "
              f"ratio {energy_s / plain_s:.2f}")
        results["cases"][name] = {"plain_ms": plain_s * 1e3, "energy_ms": energy_s * 1e3, "ratio": energy_s / plain_s}
    os.makedirs(os.path.dirname(os.path.abspath(args.json)), exist_ok=True)
    write_atomic(args.json, json.dumps(results, indent=2))
    print(f"wrote {args.json}")


if __name__ == "__main__":
    main()
