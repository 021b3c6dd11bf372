"""Text summary of a spike dataset and a full check of its content (used by ``snn data info PATH``)."""

from __future__ import annotations

import os
from pathlib import Path
from typing import Any

import h5py
import numpy as np

from snn.datasets.checks import duration_problems, event_problems, label_problems
from snn.datasets.integrity import verify_h5
from snn.datasets.spike_h5 import SpikeTrainH5, _decode, layout_problems

__all__ = ["summarize", "spike_statistics", "validate_file"]


def validate_file(path: str | os.PathLike, *, n_channels: int = 700, n_classes: int | None = None,
                  max_duration_s: float | None = None, record_dir: str | os.PathLike | None = None,
                  limit: int = 50, chunk: int = 512) -> tuple[list[str], list[str]]:
    """``(errors, warnings)`` of an SHD-layout file: every check the loaders make, over every sample.

    The checks are those of :class:`SpikeTrainH5` (integrity before libhdf5 reads the file, layout, labels,
    spikes, durations), but all problems are collected, each naming its sample; at most ``limit`` errors.
    """
    path = Path(path)
    errors = verify_h5(path, record_dir)
    if errors:
        return errors, []  # libhdf5 must not read this file
    try:
        f = h5py.File(path, "r")
    except OSError as err:
        return [f"cannot be read as HDF5 (truncated or corrupt download?): {err}"], []
    with f:
        errors = layout_problems(f)
        if errors:
            return errors, []
        names = _decode(f["extra/keys"][()]) if "extra/keys" in f else None
        _, errors, notes = label_problems(f["labels"][()], n_classes=n_classes, names=names)
        ds_t, ds_u = f["spikes/times"], f["spikes/units"]
        n = ds_t.shape[0]
        durations = np.zeros(n)
        for a in range(0, n, chunk):
            ts, us = ds_t[a:a + chunk], ds_u[a:a + chunk]
            for k, (t, u) in enumerate(zip(ts, us)):
                errors += event_problems(t, u, a + k, n_channels=n_channels)
                finite = t[np.isfinite(t)] if t.size else t
                durations[a + k] = float(finite.max()) if finite.size else 0.0
            if len(errors) >= limit:
                break
    reference = float(np.median(durations)) if n else None
    errors += duration_problems(durations, 0, max_duration_s=max_duration_s, reference_s=reference)
    if len(errors) > limit:
        errors = errors[:limit] + [f"... and more (only the first {limit} problems are listed)"]
    return errors, notes


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
