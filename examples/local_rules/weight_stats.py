"""Why a local rule's features help or not: statistics of each hidden synapse's weight rows in run folders.

    python examples/local_rules/weight_stats.py RUN [RUN ...]

For every ``synapses.N.weight`` of the run's ``last.pt``: the mean cosine similarity between the rows (neurons;
random initial rows are nearly orthogonal, ~0; rows that all learned the same input direction approach 1), the
range of the row norms, and the mean weight. The first layer's columns of the silent label slots
(``data.label_channels`` in the run's config) are left out.
"""
from __future__ import annotations

import argparse
import sys
from pathlib import Path

import torch

from snn.config import load_config
from snn.training.checkpoint import load_checkpoint


def row_stats(weight: torch.Tensor) -> dict[str, float]:
    """``{"cos": mean off-diagonal cosine similarity of the rows, "norm_min", "norm_max", "mean"}``."""
    w = weight.flatten(1).double()
    n = w.shape[0]
    unit = torch.nn.functional.normalize(w, dim=1)
    cos = unit @ unit.t()
    return {"cos": float((cos.sum() - cos.diagonal().sum()) / (n * (n - 1))), "norm_min": float(w.norm(dim=1).min()),
            "norm_max": float(w.norm(dim=1).max()), "mean": float(w.mean())}


def main(argv: list[str] | None = None) -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("runs", nargs="+", type=Path)
    args = ap.parse_args(argv)
    for run in args.runs:
        state = load_checkpoint(run / "last.pt")["model"]
        slots = load_config(run / "config.yaml").data.label_channels
        for key, w in state.items():
            if key.startswith("synapses.") and key.endswith(".weight") and w.dim() >= 2:
                w = w[:, slots:] if key == "synapses.0.weight" else w
                s = row_stats(w)
                print(f"{run.name:32s} {key:20s} row cos {s['cos']:+.3f}  norms {s['norm_min']:.3f}-{s['norm_max']:.3f}"
                      f"  mean {s['mean']:+.4f}")


if __name__ == "__main__":
    main(sys.argv[1:])
