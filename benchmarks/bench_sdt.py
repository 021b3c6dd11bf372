"""Spike-driven transformer training step: our fused LIF against SpikingJelly's ``LIFNode`` in the same model.

The model: :class:`snn.models.SpikeDrivenTransformer` with 2 blocks of 256 channels, 8 heads, the CIFAR stem
(pooling ``"0011"``, 8×8 = 64 tokens) on ``x`` ``[T=4, B=32, 3, 32, 32]`` (``--batch``/``--time-steps`` change it).
Variants (same weights, same layers; only the 18 spiking neurons differ):

* ``snn``          — our ``snn.LIF`` (fused numba kernels on CPU, CuPy on CUDA);
* ``spikingjelly`` — SpikingJelly 2.0 ``LIFNode(step_mode="m")`` with the same settings (τ = 2, hard reset to 0,
  detached reset, Sigmoid(4) surrogate), its ``torch`` backend on CPU (``--sj-backend`` to change);
* ``no-neurons``   — every neuron replaced by a straight-through threshold (3 element-wise ops): the rest of the
  model's cost.

The share of time in neurons is measured directly: one more step with forward pre/post hooks and backward pre/post
hooks on every neuron module, summing the process CPU time spent between them (``neuron_share``); the difference
to the ``no-neurons`` variant (``(t − t_no-neurons) / t``, ``neuron_share_by_removal``) is also reported, but on a
loaded machine it is within the noise when neurons are a small share. ``mask_and_sum_share`` is measured the same
way on v1 attention's ``Σ_tokens K ⊙ V`` and ``Q ⊙ mask`` (the attention neuron between them counts as a neuron):
the most that fusing them with the attention neuron could save.

The ratio against SpikingJelly is also given run by run (``paired_speedup_median_min_max``: the variants ran back to
back in each repeat, so each pair saw about the same load).

Measured: forward + backward (``(out · g).sum().backward()``, ``g`` fixed) as the median, minimum and maximum of
``--repeats`` runs after ``--warmup`` runs, the variants interleaved run by run so that a load change on a shared
machine hits them alike, both as wall-clock time and as the process's CPU time (``time.process_time``, user +
system, all threads: on a loaded machine the fairer figure, since waiting for a core is not counted; ratios and
shares use it on CPU); the bytes autograd saves for the backward (exact, from saved-tensor hooks); and peak memory
of one training step in a fresh process per variant: the resident set size sampled every 0.5 ms during the step
minus the size just before it (numba kernels compiled beforehand on a one-sample batch); on CUDA
``torch.cuda.max_memory_allocated`` above the baseline. Large CPU tensors come from fresh pages, whose first-touch
faults are a visible part of the step: ``THP_MEM_ALLOC_ENABLE=1`` (a torch setting, recorded in the JSON) backs them
with huge pages for every variant alike.

    python benchmarks/bench_sdt.py [--threads 2] [--repeats 5] [--batch 32] [--out FILE]
"""
from __future__ import annotations

import argparse
import gc
import json
import os
import platform
import statistics
import subprocess
import sys
import threading
import time
from pathlib import Path

import torch
from torch import nn

import snn
from snn.atomic import write_atomic
from snn.layers.attention import ChannelMask, CoincidenceSum
from snn.models import SpikeDrivenTransformer

VARIANTS = ("snn", "spikingjelly", "no-neurons")


class StraightThrough(nn.Module):
    """``Θ(x − V_th)`` forward, identity gradient: a near-free stand-in for a neuron."""

    def __init__(self, v_threshold: float):
        super().__init__()
        self.v_threshold = v_threshold

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return x + ((x >= self.v_threshold).to(x.dtype) - x).detach()


def _swap_neurons(model: nn.Module, make) -> int:
    n = 0
    for name, child in list(model.named_children()):
        if isinstance(child, snn.LIF):
            setattr(model, name, make(child.v_threshold))
            n += 1
        else:
            n += _swap_neurons(child, make)
    return n


def build(variant: str, time_steps: int, sj_backend: str) -> nn.Module:
    torch.manual_seed(0)
    model = SpikeDrivenTransformer(3, 10, 32, dim=256, depth=2, heads=8, time_steps=time_steps, pooling="0011",
                                   event_driven=False)  # dense convs, as measured before; bench_event_conv.py times them
    if variant == "spikingjelly":
        from spikingjelly.activation_based import neuron, surrogate

        def make(v_th: float) -> nn.Module:
            node = neuron.LIFNode(tau=2.0, v_threshold=v_th, v_reset=0.0, detach_reset=True, step_mode="m",
                                  surrogate_function=surrogate.Sigmoid(alpha=4.0))
            node.backend = sj_backend
            return node

        _swap_neurons(model, make)
    elif variant == "no-neurons":
        _swap_neurons(model, StraightThrough)
    elif variant != "snn":
        raise ValueError(f"variant: expected one of {VARIANTS}, got {variant!r}")
    return model


def _reset(model: nn.Module) -> None:
    for m in model.modules():
        if hasattr(m, "reset") and m is not model:
            m.reset()


def _step(model: nn.Module, x: torch.Tensor, g: torch.Tensor) -> None:
    _reset(model)   # SpikingJelly keeps the membrane between calls; ours starts from rest
    model.zero_grad(set_to_none=True)
    (model(x) * g).sum().backward()


def _inputs(batch: int, time_steps: int, device: torch.device) -> tuple[torch.Tensor, torch.Tensor]:
    gen = torch.Generator().manual_seed(1)
    x = torch.rand(time_steps, batch, 3, 32, 32, generator=gen).to(device)
    g = torch.randn(time_steps, batch, 10, generator=gen).to(device)
    return x, g


def _timed(fn, device: torch.device) -> tuple[float, float]:
    """(wall-clock, process CPU) seconds of ``fn()``."""
    if device.type == "cuda":
        torch.cuda.synchronize(device)
    t0, c0 = time.perf_counter(), time.process_time()
    fn()
    if device.type == "cuda":
        torch.cuda.synchronize(device)
    return time.perf_counter() - t0, time.process_time() - c0


def _saved_bytes(model: nn.Module, x: torch.Tensor) -> int:
    seen: dict[tuple[int, int], int] = {}

    def pack(t: torch.Tensor) -> torch.Tensor:
        s = t.untyped_storage()
        seen[(s.data_ptr(), s.nbytes())] = s.nbytes()
        return t

    _reset(model)
    with torch.autograd.graph.saved_tensors_hooks(pack, lambda t: t):
        out = model(x)
    out.sum().backward()
    return sum(seen.values())


def _is_neuron(m: nn.Module) -> bool:
    return isinstance(m, snn.LIF) or type(m).__name__ == "LIFNode"


def _is_mask_and_sum(m: nn.Module) -> bool:
    return isinstance(m, (CoincidenceSum, ChannelMask))


def _cpu_shares(model: nn.Module, x: torch.Tensor, g: torch.Tensor, groups: dict) -> dict[str, float]:
    """CPU time inside each group of modules (forward and backward, found by ``groups[name](module)``) over the
    CPU time of one training step."""
    spent = {name: 0.0 for name in groups}
    start: dict[int, float] = {}
    handles = []

    def hooks(name: str):
        def begin(m, *_):
            start[id(m)] = time.process_time()

        def end(m, *_):
            spent[name] += time.process_time() - start.pop(id(m))
        return begin, end

    for name, member in groups.items():
        begin, end = hooks(name)
        for m in filter(member, model.modules()):
            handles += [m.register_forward_pre_hook(begin), m.register_forward_hook(end),
                        m.register_full_backward_pre_hook(begin), m.register_full_backward_hook(end)]
    try:
        c0 = time.process_time()
        _step(model, x, g)
        total = time.process_time() - c0
    finally:
        for h in handles:
            h.remove()
    return {name: t / total for name, t in spent.items()}


def _rss_bytes() -> int:
    with open("/proc/self/statm") as f:
        return int(f.read().split()[1]) * os.sysconf("SC_PAGE_SIZE")


class _RssSampler(threading.Thread):
    """Reads the resident set size every ``interval`` seconds and keeps the largest (the kernels and torch's
    operators release the GIL, so the sampler runs during them)."""

    def __init__(self, interval: float = 0.0005):
        super().__init__(daemon=True)
        self.interval, self.peak, self._done = interval, _rss_bytes(), threading.Event()

    def run(self) -> None:
        while not self._done.is_set():
            self.peak = max(self.peak, _rss_bytes())
            time.sleep(self.interval)

    def stop(self) -> int:
        self._done.set()
        self.join()
        return max(self.peak, _rss_bytes())


def measure_peak(variant: str, args: argparse.Namespace) -> int:
    """Child process: peak memory of one training step above the memory held just before it.

    CPU: the resident set size sampled every 0.5 ms during the step minus the size just before it (a fresh process
    per variant, numba kernels compiled beforehand on a one-sample batch); CUDA: ``torch.cuda.max_memory_allocated``
    above the memory allocated before the step.
    """
    device = torch.device(args.device)
    model = build(variant, args.time_steps, args.sj_backend).to(device)
    xs, gs = _inputs(1, args.time_steps, device)
    _step(model, xs, gs)                        # compiles numba kernels, warms the allocator's small pools
    x, g = _inputs(args.batch, args.time_steps, device)
    if device.type == "cuda":
        torch.cuda.synchronize(device)
        base = torch.cuda.memory_allocated(device)
        torch.cuda.reset_peak_memory_stats(device)
        _step(model, x, g)
        torch.cuda.synchronize(device)
        return torch.cuda.max_memory_allocated(device) - base
    gc.collect()
    base = _rss_bytes()
    sampler = _RssSampler()
    sampler.start()
    _step(model, x, g)
    return sampler.stop() - base


def measure_all(args: argparse.Namespace) -> list[dict]:
    """Time every variant, interleaved run by run; then autograd-saved bytes and (child process) peak memory."""
    device = torch.device(args.device)
    models, rows = {}, {}
    for v in args.variants.split(","):
        try:
            models[v] = build(v, args.time_steps, args.sj_backend).to(device)
            rows[v] = {"variant": v, "samples_ms": [], "samples_cpu_ms": []}
        except ImportError as err:
            rows[v] = {"variant": v, "skipped": f"unavailable: {err}"}
    x, g = _inputs(args.batch, args.time_steps, device)
    for _ in range(args.warmup):
        for m in models.values():
            _step(m, x, g)
    for _ in range(args.repeats):
        for v, m in models.items():
            wall, cpu = _timed(lambda: _step(m, x, g), device)
            rows[v]["samples_ms"].append(wall * 1e3)
            rows[v]["samples_cpu_ms"].append(cpu * 1e3)
    for v, m in models.items():
        r = rows[v]
        r["fwd_bwd_ms"] = statistics.median(r["samples_ms"])
        r["fwd_bwd_cpu_ms"] = statistics.median(r["samples_cpu_ms"])
        r["spread_ms"] = [min(r["samples_ms"]), max(r["samples_ms"])]
        r["spread_cpu_ms"] = [min(r["samples_cpu_ms"]), max(r["samples_cpu_ms"])]
        r["saved_bytes"] = _saved_bytes(m, x)
        groups = {"neuron_share": _is_neuron, "mask_and_sum_share": _is_mask_and_sum}
        if v == "no-neurons":
            del groups["neuron_share"]
        r.update(_cpu_shares(m, x, g, groups))
        cmd = [sys.executable, __file__, "--child", v, "--batch", str(args.batch), "--time-steps",
               str(args.time_steps), "--device", args.device, "--sj-backend", args.sj_backend]
        if args.threads:
            cmd += ["--threads", str(args.threads)]
        out = subprocess.run(cmd, check=True, capture_output=True, text=True).stdout
        r["peak_step_bytes"] = int(out.strip().splitlines()[-1])
    return list(rows.values())


def format_table(rows: list[dict]) -> str:
    lines = [f"{'variant':<14}{'CPU ms [min-max]':>24}{'wall ms [min-max]':>24}{'vs SJ, paired [min-max]':>24}{'neurons':>9}"
             f"{'(removal)':>11}{'mask+sum':>10}{'saved MB':>10}{'peak MB':>10}", "-" * 136]
    for r in rows:
        if "skipped" in r:
            lines.append(f"{r['variant']:<14}  skipped: {r['skipped']}")
            continue

        def pct(key: str) -> str:
            return "" if r.get(key) is None else f"{100 * r[key]:.1f} %"
        ratio = "" if r.get("paired_speedup_median_min_max") is None else "{:.2f}x [{:.2f}-{:.2f}]".format(
            *r["paired_speedup_median_min_max"])
        cpu = f"{r['fwd_bwd_cpu_ms']:.0f} [{r['spread_cpu_ms'][0]:.0f}-{r['spread_cpu_ms'][1]:.0f}]"
        wall = f"{r['fwd_bwd_ms']:.0f} [{r['spread_ms'][0]:.0f}-{r['spread_ms'][1]:.0f}]"
        lines.append(f"{r['variant']:<14}{cpu:>24}{wall:>24}{ratio:>24}{pct('neuron_share'):>9}"
                     f"{pct('neuron_share_by_removal'):>11}{pct('mask_and_sum_share'):>10}"
                     f"{r['saved_bytes'] / 2**20:>10.1f}{r['peak_step_bytes'] / 2**20:>10.1f}")
    return "\n".join(lines)


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--batch", type=int, default=32)
    parser.add_argument("--time-steps", type=int, default=4)
    parser.add_argument("--repeats", type=int, default=5)
    parser.add_argument("--warmup", type=int, default=2)
    parser.add_argument("--threads", type=int, default=None, help="torch and numba threads (default: leave as is)")
    parser.add_argument("--device", default="cuda" if torch.cuda.is_available() else "cpu")
    parser.add_argument("--sj-backend", default=None, help="SpikingJelly backend (default: torch on CPU, cupy on CUDA)")
    parser.add_argument("--variants", default=",".join(VARIANTS))
    parser.add_argument("--out", default=None, help="JSON file (default benchmarks/results/sdt-<device>.json)")
    parser.add_argument("--child", default=None, help=argparse.SUPPRESS)
    args = parser.parse_args(argv)
    if args.sj_backend is None:
        args.sj_backend = "cupy" if args.device.startswith("cuda") else "torch"
    if args.threads:
        torch.set_num_threads(args.threads)
        import numba

        numba.set_num_threads(min(args.threads, numba.config.NUMBA_NUM_THREADS))
    if args.child:
        print(measure_peak(args.child, args))
        return 0
    rows = measure_all(args)
    by = {r["variant"]: r for r in rows if "skipped" not in r}
    key = "fwd_bwd_ms" if args.device.startswith("cuda") else "fwd_bwd_cpu_ms"
    base = by.get("no-neurons")
    for r in by.values():
        if base is not None and r is not base:
            r["neuron_share_by_removal"] = (r[key] - base[key]) / r[key]
        if "spikingjelly" in by:
            r["speedup_vs_spikingjelly"] = by["spikingjelly"][key] / r[key]
            # run by run (the variants ran back to back in each repeat, so a load change hits both alike)
            samples = "samples_ms" if key == "fwd_bwd_ms" else "samples_cpu_ms"
            paired = [sj / own for sj, own in zip(by["spikingjelly"][samples], r[samples])]
            r["paired_speedups_vs_spikingjelly"] = paired
            r["paired_speedup_median_min_max"] = [statistics.median(paired), min(paired), max(paired)]
    payload = {"benchmark": "sdt", "ratios_from": key, "model": "SpikeDrivenTransformer 2 x 256, 8 heads, CIFAR stem",
               "input": [args.time_steps, args.batch, 3, 32, 32], "device": args.device,
               "device_name": torch.cuda.get_device_name(0) if args.device.startswith("cuda") else platform.processor() or platform.machine(),
               "torch_threads": torch.get_num_threads(), "cpu_count": os.cpu_count(), "torch": torch.__version__,
               "load_average": os.getloadavg(), "repeats": args.repeats,
               "thp_mem_alloc": os.environ.get("THP_MEM_ALLOC_ENABLE", "0"), "results": rows,
               "command": " ".join([Path(sys.argv[0]).name, *(argv if argv is not None else sys.argv[1:])])}
    print(f"device {args.device}, torch threads {torch.get_num_threads()}, load average {os.getloadavg()[0]:.2f}, "
          f"median of {args.repeats}")
    print(format_table(rows))
    out = Path(args.out) if args.out else Path(__file__).resolve().parent / "results" / f"sdt-{args.device.replace(':', '')}.json"
    out.parent.mkdir(parents=True, exist_ok=True)
    write_atomic(out, json.dumps(payload, indent=2) + "\n")
    print(f"wrote {out}")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
