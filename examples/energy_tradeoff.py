"""Accuracy–energy trade-off of the delay network: a sweep over the synaptic-operations penalty.

Each weight ``w`` of ``--weights`` trains the configured network with ``training.synops_penalty = w`` (the loss
becomes ``CE + w · synaptic operations per sample``, see :class:`snn.energy.SynOpsPenalty`) through
:func:`snn.run`, then takes from the run folder the test accuracy of the best validation model and its
synaptic operations and energy per test sample (integer delays, ``run.energy_profile``, counted on the test pass
itself). Writes ``tradeoff.csv``, ``tradeoff.md`` and ``tradeoff.png`` into ``--out``.

    python examples/energy_tradeoff.py                                   # the default sweep (about 8 min on 2 cores)
    python examples/energy_tradeoff.py --weights 0 1e-6 --epochs 4 --set model.hidden=64 --out runs/tradeoff-small
"""
from __future__ import annotations

import argparse
import csv
import io
import json
import os
import time
from pathlib import Path

from snn.atomic import write_atomic

HERE = Path(__file__).resolve().parent
DEFAULT_CONFIG = HERE / "configs" / "spoken_digits.yaml"
DEFAULT_WEIGHTS = (0.0, 1e-7, 3e-7, 1e-6, 1e-5)


def _write_atomic(path: Path, text: str) -> None:
    path.parent.mkdir(parents=True, exist_ok=True)
    write_atomic(path, text)


def sweep(config: str | os.PathLike, weights: list[float], out: Path, epochs: int | None,
          overrides: list[str], reuse: bool = False) -> list[dict]:
    """Train one run per penalty weight (``reuse``: take finished runs in ``out`` as they are); one row per run."""
    import snn

    rows = []
    for w in weights:
        t0 = time.perf_counter()
        run_dir = out / f"penalty-{w:g}"
        if reuse and (run_dir / "test_metrics.json").is_file():  # finished earlier: take its test metrics
            test, wall = json.loads((run_dir / "test_metrics.json").read_text()), float("nan")
        else:
            result = snn.run(config, overrides + [f"training.synops_penalty={w:.6e}", "run.plots=false",
                                                  "run.tensorboard=false"],
                             out=run_dir, epochs=epochs, progress=False)
            test, wall = result.test, time.perf_counter() - t0
        rates = [v for k, v in test.items() if k.startswith("test_rate/")]
        rows.append({"penalty": w, "test_acc": test["test_acc"], "synops_per_sample": test["test_synops"],
                     "energy_nj_per_sample": test["test_energy_nj"], "hidden_rate": sum(rates) / max(1, len(rates)),
                     "wall_s": wall, "run_dir": str(run_dir)})
        print(f"penalty {w:g}: test acc {rows[-1]['test_acc']:.4f}, {rows[-1]['synops_per_sample']:.0f} synops/sample, "
              f"{rows[-1]['energy_nj_per_sample']:.1f} nJ/sample ({rows[-1]['wall_s']:.0f} s)", flush=True)
    return rows


def write_outputs(rows: list[dict], out: Path, profile: str) -> None:
    buf = io.StringIO()
    w = csv.DictWriter(buf, fieldnames=list(rows[0]))
    w.writeheader()
    w.writerows(rows)
    _write_atomic(out / "tradeoff.csv", buf.getvalue())
    lines = [f"| penalty | test accuracy | synops / sample | energy / sample ({profile}) | hidden firing rate |",
             "|---:|---:|---:|---:|---:|"]
    for r in rows:
        lines.append(f"| {r['penalty']:g} | {r['test_acc']:.3f} | {r['synops_per_sample'] / 1e3:.1f} k | "
                     f"{r['energy_nj_per_sample']:.0f} nJ | {r['hidden_rate']:.3f} |")
    _write_atomic(out / "tradeoff.md", "\n".join(lines) + "\n")

    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    fig, axes = plt.subplots(1, 2, figsize=(9, 3.6))
    for ax, key, label in ((axes[0], "synops_per_sample", "synaptic operations / sample"),
                           (axes[1], "energy_nj_per_sample", f"energy / sample, nJ ({profile})")):
        xs = [r[key] for r in rows]
        ys = [100 * r["test_acc"] for r in rows]
        ax.plot(xs, ys, "o-")
        for r, x, y in zip(rows, xs, ys):
            ax.annotate(f"w={r['penalty']:g}", (x, y), textcoords="offset points", xytext=(4, 4), fontsize=8)
        ax.set_xlabel(label)
        ax.set_ylabel("test accuracy, %")
        ax.grid(alpha=0.3)
    fig.suptitle("Delay network on spoken digits: accuracy vs synaptic-operation penalty")
    fig.tight_layout()
    tmp = out / ".tradeoff.tmp.png"
    fig.savefig(tmp, dpi=120)
    plt.close(fig)
    os.replace(tmp, out / "tradeoff.png")


def main(argv: list[str] | None = None) -> list[dict]:
    p = argparse.ArgumentParser(description="Sweep training.synops_penalty; table and plot of accuracy vs energy.")
    p.add_argument("--config", default=str(DEFAULT_CONFIG), help="run config (default: configs/spoken_digits.yaml)")
    p.add_argument("--weights", type=float, nargs="+", default=list(DEFAULT_WEIGHTS),
                   help=f"penalty weights (default {' '.join(f'{w:g}' for w in DEFAULT_WEIGHTS)})")
    p.add_argument("--epochs", type=int, default=None, help="epochs per run (default: the config's)")
    p.add_argument("--set", dest="overrides", action="append", default=[], metavar="KEY=VALUE",
                   help="config override for every run (repeatable)")
    p.add_argument("--out", default="runs/energy_tradeoff", help="output folder (default runs/energy_tradeoff)")
    p.add_argument("--reuse", action="store_true",
                   help="take the weights whose run folder in --out already holds test_metrics.json as they are")
    args = p.parse_args(argv)
    if any(w < 0 for w in args.weights):
        p.error(f"--weights must be >= 0, got {args.weights}")
    out = Path(args.out)
    rows = sweep(args.config, args.weights, out, args.epochs, args.overrides, reuse=args.reuse)
    from snn.config import load_config

    write_outputs(rows, out, load_config(args.config, args.overrides).run.energy_profile)
    print((out / "tradeoff.md").read_text())
    print(f"wrote {out / 'tradeoff.csv'}, {out / 'tradeoff.md'}, {out / 'tradeoff.png'}")
    return rows


if __name__ == "__main__":
    main()
