"""Text summary of a spike dataset (used by ``snn data info PATH``)."""

from __future__ import annotations

import os
from pathlib import Path
from typing import Any

import numpy as np

from snn.datasets.spike_h5 import SpikeTrainH5

__all__ = ["summarize", "spike_statistics"]


def spike_statistics(ds: SpikeTrainH5, chunk: int = 512) -> dict[str, Any]:
    """Per-sample statistics of an SHD-layout dataset, read from the raw spikes in chunks.

    Returns a dict with ``n``, ``classes``, ``counts`` (per class), ``duration_s`` and
    ``spikes`` (arrays ``[N]``: last spike time, spike count), ``channels_used`` (distinct channel
    ids with at least one spike), ``channel_min``/``channel_max``.
    """
    idx = ds.indices
    order = np.argsort(idx, kind="stable")
    sorted_idx = idx[order]
    dur = np.zeros(idx.size)
    cnt = np.zeros(idx.size, dtype=np.int64)
    seen = np.zeros(65536, dtype=bool)
    f = ds._file()
    ds_t, ds_u = f["spikes/times"], f["spikes/units"]
    for a in range(0, sorted_idx.size, chunk):
        sel = sorted_idx[a:a + chunk]
        lo, hi = int(sel[0]), int(sel[-1]) + 1
        ts, us = ds_t[lo:hi], ds_u[lo:hi]
        for k, j in enumerate(sel):
            t, u = ts[j - lo], us[j - lo]
            pos = order[a + k]
            cnt[pos] = t.size
            dur[pos] = float(t.max()) if t.size else 0.0
            seen[np.asarray(u, dtype=np.int64)] = True
    labels = ds.labels
    used = np.flatnonzero(seen)
    return {
        "n": int(idx.size),
        "classes": ds.classes,
        "counts": np.bincount(labels, minlength=len(ds.classes)),
        "duration_s": dur,
        "spikes": cnt,
        "channels_used": int(used.size),
        "channel_min": int(used.min()) if used.size else None,
        "channel_max": int(used.max()) if used.size else None,
        "speakers": None if ds.speakers is None else np.unique(ds.speakers),
    }


def _stat_line(name: str, v: np.ndarray, fmt: str) -> str:
    if v.size == 0:
        return f"{name:<18} (no samples)"
    return (f"{name:<18} mean {format(float(v.mean()), fmt)}  min {format(float(v.min()), fmt)}  "
            f"max {format(float(v.max()), fmt)}")


def summarize(path_or_dataset: str | os.PathLike | SpikeTrainH5 | Any) -> str:
    """Human-readable summary: classes with counts, sample durations, spikes per sample, channels used.

    Accepts a path to an SHD-layout HDF5 file, a :class:`SpikeTrainH5` (or subclass), or any
    dataset of ``(frames [T, ...], label)`` items (then durations are in steps and spike counts
    are frame sums).
    """
    if isinstance(path_or_dataset, (str, os.PathLike)):
        ds: Any = SpikeTrainH5(Path(path_or_dataset), frames=None, cache=False)
    else:
        ds = path_or_dataset
    lines: list[str] = []
    if isinstance(ds, SpikeTrainH5):
        s = spike_statistics(ds)
        lines.append(f"file               {ds.path}")
        lines.append(f"samples            {s['n']}")
        if s["speakers"] is not None:
            lines.append(f"speakers           {len(s['speakers'])} ({', '.join(map(str, s['speakers'][:12]))}"
                         f"{', …' if len(s['speakers']) > 12 else ''})")
        lines.append(_stat_line("duration (s)", s["duration_s"], ".3f"))
        lines.append(_stat_line("spikes/sample", s["spikes"], ".0f"))
        lines.append(f"channels used      {s['channels_used']} (ids {s['channel_min']}..{s['channel_max']})")
        classes, counts = s["classes"], s["counts"]
    else:
        labels, steps, spikes = [], [], []
        for i in range(len(ds)):
            x, y = ds[i]
            labels.append(int(y))
            steps.append(int(x.shape[0]))
            spikes.append(float(x.sum()))
        labels_a = np.asarray(labels, dtype=np.int64)
        classes = list(getattr(ds, "classes", [str(c) for c in range(int(labels_a.max(initial=-1)) + 1)]))
        counts = np.bincount(labels_a, minlength=len(classes))
        lines.append(f"dataset            {type(ds).__name__}")
        lines.append(f"samples            {len(labels)}")
        lines.append(_stat_line("duration (steps)", np.asarray(steps), ".1f"))
        lines.append(_stat_line("spikes/sample", np.asarray(spikes), ".0f"))
    lines.append(f"classes            {len(classes)}")
    width = max((len(c) for c in classes), default=0)
    for c, n in zip(classes, counts):
        lines.append(f"  {c:<{width}}  {int(n)}")
    return "\n".join(lines)
