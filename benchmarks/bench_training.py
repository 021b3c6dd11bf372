"""Training-epoch time of snn.models.DelayNet against the reference construction (dcls + SpikingJelly), CPU.

Both networks have the SHD configuration of the DCLS paper (140 inputs, 2 × 256 LIF hidden, max delay 25, LIF
tau 1.005 steps with ``decay_input=False``, ATan(5), ``detach_reset``, BatchNorm, dropout 0.4, readout LIF that
never fires) and are trained the same way on the same synthetic spike batches (``[T, B, 140]`` Bernoulli spikes at
``--density``): forward, the summed-softmax cross-entropy, backward, an Adam step on weights + BatchNorm and one on
the delay positions, position clamping. One "epoch" is ``--batches`` such steps; times are the best of
``--repeats`` epochs, the two networks interleaved (the machine may be shared).

* reference: ``DCLS.construct.modules.Dcls1d`` (gauss) on ``[B, C, T]`` with the reference's padding,
  ``BatchNorm1d``, ``spikingjelly.activation_based.neuron.LIFNode`` (multi-step, torch backend) and
  ``spikingjelly.activation_based.layer.Dropout`` (multi-step);
* ours: :class:`snn.models.DelayNet` (numba LIF kernels, sparse-input delay kernels).

It also measures inference with integer delays (the evaluation mode): our delay layers' spike scatter
(``inference="sparse"``) against the dense kernel path, in samples per second.

    python benchmarks/bench_training.py [--batches 4] [--batch-size 64] [--repeats 2] [--out FILE.json]

Writes JSON atomically (default ``benchmarks/results/training-<device>.json``).
"""
from __future__ import annotations

import argparse
import json
import os
import platform
import time
from collections.abc import Callable

import torch
import torch.nn.functional as F
from torch import nn

from snn.atomic import write_atomic
from snn.models import DelayNet

C_IN, HIDDEN, LAYERS, N_CLASSES, MAX_DELAY, DROPOUT = 140, 256, 2, 20, 25, 0.4
TAU_STEPS = 1.005


class ReferenceDelayNet(nn.Module):
    """The SNN-delays network built from ``Dcls1d`` and SpikingJelly modules (time-major in, membrane out)."""

    def __init__(self, n_inputs: int, hidden: int, layers: int, n_classes: int, max_delay: int, dropout: float):
        super().__init__()
        from DCLS.construct.modules import Dcls1d
        from spikingjelly.activation_based import layer, neuron, surrogate

        self.max_delay = max_delay
        sizes = [n_inputs] + [hidden] * layers + [n_classes]
        self.synapses = nn.ModuleList(
            Dcls1d(a, b, kernel_count=1, dilated_kernel_size=max_delay, bias=False, version="gauss")
            for a, b in zip(sizes[:-1], sizes[1:]))
        self.norms = nn.ModuleList(nn.BatchNorm1d(hidden) for _ in range(layers))
        lif = dict(tau=TAU_STEPS, decay_input=False, v_reset=0.0, detach_reset=True, step_mode="m",
                   surrogate_function=surrogate.ATan(alpha=5.0))
        self.neurons = nn.ModuleList(neuron.LIFNode(v_threshold=1.0, **lif) for _ in range(layers))
        self.dropouts = nn.ModuleList(layer.Dropout(dropout, step_mode="m") for _ in range(layers))
        self.readout = neuron.LIFNode(v_threshold=1e9, store_v_seq=True, **lif)
        with torch.no_grad():
            for s in self.synapses:
                s.SIG.fill_(max_delay // 2)
        for s in self.synapses:
            s.SIG.requires_grad_(False)

    def _delay(self, syn: nn.Module, x: torch.Tensor) -> torch.Tensor:
        xb = F.pad(x.permute(1, 2, 0), (self.max_delay - 1, (self.max_delay - 1) // 2))  # [B, C, T']
        return syn(xb).permute(2, 0, 1)  # [T'', B, C_out]

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        from spikingjelly.activation_based import functional

        functional.reset_net(self)
        for syn, norm, lif, drop in zip(self.synapses, self.norms, self.neurons, self.dropouts):
            y = self._delay(syn, x)
            T, B, C = y.shape
            x = drop(lif(norm(y.reshape(T * B, C)).reshape(T, B, C)))
        self.readout(self._delay(self.synapses[-1], x))
        return self.readout.v_seq

    def clamp(self) -> None:
        lim = self.max_delay // 2
        with torch.no_grad():
            for s in self.synapses:
                s.P.clamp_(-lim, lim)

    def parameter_groups(self) -> tuple[list[nn.Parameter], list[nn.Parameter]]:
        weights = [s.weight for s in self.synapses] + [p for n in self.norms for p in n.parameters()]
        return weights, [s.P for s in self.synapses]


def _loss(v: torch.Tensor, labels: torch.Tensor) -> torch.Tensor:
    return F.cross_entropy(F.softmax(v, dim=2).sum(0), labels)


def _batches(n: int, batch: int, steps: int, density: float, seed: int) -> list[tuple[torch.Tensor, torch.Tensor]]:
    g = torch.Generator().manual_seed(seed)
    return [((torch.rand(steps, batch, C_IN, generator=g) < density).float(),
             torch.randint(0, N_CLASSES, (batch,), generator=g)) for _ in range(n)]


def _epoch_fn(model: nn.Module, weights, positions, clamp: Callable[[], None], data) -> Callable[[], float]:
    opt_w = torch.optim.Adam(weights, lr=1e-3, weight_decay=1e-5)
    opt_p = torch.optim.Adam(positions, lr=0.1)

    def epoch() -> float:
        model.train()
        total = 0.0
        for x, y in data:
            opt_w.zero_grad(set_to_none=True)
            opt_p.zero_grad(set_to_none=True)
            loss = _loss(model(x), y)
            loss.backward()
            opt_w.step()
            opt_p.step()
            clamp()
            total += float(loss.detach())
        return total
    return epoch


def _best(fns: dict[str, Callable[[], object]], repeats: int) -> dict[str, float]:
    """Best-of-``repeats`` seconds per function, round-robin after one warm-up call each."""
    for fn in fns.values():
        fn()
    times: dict[str, list[float]] = {k: [] for k in fns}
    for _ in range(repeats):
        for name, fn in fns.items():
            t0 = time.perf_counter()
            fn()
            times[name].append(time.perf_counter() - t0)
    return {k: min(v) for k, v in times.items()}


def bench_training(batches: int, batch_size: int, steps: int, density: float, repeats: int) -> dict:
    torch.manual_seed(0)
    ours = DelayNet(C_IN, N_CLASSES, hidden=HIDDEN, layers=LAYERS, max_delay=MAX_DELAY, tau=TAU_STEPS,
                    dropout=DROPOUT)
    ref = ReferenceDelayNet(C_IN, HIDDEN, LAYERS, N_CLASSES, MAX_DELAY, DROPOUT)
    data = _batches(batches, batch_size, steps, density, seed=1)
    groups = ours.parameter_groups()
    fns = {
        "reference": _epoch_fn(ref, *ref.parameter_groups(), ref.clamp, data),
        "ours": _epoch_fn(ours, groups["weights"].params + groups["norm"].params, groups["positions"].params,
                          ours.after_optimizer_step,
                          data),
    }
    t = _best(fns, repeats)
    return {"reference_s": t["reference"], "ours_s": t["ours"], "speedup": t["reference"] / t["ours"],
            "ms_per_batch": {k: v / batches * 1e3 for k, v in t.items()}}


def bench_inference(batches: int, batch_size: int, steps: int, density: float, repeats: int) -> dict:
    torch.manual_seed(0)
    model = DelayNet(C_IN, N_CLASSES, hidden=HIDDEN, layers=LAYERS, max_delay=MAX_DELAY, tau=TAU_STEPS,
                     dropout=DROPOUT).eval()
    data = _batches(batches, batch_size, steps, density, seed=2)

    def run(mode: str) -> Callable[[], None]:
        def go() -> None:
            for s in model.synapses:
                s.inference = mode
            with torch.no_grad():
                for x, _ in data:
                    model(x)
        return go

    with model.evaluation():
        with torch.no_grad():  # both paths compute the same outputs
            for s in model.synapses:
                s.inference = "dense"
            a = model(data[0][0])
            for s in model.synapses:
                s.inference = "sparse"
            b = model(data[0][0])
        max_diff = float((a - b).abs().max())
        t = _best({"dense": run("dense"), "sparse": run("sparse")}, repeats)
    n = batches * batch_size
    return {"dense_samples_per_s": n / t["dense"], "integer_samples_per_s": n / t["sparse"],
            "speedup": t["dense"] / t["sparse"], "max_abs_diff": max_diff}


def _write_json(path: str, obj: dict) -> None:
    os.makedirs(os.path.dirname(os.path.abspath(path)), exist_ok=True)
    write_atomic(path, json.dumps(obj, indent=2))


def main(argv: list[str] | None = None) -> dict:
    p = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    p.add_argument("--batches", type=int, default=4, help="training steps per epoch (default 4)")
    p.add_argument("--batch-size", type=int, default=64, help="samples per batch (default 64)")
    p.add_argument("--steps", type=int, default=100, help="time steps T (default 100)")
    p.add_argument("--density", type=float, default=0.05, help="input spike probability per step (default 0.05)")
    p.add_argument("--repeats", type=int, default=2, help="timed epochs per network, best kept (default 2)")
    p.add_argument("--threads", type=int, default=None, help="CPU threads of torch and numba (default: all cores)")
    p.add_argument("--skip-inference", action="store_true", help="only the training comparison")
    p.add_argument("--out", default=None, help="JSON path (default benchmarks/results/training-<device>.json)")
    args = p.parse_args(argv)
    for name in ("batches", "batch_size", "steps", "repeats"):
        if getattr(args, name) < 1:
            p.error(f"--{name.replace('_', '-')} must be >= 1, got {getattr(args, name)}")
    if not 0.0 < args.density < 1.0:
        p.error(f"--density must be in (0, 1), got {args.density}")
    shape = {"batch_size": args.batch_size, "T": args.steps, "inputs": C_IN, "hidden": [HIDDEN] * LAYERS,
             "max_delay": MAX_DELAY, "density": args.density, "batches": args.batches, "repeats": args.repeats}
    if args.threads is not None:  # torch's and numba's pools (after importing the peers, which may reset torch's)
        from DCLS.construct.modules import Dcls1d  # noqa: F401
        from spikingjelly.activation_based import neuron  # noqa: F401

        from snn.training.experiment import set_threads

        set_threads(args.threads)
    train = bench_training(args.batches, args.batch_size, args.steps, args.density, args.repeats)
    print(f"training epoch ({args.batches} batches of {args.batch_size}, T={args.steps}, {C_IN}-{HIDDEN}-{HIDDEN}-"
          f"{N_CLASSES}, max delay {MAX_DELAY}, input density {args.density}), CPU, {torch.get_num_threads()} threads")
    print(f"{'network':<34} {'epoch s':>9} {'ms/batch':>10}")
    print(f"{'reference (Dcls1d + SJ LIFNode)':<34} {train['reference_s']:>9.2f} {train['ms_per_batch']['reference']:>10.1f}")
    print(f"{'ours (DelayNet)':<34} {train['ours_s']:>9.2f} {train['ms_per_batch']['ours']:>10.1f}")
    print(f"speed-up ours vs reference: {train['speedup']:.2f}x")
    result = {"device": "cpu", "torch": torch.__version__, "threads": torch.get_num_threads(),
              "machine": platform.processor() or platform.machine(), "loadavg": list(os.getloadavg()),
              "shape": shape, "training": train}
    if not args.skip_inference:
        inf = bench_inference(args.batches, args.batch_size, args.steps, args.density, args.repeats)
        print(f"inference, integer delays: dense kernel {inf['dense_samples_per_s']:.0f} samples/s, "
              f"spike scatter {inf['integer_samples_per_s']:.0f} samples/s ({inf['speedup']:.2f}x; "
              f"max |diff| {inf['max_abs_diff']:.2g})")
        result["inference"] = inf
    out = args.out or os.path.join(os.path.dirname(os.path.abspath(__file__)), "results", "training-cpu.json")
    _write_json(out, result)
    print(f"wrote {out} (load average {os.getloadavg()[0]:.2f})")
    return result


if __name__ == "__main__":
    main()
