"""Event-driven Conv2d (:class:`snn.layers.EventConv2d`) against torch's dense (mkldnn) convolution: per layer over
a density grid (the crossover behind :func:`snn.layers.event_conv_functional.conv_crossover_density`), and a whole
spike-driven transformer training step with every Conv2d event-driven vs dense.

Layers: the convolutions of the spike-driven transformer v1 at the published DVS configurations (CIFAR10-DVS:
64×64 frames, dim 256, stem pooling ``"0011"``, 16×16 tokens; DVS128 Gesture: 128×128, ``"0111"``, 8×8 tokens; the
CIFAR bench model's 8×8 tokens), with fewer frames ``N = T·B`` than a real batch so that the grid fits in minutes
(both paths scale linearly in ``N``). Each case times forward + backward (weight gradient; input gradient too unless
the layer sees the data) on Bernoulli spikes — event counts ``Poisson`` for the first stem conv — at each density,
event path (``threshold=1``) and ``F.conv2d`` interleaved, best of ``--repeats`` after one warm-up, in process CPU
time (``time.process_time``: fair on a shared machine) and wall time. ``break_even``: the density where the CPU-time
ratio crosses 1 (linear interpolation on the grid; ``null`` when the event path wins on the whole grid).

Model steps: :class:`snn.models.SpikeDrivenTransformer` at the CIFAR10-DVS configuration (``--model-batch``
samples, ``T = 10``) on Poisson event-count frames (rate ``--model-rate``), and the audio variant of
``examples/configs/spoken_digits_sdt.yaml`` (16 × ``--model-batch`` utterances of 80 frames × 70 channels, counts of
the same rate), and a small :class:`snn.models.MetaSpikeFormer` (widths 64-128-256-320, 2 + 1 transformer blocks) on
64×64 event-count frames, ``T = 4``; forward + cross-entropy + backward + AdamW, the dense model vs a copy converted by
:func:`snn.layers.event_driven` (same weights; each layer takes the event path only below its default threshold).
The input density of every Conv2d in the first forward is recorded.

    python benchmarks/bench_event_conv.py [--threads 1] [--repeats 3] [--quick] [--out FILE.json]

Writes JSON atomically (default ``benchmarks/results/event-conv-cpu.json``) with the load average beside each figure.
"""
from __future__ import annotations

import argparse
import copy
import json
import os
import platform
import statistics
import time
from typing import Callable

import torch
import torch.nn.functional as F
from torch import nn

from snn.atomic import write_atomic
from snn.layers import event_driven
from snn.layers.event_conv_functional import conv_crossover_density, event_conv2d
from snn.models import MetaSpikeFormer, SpikeDrivenAudioTransformer, SpikeDrivenTransformer
from snn.training.experiment import set_threads

# name, frames N, C_in, H (= W), C_out, kernel, stride, padding, input gradient, input kind
LAYERS = [
    ("c10dvs stem.convs.0 (events)", 8, 2, 64, 32, 3, 1, 1, False, "counts"),
    ("c10dvs stem.convs.1", 8, 32, 64, 64, 3, 1, 1, True, "spikes"),
    ("c10dvs stem.convs.2", 4, 64, 64, 128, 3, 1, 1, True, "spikes"),
    ("c10dvs stem.convs.3", 8, 128, 32, 256, 3, 1, 1, True, "spikes"),
    ("c10dvs stem.rpe_conv", 16, 256, 16, 256, 3, 1, 1, True, "spikes"),
    ("c10dvs attn q/k/v/proj 1x1", 32, 256, 16, 256, 1, 1, 0, True, "spikes"),
    ("c10dvs mlp.fc1 1x1", 16, 256, 16, 1024, 1, 1, 0, True, "spikes"),
    ("c10dvs mlp.fc2 1x1", 16, 1024, 16, 256, 1, 1, 0, True, "spikes"),
    ("cifar 1x1 [128,256,8,8]", 128, 256, 8, 256, 1, 1, 0, True, "spikes"),
    ("gesture stem.convs.0 (events)", 4, 2, 128, 32, 3, 1, 1, False, "counts"),
    ("meta downsample 3x3/2", 16, 64, 32, 128, 3, 2, 1, True, "spikes"),
]
DENSITIES = [0.01, 0.03, 0.05, 0.1, 0.2, 0.3, 0.5]


def _best(fns: dict[str, Callable[[], object]], repeats: int) -> dict[str, dict[str, float]]:
    """Best and median CPU and wall ms of ``repeats`` interleaved runs after one warm-up each."""
    for fn in fns.values():
        fn()
    cpu: dict[str, list[float]] = {k: [] for k in fns}
    wall: dict[str, list[float]] = {k: [] for k in fns}
    for _ in range(repeats):
        for name, fn in fns.items():
            c0, w0 = time.process_time(), time.perf_counter()
            fn()
            cpu[name].append((time.process_time() - c0) * 1e3)
            wall[name].append((time.perf_counter() - w0) * 1e3)
    return {k: {"cpu_ms": min(cpu[k]), "cpu_ms_median": statistics.median(cpu[k]), "wall_ms": min(wall[k])}
            for k in fns}


def _input(shape: tuple, density: float, kind: str, g: torch.Generator) -> torch.Tensor:
    if kind == "counts":  # Poisson event counts with P(count > 0) = density
        rate = -torch.log1p(torch.tensor(-min(density, 0.999))).item()
        return torch.poisson(torch.full(shape, rate), generator=g)
    return (torch.rand(shape, generator=g) < density).float()


def _break_even(rows: list[dict]) -> float | None:
    """Density where dense/event CPU time crosses 1 (linear interpolation), ``None`` if never, 0 if at once."""
    prev = None
    for r in rows:
        if r["dense_over_event"] < 1.0:
            if prev is None:
                return 0.0
            a, b = prev["dense_over_event"] - 1.0, r["dense_over_event"] - 1.0
            return prev["density"] + (r["density"] - prev["density"]) * a / (a - b)
        prev = r
    return None


def bench_layers(densities: list[float], repeats: int, scale: float) -> list[dict]:
    out = []
    g = torch.Generator().manual_seed(2)
    for name, n, c_in, size, c_out, k, s, p, grad_x, kind in LAYERS:
        n = max(1, int(n * scale))
        w = (torch.randn(c_out, c_in, k, k, generator=g) * 0.05).requires_grad_()
        b = torch.randn(c_out, generator=g).requires_grad_()
        rows = []
        for d in densities:
            x = _input((n, c_in, size, size), d, kind, g).requires_grad_(grad_x)
            grad = torch.randn(F.conv2d(x.detach(), w.detach(), None, s, p).shape, generator=g)
            t = _best({"event": lambda: event_conv2d(x, w, b, s, p, threshold=1.0).backward(grad),
                       "dense": lambda: F.conv2d(x, w, b, s, p).backward(grad)}, repeats)
            rows.append({"density": d, "measured_density": float((x != 0).float().mean()), **t,
                         "dense_over_event": t["dense"]["cpu_ms"] / t["event"]["cpu_ms"], "loadavg": os.getloadavg()[0]})
            print(f"{name:<32} {d:>5.2f} event {t['event']['cpu_ms']:>8.1f} dense {t['dense']['cpu_ms']:>8.1f} ms CPU "
                  f"({rows[-1]['dense_over_event']:.2f}x) load {rows[-1]['loadavg']:.1f}", flush=True)
        out.append({"layer": name, "frames": n, "c_in": c_in, "size": size, "c_out": c_out, "kernel": k, "stride": s,
                    "padding": p, "input_grad": grad_x, "input": kind, "rows": rows, "break_even": _break_even(rows),
                    "default_threshold": conv_crossover_density(c_out, (k, k))})
        print(f"{name:<32} break-even {out[-1]['break_even']}, default threshold {out[-1]['default_threshold']:.3f}")
    return out


def _conv_densities(model: nn.Module, x: torch.Tensor) -> dict[str, float]:
    found, handles = {}, []

    def record(name: str) -> Callable:
        def hook(_module: nn.Module, inputs: tuple, _output: torch.Tensor) -> None:
            found.setdefault(name, float((inputs[0] != 0).float().mean()))
        return hook
    for name, m in model.named_modules():
        if isinstance(m, nn.Conv2d):
            handles.append(m.register_forward_hook(record(name)))
    with torch.no_grad():
        model(x)
    for h in handles:
        h.remove()
    return found


def _models(batch: int, rate: float, g: torch.Generator) -> dict[str, tuple[nn.Module, torch.Tensor, int]]:
    """The measured models (dense, event-driven off) and their inputs: name -> (model, x, classes)."""
    torch.manual_seed(0)
    c10dvs = SpikeDrivenTransformer(2, 10, 64, dim=256, depth=2, time_steps=10, pooling="0011", erode=True,
                                    event_driven=False)
    audio = SpikeDrivenAudioTransformer(70, 10, n_frames=80, dim=64, depth=2, time_steps=2, pooling="0011",
                                        stem_width=64, readout="spikes")
    meta = MetaSpikeFormer(2, 10, 64, widths=(64, 128, 256, 320), depths=(2, 1), time_steps=4, event_driven=False)
    return {
        "sdt_v1 cifar10_dvs (2-256, 64x64, T=10, erode)":
            (c10dvs, torch.poisson(torch.full((10, batch, 2, 64, 64), rate), generator=g), 10),
        "sdt_audio spoken_digits_sdt.yaml (2-64, 80 frames x 70 channels, T=2)":
            (audio, torch.poisson(torch.full((80, 16 * batch, 70), rate), generator=g), 10),
        "meta_spikeformer (64-128-256-320, 2+1 blocks, 64x64 event frames, T=4)":
            (meta, torch.poisson(torch.full((4, batch, 2, 64, 64), rate), generator=g), 10),
    }


def bench_model(batch: int, rate: float, repeats: int) -> list[dict]:
    g = torch.Generator().manual_seed(3)
    out = []
    for name, (dense, x, classes) in _models(batch, rate, g).items():
        event = event_driven(copy.deepcopy(dense))
        y = torch.randint(0, classes, (x.shape[1],), generator=g)
        densities = _conv_densities(copy.deepcopy(dense).train(), x)

        def step_fn(model: nn.Module) -> Callable[[], None]:
            opt = torch.optim.AdamW(model.parameters(), lr=1e-4)
            model.train()

            def step() -> None:
                opt.zero_grad(set_to_none=True)
                F.cross_entropy(model(x).mean(0), y).backward()
                opt.step()
            return step
        t = _best({"event": step_fn(event), "dense": step_fn(dense)}, repeats)
        out.append({"model": name, "batch": x.shape[1], "input_rate": rate,
                    "input_density": float((x != 0).float().mean()), "conv_input_density": densities, **t,
                    "dense_over_event": t["dense"]["cpu_ms"] / t["event"]["cpu_ms"], "loadavg": os.getloadavg()[0]})
        m = out[-1]
        print(f"{name} step B={m['batch']}: event {m['event']['cpu_ms']:.0f} ms, dense {m['dense']['cpu_ms']:.0f} ms "
              f"CPU ({m['dense_over_event']:.2f}x), load {m['loadavg']:.1f}", flush=True)
    return out


def main(argv: list[str] | None = None) -> dict:
    p = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    p.add_argument("--threads", type=int, nargs="+", default=[1])
    p.add_argument("--densities", type=float, nargs="+", default=DENSITIES)
    p.add_argument("--repeats", type=int, default=3)
    p.add_argument("--model-batch", type=int, default=2)
    p.add_argument("--model-rate", type=float, default=0.15, help="Poisson rate of the model's input frames")
    p.add_argument("--skip-layers", action="store_true")
    p.add_argument("--skip-model", action="store_true")
    p.add_argument("--quick", action="store_true", help="frames / 8, densities 0.05 0.3, 1 repeat, model batch 1")
    p.add_argument("--out", default=None, help="JSON path (default benchmarks/results/event-conv-cpu.json)")
    args = p.parse_args(argv)
    scale = 1.0
    if args.quick:
        scale, args.densities, args.repeats, args.model_batch = 0.125, [0.05, 0.3], 1, 1
    if args.repeats < 1 or args.model_batch < 1 or any(t < 1 for t in args.threads):
        p.error(f"--repeats, --model-batch and --threads must be >= 1, got {args.repeats}, {args.model_batch}, "
                f"{args.threads}")
    if any(not 0.0 < d <= 1.0 for d in args.densities):
        p.error(f"--densities must lie in (0, 1], got {args.densities}")
    payload: dict = {"device": "cpu", "torch": torch.__version__, "clock": "process CPU time (and wall)",
                     "machine": platform.processor() or platform.machine(), "runs": []}
    for threads in args.threads:
        set_threads(threads)
        run: dict = {"threads": threads}
        if not args.skip_layers:
            run["layers"] = bench_layers(sorted(args.densities), args.repeats, scale)
        if not args.skip_model:
            run["models"] = bench_model(args.model_batch, args.model_rate, args.repeats)
        payload["runs"].append(run)
    write_json(args.out, "event-conv-cpu.json", payload)
    return payload


def write_json(path: str | None, default_name: str, payload: dict) -> None:
    """Write ``payload`` atomically to ``path`` (default ``benchmarks/results/<default_name>``)."""
    out = path or os.path.join(os.path.dirname(os.path.abspath(__file__)), "results", default_name)
    os.makedirs(os.path.dirname(os.path.abspath(out)), exist_ok=True)
    write_atomic(out, json.dumps(payload, indent=2))
    print(f"wrote {out}")


if __name__ == "__main__":
    main()
