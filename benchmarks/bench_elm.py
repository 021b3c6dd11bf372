"""Speed and saved memory of the fused ELM backend (numba) against the torch reference loop (CPU).

One training step of a plain ELM on SHD-like input: forward over all ``T`` steps and backward of a loss on the
last step's readout (the reference SHD recipe), ``T = 1000``, ``B = 32``, 140 inputs, 20 outputs, for each
``d_m``. The reference loop is the authors' formulation (one ``cat`` + MLP + update per step under autograd).
Times are the best of ``--repeats`` runs, backends interleaved, as process CPU time (``time.process_time``: all
threads of this process, robust to other jobs on a shared machine) and as wall time. "Saved" is what
autograd keeps between forward and backward (measured with ``torch.autograd.graph.saved_tensors_hooks``, each
storage counted once), per time step per sample.

    python benchmarks/bench_elm.py [--out results.json] [--repeats 3] [--memory 20 100] [--T 1000] [--threads N]
"""
from __future__ import annotations

import argparse
import json
import time

import torch

from snn.atomic import write_atomic
from snn.neuron_models import ELM

TARGETS = {20: 10.0, 100: 3.0}  # the speed-up targets per d_m


def _step(elm: ELM, x: torch.Tensor) -> None:
    elm.zero_grad(set_to_none=True)
    elm(x)[-1].square().sum().backward()


def _saved_bytes(elm: ELM, x: torch.Tensor) -> int:
    seen: dict[int, int] = {}

    def pack(t: torch.Tensor) -> torch.Tensor:
        storage = t.untyped_storage()
        seen[storage.data_ptr()] = storage.nbytes()
        return t

    with torch.autograd.graph.saved_tensors_hooks(pack, lambda t: t):
        y = elm(x)[-1].square().sum()
    del y
    return sum(seen.values())


def case(memory: int, T: int, B: int, C: int, repeats: int) -> dict:
    torch.manual_seed(0)
    ref = ELM(C, 20, memory=memory, dt=10.0, tau_m_max=500.0, backend="torch")
    fused = ELM(C, 20, memory=memory, dt=10.0, tau_m_max=500.0, backend="numba")
    fused.load_state_dict(ref.state_dict())
    x = (torch.rand(T, B, C, generator=torch.Generator().manual_seed(1)) < 0.05).float()
    runs = {"torch": lambda: _step(ref, x), "numba": lambda: _step(fused, x)}
    for fn in runs.values():
        fn()  # warm-up (numba compilation)
    wall: dict[str, list[float]] = {k: [] for k in runs}
    cpu: dict[str, list[float]] = {k: [] for k in runs}
    for _ in range(repeats):
        for name, fn in runs.items():
            c0, t0 = time.process_time(), time.perf_counter()
            fn()
            wall[name].append(time.perf_counter() - t0)
            cpu[name].append(time.process_time() - c0)
    ms = {k: min(v) * 1e3 for k, v in wall.items()}
    cpu_ms = {k: min(v) * 1e3 for k, v in cpu.items()}
    saved = {name: _saved_bytes(m, x) / (T * B) for name, m in (("torch", ref), ("numba", fused))}
    return {
        "d_m": memory, "T": T, "B": B, "inputs": C,
        "torch_ms": ms["torch"], "numba_ms": ms["numba"], "speedup": ms["torch"] / ms["numba"],
        "torch_cpu_ms": cpu_ms["torch"], "numba_cpu_ms": cpu_ms["numba"],
        "speedup_cpu": cpu_ms["torch"] / cpu_ms["numba"],
        "target": TARGETS.get(memory), "saved_bytes_per_step_sample_torch": saved["torch"],
        "saved_bytes_per_step_sample_numba": saved["numba"], "saved_ratio": saved["torch"] / saved["numba"],
    }


def main(argv: list[str] | None = None) -> list[dict]:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--out", help="write results as JSON to this path")
    ap.add_argument("--repeats", type=int, default=3)
    ap.add_argument("--memory", type=int, nargs="+", default=[20, 100])
    ap.add_argument("--T", type=int, default=1000)
    ap.add_argument("--B", type=int, default=32)
    ap.add_argument("--inputs", type=int, default=140)
    ap.add_argument("--threads", type=int, default=None, help="torch (and numba-kernel) threads")
    args = ap.parse_args(argv)
    if args.threads:
        torch.set_num_threads(args.threads)
    rows = [case(m, args.T, args.B, args.inputs, args.repeats) for m in args.memory]
    print(f"ELM fwd+bwd, T={args.T}, B={args.B}, {args.inputs} inputs, {torch.get_num_threads()} threads")
    print(f"{'d_m':>5} {'torch cpu ms':>13} {'numba cpu ms':>13} {'speed-up':>9} {'torch wall':>11} {'numba wall':>11} "
          f"{'speed-up':>9} {'target':>7} {'saved B/step/sample torch':>26} {'numba':>8}")
    for r in rows:
        print(f"{r['d_m']:>5} {r['torch_cpu_ms']:>13.1f} {r['numba_cpu_ms']:>13.1f} {r['speedup_cpu']:>8.1f}x "
              f"{r['torch_ms']:>11.1f} {r['numba_ms']:>11.1f} {r['speedup']:>8.1f}x "
              f"{(str(r['target']) + 'x') if r['target'] else '-':>7} {r['saved_bytes_per_step_sample_torch']:>26.0f} "
              f"{r['saved_bytes_per_step_sample_numba']:>8.0f}")
    if args.out:
        write_atomic(args.out, json.dumps({"threads": torch.get_num_threads(), "results": rows}, indent=2))
    return rows


if __name__ == "__main__":
    main()
