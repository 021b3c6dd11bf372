"""Raster plots of spike samples (matplotlib), used by the docs and examples."""

from __future__ import annotations

from typing import Any

import numpy as np

__all__ = ["raster"]


def raster(
    events_or_frames: Any,
    ax: Any = None,
    *,
    dt_ms: float | None = None,
    s: float = 1.0,
    color: str = "k",
    title: str | None = None,
) -> Any:
    """Draw a spike raster and return the matplotlib ``Axes``.

    Args:
        events_or_frames: a structured event array with fields ``t`` (µs) and ``x`` (channel), a
            ``(times_s, units)`` pair, or frames ``[T, C]`` (numpy or torch; nonzero bins are drawn).
        ax: axes to draw on (a new figure when ``None``).
        dt_ms: bin width of ``frames`` for a time axis in ms (steps when ``None``).
        s: marker size; color: marker colour; title: axes title.
    """
    import matplotlib.pyplot as plt

    if ax is None:
        _, ax = plt.subplots(figsize=(6, 3))
    obj = events_or_frames
    if isinstance(obj, tuple) and len(obj) == 2:
        t, ch = np.asarray(obj[0], dtype=np.float64) * 1e3, np.asarray(obj[1])
        xlabel = "time (ms)"
    elif isinstance(obj, np.ndarray) and obj.dtype.names and {"t", "x"} <= set(obj.dtype.names):
        t, ch = obj["t"].astype(np.float64) / 1e3, obj["x"]
        xlabel = "time (ms)"
    else:
        frames = obj.detach().cpu().numpy() if hasattr(obj, "detach") else np.asarray(obj)
        if frames.ndim != 2:
            raise ValueError(f"frames must be [T, C], got shape {frames.shape}")
        steps, ch = np.nonzero(frames)
        t = steps * dt_ms if dt_ms is not None else steps.astype(np.float64)
        xlabel = "time (ms)" if dt_ms is not None else "time step"
    ax.scatter(t, ch, s=s, c=color, marker="|" if s <= 1 else ".", linewidths=0.5)
    ax.set_xlabel(xlabel)
    ax.set_ylabel("channel")
    if title:
        ax.set_title(title)
    return ax
