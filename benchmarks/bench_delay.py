"""Speed of snn.layers.LearnableDelay against dcls.Dcls1d on the SHD configuration's shapes (CPU).

Training: forward + backward of one layer (kernel construction included), our ``auto`` path (sparse
input kernels at spike densities below ``sparse_density``) and our ``dense`` path (``F.conv1d``)
against ``Dcls1d`` on ``[B, C, T]`` with the reference's padding. ``first`` layers (140 → 256) need no
input gradient; ``hidden`` layers (256 → 256) do (their input comes from a LIF with a surrogate).
Inference: integer delays (``to_integer_delays``) run as the spike scatter vs our dense kernel path.
Times are the best of ``--repeats`` runs, variants interleaved (the machine may be shared).

    python benchmarks/bench_delay.py [--out results.json] [--repeats 3] [--density 0.05]
"""
from __future__ import annotations

import argparse
import json
import os
import platform
import time
from typing import Callable

import torch
import torch.nn.functional as F

from snn.atomic import write_atomic
from snn.layers import LearnableDelay

T, C_IN, HIDDEN, MAX_DELAY = 100, 140, 256, 25
DROPOUT_P = 0.4


def _time(fns: dict[str, Callable[[], object]], repeats: int) -> dict[str, float]:
    """Best-of-``repeats`` wall time (ms) of each function, run round-robin so load spikes hit all alike."""
    for fn in fns.values():
        fn()  # warm-up (numba compilation, allocator)
    times: dict[str, list[float]] = {k: [] for k in fns}
    for _ in range(repeats):
        for name, fn in fns.items():
            t0 = time.perf_counter()
            fn()
            times[name].append(time.perf_counter() - t0)
    return {k: min(v) * 1e3 for k, v in times.items()}


def _spikes(batch: int, c: int, density: float, scale: float, seed: int) -> torch.Tensor:
    g = torch.Generator().manual_seed(seed)
    return (torch.rand(T, batch, c, generator=g) < density).float() * scale


def _training_case(name: str, batch: int, c_in: int, input_grad: bool, density: float, repeats: int) -> dict:
    from DCLS.construct.modules import Dcls1d

    torch.manual_seed(0)
    ours = LearnableDelay(c_in, HIDDEN, MAX_DELAY, sigma=MAX_DELAY // 2)
    ref = Dcls1d(c_in, HIDDEN, kernel_count=1, dilated_kernel_size=MAX_DELAY, bias=False, version="gauss")
    with torch.no_grad():
        ref.weight.copy_(ours.weight)
        ref.P.copy_(ours.positions.unsqueeze(0))
        ref.SIG.fill_(float(ours.sigma))
    ref.SIG.requires_grad_(False)
    scale = 1.0 / (1.0 - DROPOUT_P) if input_grad else 1.0
    x = _spikes(batch, c_in, density, scale, seed=1)
    g = torch.randn(T + ours.right_pad, batch, HIDDEN)

    def run_ours(path: str) -> Callable[[], object]:
        def step() -> None:
            ours.train_path = path
            ours.zero_grad(set_to_none=True)
            xi = x.clone().requires_grad_(input_grad)
            ours(xi).backward(g)
        return step

    def run_ref() -> None:
        ref.zero_grad(set_to_none=True)
        xi = x.clone().requires_grad_(input_grad)
        xb = F.pad(xi.permute(1, 2, 0), (MAX_DELAY - 1, (MAX_DELAY - 1) // 2))
        ref(xb).permute(2, 0, 1).backward(g)

    ms = _time({"ref": run_ref, "auto": run_ours("auto"), "dense": run_ours("dense")}, repeats)
    ref_ms, auto_ms, dense_ms = ms["ref"], ms["auto"], ms["dense"]
    return {
        "case": f"train {name} B={batch}",
        "batch": batch, "c_in": c_in, "c_out": HIDDEN, "input_grad": input_grad, "density": density,
        "dcls_ms": ref_ms, "ours_auto_ms": auto_ms, "ours_dense_ms": dense_ms,
        "speedup_auto": ref_ms / auto_ms, "speedup_dense": ref_ms / dense_ms,
    }


def _inference_case(batch: int, density: float, repeats: int) -> dict:
    torch.manual_seed(0)
    layer = LearnableDelay(HIDDEN, HIDDEN, MAX_DELAY).eval()
    layer.to_integer_delays()
    x = _spikes(batch, HIDDEN, density, 1.0, seed=2)

    def run(mode: str) -> Callable[[], object]:
        def step() -> torch.Tensor:
            layer.inference = mode
            with torch.no_grad():
                return layer(x)
        return step

    ms = _time({"dense": run("dense"), "sparse": run("sparse")}, repeats)
    dense_ms, sparse_ms = ms["dense"], ms["sparse"]
    err = float((run("dense")() - run("sparse")()).abs().max())
    return {
        "case": f"infer int-delay B={batch}", "batch": batch, "c_in": HIDDEN, "c_out": HIDDEN,
        "density": density, "dense_ms": dense_ms, "sparse_ms": sparse_ms, "speedup": dense_ms / sparse_ms,
        "max_abs_diff": err,
    }


def _write_json(path: str, data: dict) -> None:
    os.makedirs(os.path.dirname(os.path.abspath(path)), exist_ok=True)
    write_atomic(path, json.dumps(data, indent=2))


def main(argv: list[str] | None = None) -> dict:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--out", help="write results as JSON to this path")
    ap.add_argument("--repeats", type=int, default=3)
    ap.add_argument("--density", type=float, default=0.05, help="input spike density")
    ap.add_argument("--batches", type=int, nargs="+", default=[64, 256])
    args = ap.parse_args(argv)
    if args.repeats < 1:
        ap.error(f"--repeats must be >= 1, got {args.repeats}")
    if not 0.0 < args.density <= 1.0:
        ap.error(f"--density must be in (0, 1], got {args.density}")

    train = []
    for batch in args.batches:
        train.append(_training_case("first 140->256", batch, C_IN, False, args.density, args.repeats))
        train.append(_training_case("hidden 256->256", batch, HIDDEN, True, args.density, args.repeats))
    infer = [_inference_case(batch, args.density, args.repeats) for batch in args.batches]

    print(f"T={T}, max_delay={MAX_DELAY}, density={args.density}, torch threads={torch.get_num_threads()}")
    print(f"{'case':34s} {'Dcls1d ms':>10s} {'ours ms':>9s} {'dense ms':>9s} {'ratio':>6s} {'ratio dense':>11s}")
    for r in train:
        print(f"{r['case']:34s} {r['dcls_ms']:10.1f} {r['ours_auto_ms']:9.1f} {r['ours_dense_ms']:9.1f} "
              f"{r['speedup_auto']:5.2f}x {r['speedup_dense']:10.2f}x")
    print(f"{'case':34s} {'dense ms':>10s} {'sparse ms':>9s} {'ratio':>6s} {'max|diff|':>10s}")
    for r in infer:
        print(f"{r['case']:34s} {r['dense_ms']:10.1f} {r['sparse_ms']:9.1f} {r['speedup']:5.1f}x "
              f"{r['max_abs_diff']:10.2e}")
    result = {
        "benchmark": "bench_delay", "T": T, "max_delay": MAX_DELAY, "density": args.density,
        "repeats": args.repeats, "torch": torch.__version__, "threads": torch.get_num_threads(),
        "machine": platform.processor() or platform.machine(), "training": train, "inference": infer,
    }
    if args.out:
        _write_json(args.out, result)
    return result


if __name__ == "__main__":
    main()
