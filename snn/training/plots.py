"""Plots of a run (matplotlib, Agg backend): curves, spike raster, firing rates, learned-delay histograms.

Each function writes one PNG atomically and returns its path.
"""
from __future__ import annotations

import os
from pathlib import Path
from typing import Any

import matplotlib

matplotlib.use("Agg")
import matplotlib.pyplot as plt  # noqa: E402
import torch  # noqa: E402

from snn.atomic import atomic_path  # noqa: E402

__all__ = ["plot_curves", "plot_raster", "plot_firing_rates", "plot_delay_histograms"]


def _save(fig, path: str | os.PathLike) -> Path:
    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    try:
        with atomic_path(path, suffix=".png") as tmp:
            fig.savefig(tmp, dpi=110, bbox_inches="tight")
    finally:
        plt.close(fig)
    return path


def _series(history: list[dict[str, Any]], key: str):
    pts = [(float(r["epoch"]), float(r[key])) for r in history if r.get(key) not in (None, "")]
    return [p[0] for p in pts], [p[1] for p in pts]


def plot_curves(history: list[dict[str, Any]], path: str | os.PathLike, test_acc: float | None = None,
                best_epoch: int | None = None) -> Path:
    """Loss and accuracy per epoch (train, valid or — paper protocol — test), the best epoch marked, the final test
    accuracy of the best model as a line."""
    fig, (a1, a2) = plt.subplots(1, 2, figsize=(10, 3.8))
    for split in ("train", "valid", "test"):
        for ax, what in ((a1, "loss"), (a2, "acc")):
            x, y = _series(history, f"{split}_{what}")
            if x:
                ax.plot(x, y, marker="o", ms=3, label=split)
    if test_acc is not None and history:
        a2.axhline(test_acc, color="k", ls="--", lw=1, label=f"test (best model) {test_acc:.3f}")
    if best_epoch is not None:
        for ax in (a1, a2):
            ax.axvline(float(best_epoch), color="tab:green", ls=":", lw=1.2, label=f"best epoch {best_epoch}")
    a1.set(xlabel="epoch", ylabel="loss", title="loss")
    a2.set(xlabel="epoch", ylabel="accuracy", title="accuracy")
    for ax in (a1, a2):
        ax.grid(alpha=0.3)
        ax.legend()
    return _save(fig, path)


def plot_raster(sample: dict[str, torch.Tensor], path: str | os.PathLike, dt_ms: float = 1.0,
                inputs: torch.Tensor | None = None, title: str = "spike raster of one test sample") -> Path:
    """Spike raster of one sample: the input frames (if given) and each spiking layer (``{name: [T, N]}``; feature
    maps ``[T, C, H, W]`` are flattened to ``[T, C·H·W]``); ``title`` should name the sample, its label and the
    model's prediction."""
    panels = ([("input", inputs)] if inputs is not None else []) + list(sample.items())
    panels = [(name, s.reshape(s.shape[0], -1)) for name, s in panels]
    fig, axes = plt.subplots(len(panels), 1, figsize=(9, 2.2 * len(panels)), sharex=True, squeeze=False, layout="constrained")
    for ax, (name, s) in zip(axes[:, 0], panels):
        t, n = torch.nonzero(s > 0, as_tuple=True)
        ax.scatter(t.numpy() * dt_ms, n.numpy(), s=1.5, c="k", marker="|")
        ax.set(ylabel=f"{name}\nneuron", ylim=(-0.5, s.shape[1] - 0.5))
    axes[-1, 0].set_xlabel("time (ms)")
    fig.suptitle(title)
    return _save(fig, path)


def plot_firing_rates(rates: dict[str, float], path: str | os.PathLike, split: str = "test") -> Path:
    """Bar chart: mean firing rate (spikes per neuron per step) of each spiking layer on ``split``."""
    fig, ax = plt.subplots(figsize=(max(4, 1.2 * len(rates) + 2), 3.5))
    names = list(rates)
    ax.bar(range(len(names)), [rates[n] for n in names], color="tab:blue")
    ax.set_xticks(range(len(names)), names, rotation=30, ha="right")
    ax.set(ylabel="spikes / neuron / step", title=f"firing rate per layer ({split} set)")
    ax.grid(axis="y", alpha=0.3)
    return _save(fig, path)


def plot_delay_histograms(model: torch.nn.Module, path: str | os.PathLike, dt_ms: float = 1.0) -> Path | None:
    """Histogram of the (rounded, integer) delays of every delay layer; ``None`` when the model has none."""
    layers = [m for m in model.modules() if hasattr(m, "rounded_delays") and hasattr(m, "max_delay")]
    if not layers:
        return None
    fig, axes = plt.subplots(1, len(layers), figsize=(3.6 * len(layers), 3.2), squeeze=False, layout="constrained")
    for i, (ax, layer) in enumerate(zip(axes[0], layers)):
        d = layer.rounded_delays().flatten().cpu().numpy() * dt_ms
        bins = max(layer.max_delay, 1)
        ax.hist(d, bins=bins, range=(-0.5 * dt_ms, (bins - 0.5) * dt_ms), color="tab:green")
        ax.set(title=f"delay layer {i}", xlabel="delay (ms)", ylabel="connections" if i == 0 else None)
    fig.suptitle("learned delays (rounded)")
    return _save(fig, path)
