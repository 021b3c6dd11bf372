"""End-to-end CPU training step: the LIF-MLP SHD baseline, ours vs SpikingJelly, snnTorch and Norse; plus the
delay network (``bench_training.py``) and the event-path crossover.

LIF MLP ``700-256-256-20`` (Linear → BatchNorm → LIF → dropout 0.2, twice; Linear → leaky-integrator readout),
``T = 100``, ``B = 128``, Bernoulli input spikes at each ``--densities`` value, the same initial weights in every
implementation; one step = forward, summed-softmax cross-entropy, backward, Adam. LIF: τ = 2 steps,
``decay_input=False``, hard reset to 0, threshold 1, ATan(5), ``detach_reset``.

* ``snn-event``: :class:`snn.models.SpikingMLP` (numba LIF, event-driven Linear layers: the default);
* ``snn-dense``: the same with ``event_driven=False`` (dense BLAS Linear layers);
* ``spikingjelly``: ``LIFNode`` (multi-step) + ``layer.Dropout``; readout ``LIFNode(v_threshold=1e9)``'s membrane;
* ``snntorch``: ``Leaky`` stepped in a loop (readout ``Leaky(reset_mechanism="none")``'s membrane);
* ``norse``: ``norse.torch.LIF`` / ``LI`` (Norse's LIF also integrates a synaptic current: same cost class).

snnTorch and Norse step in Python and their cost does not depend on the input density: they are timed at the
first density only. Times are the best of ``--repeats`` steps after one warm-up, implementations interleaved.
``--crossover`` also times one layer's forward + backward on both paths over a density grid (the data behind
:func:`snn.layers.event_functional.crossover_density`), in wall and process CPU time. The delay network's step
reuses ``bench_training.py``.

    python benchmarks/bench_e2e.py [--threads 1 2] [--quick] [--crossover] [--out FILE.json]

Writes JSON atomically (default ``benchmarks/results/e2e-cpu.json``) with the load average beside each figure.
"""
from __future__ import annotations

import argparse
import os
import platform
from pathlib import Path
from typing import Callable

import torch
import torch.nn.functional as F
from torch import nn

from snn.cli.bench import load_benchmark
from snn.layers.event_functional import event_linear
from snn.models import SpikingMLP
from snn.training.experiment import set_threads

N_IN, HIDDEN, N_CLASSES, TAU, ALPHA, DROPOUT = 700, 256, 20, 2.0, 5.0, 0.2
PEERS = ("spikingjelly", "snntorch", "norse")


class _PeerMLP(nn.Module):
    """The same network with a peer library's neurons; ``neuron()``/``readout()`` build ``[T, B, N]`` modules."""

    def __init__(self, neuron: Callable[[], nn.Module], readout: nn.Module, dropout: Callable[[], nn.Module]):
        super().__init__()
        self.synapses = nn.ModuleList([nn.Linear(N_IN, HIDDEN), nn.Linear(HIDDEN, HIDDEN)])
        self.norms = nn.ModuleList(nn.BatchNorm1d(HIDDEN) for _ in range(2))
        self.neurons = nn.ModuleList(neuron() for _ in range(2))
        self.dropouts = nn.ModuleList(dropout() for _ in range(2))
        self.output = nn.Linear(HIDDEN, N_CLASSES)
        self.readout = readout

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        for syn, norm, neuron, drop in zip(self.synapses, self.norms, self.neurons, self.dropouts):
            y = syn(x)
            T, B, C = y.shape
            x = drop(neuron(norm(y.reshape(T * B, C)).reshape(T, B, C)))
        return self.readout(self.output(x))


class _Stepped(nn.Module):
    """A single-step peer neuron walked over time; returns spikes, or the membrane when ``membrane``."""

    def __init__(self, cell: nn.Module, membrane: bool) -> None:
        super().__init__()
        self.cell, self.membrane = cell, membrane

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        mem = torch.zeros_like(x[0])
        out = []
        for x_t in x.unbind(0):
            spk, mem = self.cell(x_t, mem)
            out.append(mem if self.membrane else spk)
        return torch.stack(out)


class _SJ(nn.Module):
    def __init__(self, v_threshold: float, membrane: bool) -> None:
        super().__init__()
        from spikingjelly.activation_based import neuron, surrogate

        self.node = neuron.LIFNode(tau=TAU, decay_input=False, v_threshold=v_threshold, v_reset=0.0, detach_reset=True,
                                   surrogate_function=surrogate.ATan(alpha=ALPHA), step_mode="m", store_v_seq=membrane)
        self.membrane = membrane

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        self.node.reset()
        s = self.node(x)
        return self.node.v_seq if self.membrane else s


def _seq_dropout() -> nn.Module:
    from snn.layers import SequenceDropout

    return SequenceDropout(DROPOUT)


def _build(name: str) -> nn.Module:
    torch.manual_seed(0)
    if name in ("snn-event", "snn-dense"):
        return SpikingMLP(N_IN, N_CLASSES, hidden=HIDDEN, layers=2, tau=TAU, decay_input=False, dropout=DROPOUT,
                          surrogate_alpha=ALPHA, event_driven=name == "snn-event")
    if name == "spikingjelly":
        from spikingjelly.activation_based import layer

        return _PeerMLP(lambda: _SJ(1.0, False), _SJ(1e9, True), lambda: layer.Dropout(DROPOUT, step_mode="m"))
    beta = 1.0 - 1.0 / TAU
    if name == "snntorch":
        import snntorch

        def leaky(reset: str) -> nn.Module:
            return snntorch.Leaky(beta=beta, threshold=1.0, spike_grad=snntorch.surrogate.atan(alpha=ALPHA),
                                  reset_mechanism=reset)
        return _PeerMLP(lambda: _Stepped(leaky("zero"), False), _Stepped(leaky("none"), True), _seq_dropout)
    if name == "norse":
        from norse.torch import LI, LIF, LIFParameters, LIParameters

        dt = 1e-3
        inv = torch.as_tensor(1.0 / (TAU * dt))
        lif = lambda: _First(LIF(p=LIFParameters(tau_mem_inv=inv, v_th=torch.as_tensor(1.0),  # noqa: E731
                                                 v_reset=torch.as_tensor(0.0), alpha=torch.as_tensor(ALPHA)), dt=dt))
        return _PeerMLP(lif, _First(LI(p=LIParameters(tau_mem_inv=inv), dt=dt)), _seq_dropout)
    raise ValueError(f"unknown implementation {name!r}")


class _First(nn.Module):
    def __init__(self, module: nn.Module) -> None:
        super().__init__()
        self.module = module

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return self.module(x)[0]


def _copy_weights(src: nn.Module, dst: nn.Module) -> None:
    """Same initial synaptic weights and BatchNorm parameters in every implementation."""
    with torch.no_grad():
        for a, b in zip(list(src.synapses) + [src.output], list(dst.synapses) + [dst.output]):
            b.weight.copy_(a.weight)
            b.bias.copy_(a.bias)


def _step_fn(model: nn.Module, x: torch.Tensor, y: torch.Tensor) -> Callable[[], None]:
    opt = torch.optim.Adam(model.parameters(), lr=1e-3)
    model.train()

    def step() -> None:
        opt.zero_grad(set_to_none=True)
        out = model(x)
        F.cross_entropy(F.softmax(out, 2).sum(0), y).backward()
        opt.step()
    return step


_TRAINING = load_benchmark(Path(__file__).resolve().parent / "bench_training.py")  # the delay-network step
_CONV = load_benchmark(Path(__file__).resolve().parent / "bench_event_conv.py")  # CPU + wall timing


def _best_ms(fns: dict[str, Callable[[], None]], repeats: int) -> dict[str, float]:
    """Best of ``repeats`` interleaved runs after one warm-up each (``bench_training._best``), in ms."""
    return {k: v * 1e3 for k, v in _TRAINING._best(fns, repeats).items()}


def bench_mlp(densities: list[float], T: int, B: int, repeats: int, peers: tuple[str, ...]) -> list[dict]:
    ref = _build("snn-event")
    models = {"snn-event": ref, "snn-dense": _build("snn-dense")}
    skipped = {}
    for name in peers:
        try:
            models[name] = _build(name)
        except ImportError as err:
            skipped[name] = f"not installed: {err}"
    for m in models.values():
        if m is not ref:
            _copy_weights(ref, m)
    rows = []
    g = torch.Generator().manual_seed(1)
    y = torch.randint(0, N_CLASSES, (B,), generator=g)
    for k, density in enumerate(densities):
        x = (torch.rand(T, B, N_IN, generator=g) < density).float()
        timed = {n: _step_fn(m, x, y) for n, m in models.items() if k == 0 or n in ("snn-event", "snn-dense", "spikingjelly")}
        ms = _best_ms(timed, repeats)
        row = {"density": density, "ms": ms, "loadavg": os.getloadavg()[0], "skipped": skipped}
        sj = ms.get("spikingjelly")
        row["speedup_vs_spikingjelly"] = {n: sj / v for n, v in ms.items()} if sj else {}
        row["event_vs_dense"] = ms["snn-dense"] / ms["snn-event"]
        rows.append(row)
    return rows


def bench_crossover(densities: list[float], rows: int, repeats: int) -> list[dict]:
    """One layer's forward + backward, event path vs dense, per shape and density: best of ``repeats`` in wall ms
    (``event``, ``dense``) and process CPU ms (``event_cpu``, ``dense_cpu``; all threads' CPU time, fair on a shared
    machine)."""
    out = []
    g = torch.Generator().manual_seed(2)
    for c_in, c_out, grad_x in ((N_IN, HIDDEN, False), (HIDDEN, HIDDEN, True), (HIDDEN, N_CLASSES, True)):
        w = torch.randn(c_out, c_in, generator=g, requires_grad=True)
        b = torch.randn(c_out, generator=g, requires_grad=True)
        grad = torch.randn(rows, c_out, generator=g)
        for d in densities:
            x = (torch.rand(rows, c_in, generator=g) < d).float().requires_grad_(grad_x)
            t = _CONV._best({"event": lambda: event_linear(x, w, b, 1.0).backward(grad),
                             "dense": lambda: F.linear(x, w, b).backward(grad)}, repeats)
            out.append({"c_in": c_in, "c_out": c_out, "grad_x": grad_x, "density": d,
                        "event": t["event"]["wall_ms"], "dense": t["dense"]["wall_ms"],
                        "event_cpu": t["event"]["cpu_ms"], "dense_cpu": t["dense"]["cpu_ms"],
                        "dense_over_event": t["dense"]["wall_ms"] / t["event"]["wall_ms"],
                        "dense_over_event_cpu": t["dense"]["cpu_ms"] / t["event"]["cpu_ms"],
                        "loadavg": os.getloadavg()[0]})
    return out


def _print_mlp(rows: list[dict], threads: int, T: int, B: int) -> None:
    print(f"\nLIF-MLP {N_IN}-{HIDDEN}-{HIDDEN}-{N_CLASSES} training step, T={T} B={B}, {threads} thread(s)")
    print(f"{'density':>8} {'impl':<13} {'ms/step':>9} {'vs SJ':>7} {'load':>5}")
    for r in rows:
        for name, ms in r["ms"].items():
            ratio = r["speedup_vs_spikingjelly"].get(name)
            print(f"{r['density']:>8.2f} {name:<13} {ms:>9.1f} {f'{ratio:.2f}x' if ratio else '-':>7} {r['loadavg']:>5.1f}")
        for name, why in r["skipped"].items():
            print(f"{'':>8} {name:<13} skipped ({why})")


def main(argv: list[str] | None = None) -> dict:
    p = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    p.add_argument("--threads", type=int, nargs="+", default=[1, 2], help="thread counts to run (default 1 2)")
    p.add_argument("--densities", type=float, nargs="+", default=[0.01, 0.03, 0.1, 0.3])
    p.add_argument("--T", type=int, default=100)
    p.add_argument("--B", type=int, default=128)
    p.add_argument("--repeats", type=int, default=3)
    p.add_argument("--peers", default=",".join(PEERS), help="comma-separated peers (default all)")
    p.add_argument("--quick", action="store_true", help="B=32, density 0.03, 2 repeats, SpikingJelly only, "
                   "delay network 1 batch: a few minutes")
    p.add_argument("--crossover", action="store_true", help="also time one layer on both paths over densities")
    p.add_argument("--skip-delay", action="store_true", help="skip the delay network comparison")
    p.add_argument("--skip-mlp", action="store_true", help="skip the LIF-MLP comparison (the delay network only)")
    p.add_argument("--out", default=None, help="JSON path (default benchmarks/results/e2e-cpu.json)")
    args = p.parse_args(argv)
    if args.quick:
        args.B, args.densities, args.repeats, args.peers = 32, [0.03], 2, "spikingjelly"
    for key in ("T", "B", "repeats"):
        if getattr(args, key) < 1:
            p.error(f"--{key} must be >= 1, got {getattr(args, key)}")
    if args.skip_mlp and args.skip_delay and not args.crossover:
        p.error("--skip-mlp with --skip-delay leaves nothing to run (add --crossover or drop one)")
    if any(t < 1 for t in args.threads):
        p.error(f"--threads must be >= 1, got {args.threads}")
    if any(not 0.0 <= d <= 1.0 for d in args.densities):
        p.error(f"--densities must lie in [0, 1], got {args.densities}")
    peers = tuple(n for n in args.peers.split(",") if n)
    unknown = set(peers) - set(PEERS)
    if unknown:
        p.error(f"--peers: unknown {sorted(unknown)}, expected some of {PEERS}")
    payload: dict = {"device": "cpu", "torch": torch.__version__, "machine": platform.processor() or platform.machine(),
                     "shape": {"T": args.T, "B": args.B, "sizes": [N_IN, HIDDEN, HIDDEN, N_CLASSES]}, "runs": []}
    for threads in args.threads:
        set_threads(threads)
        run: dict = {"threads": threads}
        if not args.skip_mlp:
            run["mlp"] = bench_mlp(args.densities, args.T, args.B, args.repeats, peers)
            _print_mlp(run["mlp"], threads, args.T, args.B)
        if not args.skip_delay:
            batch = 16 if args.quick else 64
            run["delaynet"] = {**_TRAINING.bench_training(1, batch, args.T, 0.05, args.repeats),
                               "batch_size": batch, "loadavg": os.getloadavg()[0]}
            d = run["delaynet"]
            print(f"delay network step (B={batch}, 140-256-256-20, max delay 25): ours {d['ms_per_batch']['ours']:.1f} ms, "
                  f"dcls + SpikingJelly {d['ms_per_batch']['reference']:.1f} ms ({d['speedup']:.2f}x), "
                  f"load {d['loadavg']:.1f}")
        if args.crossover:
            run["crossover"] = bench_crossover(args.densities if args.quick else [0.01, 0.03, 0.1, 0.2, 0.3, 0.5],
                                               args.T * args.B, args.repeats)
            print(f"{'layer':<10} {'density':>8} {'event ms':>9} {'dense ms':>9} {'dense/event':>11} "
                  f"{'CPU event':>10} {'CPU dense':>10} {'CPU d/e':>8}")
            for r in run["crossover"]:
                print(f"{r['c_in']}->{r['c_out']:<5} {r['density']:>8.2f} {r['event']:>9.1f} {r['dense']:>9.1f} "
                      f"{r['dense_over_event']:>10.2f}x {r['event_cpu']:>10.1f} {r['dense_cpu']:>10.1f} "
                      f"{r['dense_over_event_cpu']:>7.2f}x")
        payload["runs"].append(run)
    _CONV.write_json(args.out, "e2e-cpu.json", payload)
    return payload


if __name__ == "__main__":
    main()
