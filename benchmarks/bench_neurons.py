"""Speed and training memory of multi-step LIF neurons: our backends against SpikingJelly, snnTorch and Norse.

Shapes (``--shapes``, comma-separated):

* ``lif``     — the neuron alone, ``x`` ``[T=100, B=32, N=1024]`` → spikes (gradient w.r.t. ``x``);
* ``on4096``  — the Open Neuromorphic library benchmark: ``Linear(N, N)`` + LIF, ``B=16``, ``T=500``, ``N=4096``
  (gradient w.r.t. the Linear's weights);
* ``on16384`` — the same with ``N=16384`` (a 16384² Linear: minutes per pass on a small CPU, so it usually
  exceeds ``--budget`` there and is reported as skipped);
* ``tiny``    — ``T=4, B=2, N=8`` for smoke tests.

Implementations: ours with ``backend="torch"`` (the reference loop), ``"numba"`` (CPU) and ``"cupy"`` (CUDA);
SpikingJelly 2.0 ``LIFNode`` (multi-step; it picks its torch implementation on CPU and its CUDA/Triton kernels on
GPU by itself), snnTorch ``Leaky`` (stepped in a Python loop, as snnTorch is used) and Norse ``LIF``
(multi-step module) when they are installed. All use τ = 2 steps (β = 0.5, ``tau_mem_inv`` = 0.5/dt), threshold 1,
hard reset to 0 and an ATan-like surrogate where the library has one; Norse's LIF also integrates a synaptic
current, so its numerics differ (timing is still comparable work per neuron-step).

Measured per case: forward (inference, ``torch.no_grad``), forward + backward (``out.backward(g)`` with a fixed dense gradient ``g``, as a layer inside a network receives), as the
median of ``--repeats`` runs after ``--warmup`` runs, and training memory: the bytes autograd saves for the
backward (unique storages, via ``torch.autograd.graph.saved_tensors_hooks``; this is what stays alive between
forward and backward, the quantity that limits batch size and T) and, on CUDA, ``torch.cuda.max_memory_allocated``
above the baseline. A case whose first warm-up run exceeds ``--budget`` seconds is skipped and reported as such.

    python benchmarks/bench_neurons.py [--shapes lif,on4096] [--quick] [--threads 2] [--repeats 7] [--out FILE]
    snn bench neurons ...   (same options)
"""
from __future__ import annotations

import argparse
import json
import os
import platform
import statistics
import time
from dataclasses import asdict, dataclass, field
from pathlib import Path
from typing import Callable

import torch
from torch import nn

import snn
from snn.atomic import write_atomic

TAU, V_TH = 2.0, 1.0
SHAPES = {
    "lif": dict(kind="neuron", T=100, B=32, N=1024),
    "on4096": dict(kind="linear", T=500, B=16, N=4096),
    "on16384": dict(kind="linear", T=500, B=16, N=16384),
    "tiny": dict(kind="neuron", T=4, B=2, N=8),
    "tinylinear": dict(kind="linear", T=4, B=2, N=8),
}
BASELINE = "spikingjelly"


# ---------------------------------------------------------------------------------------------------------------
# implementations: each builds a multi-step module [T, B, N] -> [T, B, N] spikes, or raises ImportError/RuntimeError


class _SpikingJellyLIF(nn.Module):
    def __init__(self):
        super().__init__()
        from spikingjelly.activation_based import functional, neuron, surrogate

        self.functional = functional
        self.node = neuron.LIFNode(tau=TAU, v_threshold=V_TH, v_reset=0.0, surrogate_function=surrogate.ATan(), step_mode="m")

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        self.functional.reset_net(self.node)  # each sequence from rest, as in a training loop
        return self.node(x)


class _SnnTorchLeaky(nn.Module):
    def __init__(self):
        super().__init__()
        import snntorch

        self.leaky = snntorch.Leaky(beta=1.0 - 1.0 / TAU, threshold=V_TH, spike_grad=snntorch.surrogate.atan(),
                                    reset_mechanism="zero")

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        mem = torch.zeros_like(x[0])
        spikes = []
        for t in range(x.shape[0]):
            spk, mem = self.leaky(x[t], mem)
            spikes.append(spk)
        return torch.stack(spikes)


class _NorseLIF(nn.Module):
    def __init__(self):
        super().__init__()
        from norse.torch import LIF, LIFParameters

        dt = 1e-3
        self.lif = LIF(p=LIFParameters(tau_mem_inv=torch.as_tensor(1.0 / (TAU * dt)), v_th=torch.as_tensor(V_TH),
                                       v_reset=torch.as_tensor(0.0)), dt=dt)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return self.lif(x)[0]


def _ours(backend: str) -> Callable[[], nn.Module]:
    return lambda: snn.LIF(tau=TAU, v_threshold=V_TH, v_reset=0.0, surrogate=snn.surrogate.ATan(), backend=backend)


def implementations(device: torch.device) -> dict[str, tuple[Callable[[], nn.Module], bool]]:
    """name -> (builder, is_ours)."""
    impls: dict[str, tuple[Callable[[], nn.Module], bool]] = {"snn-torch": (_ours("torch"), True)}
    if device.type == "cpu":
        impls["snn-numba"] = (_ours("numba"), True)
    else:
        impls["snn-cupy"] = (_ours("cupy"), True)
    impls[BASELINE] = (_SpikingJellyLIF, False)
    impls["snntorch"] = (_SnnTorchLeaky, False)
    impls["norse"] = (_NorseLIF, False)
    return impls


# ---------------------------------------------------------------------------------------------------------------
# measurement


@dataclass
class Result:
    shape: str
    impl: str
    T: int
    B: int
    N: int
    fwd_ms: float | None = None
    fwd_bwd_ms: float | None = None
    saved_bytes: int | None = None
    saved_floats_per_neuron_step: float | None = None
    cuda_peak_bytes: int | None = None
    speedup_fwd_vs_spikingjelly: float | None = None
    speedup_fwd_bwd_vs_spikingjelly: float | None = None
    skipped: str | None = None
    samples_fwd_ms: list[float] = field(default_factory=list)
    samples_fwd_bwd_ms: list[float] = field(default_factory=list)


def _sync(device: torch.device) -> None:
    if device.type == "cuda":
        torch.cuda.synchronize(device)


def _timed(fn: Callable[[], object], device: torch.device) -> float:
    _sync(device)
    t0 = time.perf_counter()
    fn()
    _sync(device)
    return time.perf_counter() - t0


def _saved_bytes(run_forward: Callable[[], torch.Tensor]) -> int:
    seen: dict[tuple[int, int], int] = {}

    def pack(t: torch.Tensor) -> torch.Tensor:
        storage = t.untyped_storage()
        seen[(storage.data_ptr(), storage.nbytes())] = storage.nbytes()
        return t

    with torch.autograd.graph.saved_tensors_hooks(pack, lambda t: t):
        out = run_forward()
    out.sum().backward()
    return sum(seen.values())


def measure(shape_name: str, impl_name: str, builder: Callable[[], nn.Module], device: torch.device,
            repeats: int, warmup: int, budget_s: float) -> Result:
    spec = SHAPES[shape_name]
    T, B, N = spec["T"], spec["B"], spec["N"]
    result = Result(shape_name, impl_name, T, B, N)
    try:
        neuron = builder()
    except Exception as err:  # the peer is not installed or cannot run here
        result.skipped = f"unavailable: {type(err).__name__}: {err}".splitlines()[0][:200]
        return result
    gen = torch.Generator().manual_seed(0)
    if spec["kind"] == "neuron":
        model: nn.Module = neuron
        x = (torch.randn(T, B, N, generator=gen) + 1.0).to(device)  # fires ~30-40 % of steps
        x.requires_grad_(True)
    else:
        torch.manual_seed(0)
        linear = nn.Linear(N, N)
        model = nn.Sequential(linear, neuron)
        x = (torch.rand(T, B, N, generator=gen) < 0.1).float().to(device) * 4.0  # input spikes
    model = model.to(device)

    def forward() -> torch.Tensor:
        return model(x)

    # The gradient arriving at the neurons is a dense tensor, as inside a network (the next layer's input
    # gradient); `out.sum().backward()` would hand every implementation a broadcast scalar instead.
    grad_out = torch.randn(forward().shape, generator=gen, device=device) if device.type == "cpu" else torch.randn(forward().shape, device=device)

    def forward_backward() -> None:
        model.zero_grad(set_to_none=True)
        if x.grad is not None:
            x.grad = None
        forward().backward(grad_out)

    def inference() -> None:
        with torch.no_grad():
            forward()

    try:
        first = _timed(forward_backward, device)
        if first > budget_s:
            result.skipped = f"one forward+backward took {first:.1f} s > budget {budget_s:g} s"
            return result
        for _ in range(max(warmup - 1, 0)):
            forward_backward()
        result.samples_fwd_bwd_ms = [_timed(forward_backward, device) * 1e3 for _ in range(repeats)]
        for _ in range(warmup):
            inference()
        result.samples_fwd_ms = [_timed(inference, device) * 1e3 for _ in range(repeats)]
        model.zero_grad(set_to_none=True)
        x.grad = None
        result.saved_bytes = _saved_bytes(forward)
        result.saved_floats_per_neuron_step = result.saved_bytes / (4 * T * B * N)
        if device.type == "cuda":
            torch.cuda.synchronize(device)
            base = torch.cuda.memory_allocated(device)
            torch.cuda.reset_peak_memory_stats(device)
            forward_backward()
            torch.cuda.synchronize(device)
            result.cuda_peak_bytes = torch.cuda.max_memory_allocated(device) - base
    except Exception as err:
        result.skipped = f"failed: {type(err).__name__}: {err}".splitlines()[0][:200]
        return result
    result.fwd_ms = statistics.median(result.samples_fwd_ms)
    result.fwd_bwd_ms = statistics.median(result.samples_fwd_bwd_ms)
    return result


def _add_ratios(results: list[Result]) -> None:
    base = {r.shape: r for r in results if r.impl == BASELINE and r.skipped is None}
    for r in results:
        b = base.get(r.shape)
        if b is None or r.skipped is not None:
            continue
        r.speedup_fwd_vs_spikingjelly = b.fwd_ms / r.fwd_ms
        r.speedup_fwd_bwd_vs_spikingjelly = b.fwd_bwd_ms / r.fwd_bwd_ms


# ---------------------------------------------------------------------------------------------------------------
# output


def format_table(results: list[Result]) -> str:
    header = f"{'shape':<10} {'implementation':<14} {'fwd ms':>9} {'fwd+bwd ms':>11} {'vs SJ fwd':>9} {'vs SJ f+b':>9} {'saved MB':>9} {'floats/n-step':>13}"
    lines = [header, "-" * len(header)]
    for r in results:
        if r.skipped is not None:
            lines.append(f"{r.shape:<10} {r.impl:<14} skipped: {r.skipped}")
            continue
        ratio = lambda v: f"{v:.2f}x" if v is not None else "-"  # noqa: E731
        mem = f"{r.saved_bytes / 2**20:.1f}" if r.saved_bytes is not None else "-"
        per = f"{r.saved_floats_per_neuron_step:.2f}" if r.saved_floats_per_neuron_step is not None else "-"
        lines.append(f"{r.shape:<10} {r.impl:<14} {r.fwd_ms:>9.2f} {r.fwd_bwd_ms:>11.2f} {ratio(r.speedup_fwd_vs_spikingjelly):>9} "
                     f"{ratio(r.speedup_fwd_bwd_vs_spikingjelly):>9} {mem:>9} {per:>13}")
    return "\n".join(lines)


def write_json_atomic(path: Path, payload: dict) -> None:
    path.parent.mkdir(parents=True, exist_ok=True)
    write_atomic(path, json.dumps(payload, indent=2) + "\n")


def add_arguments(parser: argparse.ArgumentParser) -> None:
    parser.add_argument("--shapes", default=None,
                        help=f"comma-separated subset of {sorted(SHAPES)} (default: lif,on4096,on16384; --quick: lif)")
    parser.add_argument("--impls", default=None, help="comma-separated implementations to run (default: all available)")
    parser.add_argument("--quick", action="store_true", help="only the lif shape, fewer repeats")
    parser.add_argument("--repeats", type=int, default=None, help="timed runs per case; the median is reported (default 7, --quick 3)")
    parser.add_argument("--warmup", type=int, default=2, help="untimed runs before timing (numba compilation, allocator)")
    parser.add_argument("--threads", type=int, default=None, help="torch.set_num_threads (and numba's); default: leave as is")
    parser.add_argument("--budget", type=float, default=30.0, help="skip a case whose first forward+backward exceeds this many seconds")
    parser.add_argument("--device", default="cuda" if torch.cuda.is_available() else "cpu", help="cpu or cuda[:i]")
    parser.add_argument("--out", default=None, help="JSON file (default benchmarks/results/neurons-<device>.json)")


def run(args: argparse.Namespace) -> dict:
    device = torch.device(args.device)
    shapes = (args.shapes or ("lif" if args.quick else "lif,on4096,on16384")).split(",")
    for s in shapes:
        if s not in SHAPES:
            raise ValueError(f"--shapes: unknown shape {s!r}; expected names from {sorted(SHAPES)}")
    repeats = args.repeats if args.repeats is not None else (3 if args.quick else 7)
    if repeats < 1 or args.warmup < 1:
        raise ValueError(f"--repeats and --warmup must be >= 1, got {repeats} and {args.warmup}")
    if args.threads is not None:
        if args.threads < 1:
            raise ValueError(f"--threads: expected >= 1, got {args.threads}")
        torch.set_num_threads(args.threads)
        try:
            import numba

            numba.set_num_threads(min(args.threads, numba.config.NUMBA_NUM_THREADS))
        except ImportError:
            pass
    impls = implementations(device)
    if args.impls:
        wanted = args.impls.split(",")
        unknown = [w for w in wanted if w not in impls]
        if unknown:
            raise ValueError(f"--impls: unknown {unknown}; expected names from {sorted(impls)}")
        impls = {k: v for k, v in impls.items() if k in wanted}
    results = []
    for shape in shapes:
        for name, (builder, _) in impls.items():
            results.append(measure(shape, name, builder, device, repeats, args.warmup, args.budget))
    _add_ratios(results)
    return {
        "benchmark": "neurons",
        "device": str(device),
        "device_name": torch.cuda.get_device_name(device) if device.type == "cuda" else platform.processor() or platform.machine(),
        "torch_threads": torch.get_num_threads(),
        "cpu_count": os.cpu_count(),
        "torch": torch.__version__,
        "snn": snn.__version__,
        "repeats": repeats,
        "warmup": args.warmup,
        "results": [asdict(r) for r in results],
    }


def main(argv: list[str] | None = None, args: argparse.Namespace | None = None) -> int:
    if args is None:
        parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
        add_arguments(parser)
        args = parser.parse_args(argv)
    payload = run(args)
    results = [Result(**{k: v for k, v in r.items()}) for r in payload["results"]]
    print(f"device {payload['device']} ({payload['device_name']}), torch threads {payload['torch_threads']}, "
          f"median of {payload['repeats']} runs")
    print(format_table(results))
    device_tag = payload["device"].replace(":", "")
    out = Path(args.out) if args.out else Path(__file__).resolve().parent / "results" / f"neurons-{device_tag}.json"
    write_json_atomic(out, payload)
    print(f"wrote {out}")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
