"""Event → frame binning for 1-D spike trains (SHD/SSC-style audio datasets).

A sample is a list of events ``(t_k, u_k)``: a time ``t_k`` in seconds and a channel id
``u_k ∈ {0, …, n_channels-1}``.  Binning produces a dense count matrix ``F`` of shape
``[T, C]`` (time-major, one row per time step):

.. math::

    t^{µs}_k = \\lfloor 10^6 \\, t_k \\rfloor, \\qquad
    b_k = \\lfloor t^{µs}_k / (1000\\, \\Delta t_{ms}) \\rfloor, \\qquad
    F[b, c] = \\#\\{k : b_k = b,\\ \\lfloor u_k / \\text{pool} \\rfloor = c\\}

Times are first quantised to whole microseconds (the resolution tonic uses), so bin edges
are exact integer multiples of ``dt`` in µs and the result does not depend on float rounding of
``t / dt``.  Bins start at ``t = 0`` (not at the first event): a sample whose first spike is at
120 ms has empty leading frames, which keeps the onset information.  ``T = b_max + 1`` covers
the last event; with ``max_duration_ms`` events at or after ``max_duration_ms`` are dropped and
``T ≤ ceil(max_duration_ms / dt_ms)``; with ``pad=True`` every sample has exactly that many steps.

Channel pooling sums groups of ``pool`` adjacent channels (700 → 140 with ``pool=5``, as in the
DCLS-delay SHD recipe); ``C = ceil(n_channels / pool)``, a short last group is summed as it is.
``binary=True`` clips counts to {0, 1} after pooling.

The work is two compiled (numba) passes over the events — one for each sample's ``T``, one that
increments ``F`` in place — with no Python loop over events and no temporary per-event arrays.

``grid="event_anchored"`` is the rule of SpikingJelly's SHD/SSC frame integration as the DCLS reference
(Hammouamri et al. 2024) used it (SpikingJelly issues #361, #507): times are converted to ms in the file's own
float type (``t_ms = 1000 · t``, float16 for the published files), the first frame starts at the first event and
takes every event with ``t_ms - t_start ≤ dt``; the next frame starts at the next event not taken, and so on.
Silences longer than a bin produce no empty frames (a sample's ``T`` is the number of such groups), so sequences
are shorter than on the fixed grid and absolute onset times are lost. Events must be sorted by time (as in the
files).
"""

from __future__ import annotations

import math
from typing import Any

import numba
import numpy as np

__all__ = ["bin_events", "bin_events_batch", "ToFrames", "times_to_us", "GRIDS", "event_anchored_groups"]

GRIDS = ("fixed", "event_anchored")


def times_to_us(times_s: np.ndarray) -> np.ndarray:
    """Seconds → integer microseconds, truncated toward zero like ``tonic`` (int64)."""
    return (np.asarray(times_s, dtype=np.float64) * 1e6).astype(np.int64)


def _check_params(dt_ms: float, n_channels: int, pool: int, max_duration_ms: float | None) -> None:
    if not (isinstance(dt_ms, (int, float)) and math.isfinite(dt_ms) and dt_ms > 0):
        raise ValueError(f"dt_ms must be a positive finite number of milliseconds, got {dt_ms!r}")
    if not (isinstance(n_channels, (int, np.integer)) and n_channels > 0):
        raise ValueError(f"n_channels must be a positive int, got {n_channels!r}")
    if not (isinstance(pool, (int, np.integer)) and pool >= 1):
        raise ValueError(f"pool must be an int >= 1, got {pool!r}")
    if max_duration_ms is not None and not (
        isinstance(max_duration_ms, (int, float)) and math.isfinite(max_duration_ms) and max_duration_ms > 0
    ):
        raise ValueError(f"max_duration_ms must be None or a positive number of ms, got {max_duration_ms!r}")


def _n_steps_cap(dt_ms: float, max_duration_ms: float | None) -> int | None:
    if max_duration_ms is None:
        return None
    # number of bins whose start lies before max_duration_ms
    return max(1, int(math.ceil(round(max_duration_ms * 1000.0, 6) / round(dt_ms * 1000.0, 6))))


def bin_events_batch(
    times_s: np.ndarray,
    units: np.ndarray,
    sample_offsets: np.ndarray,
    *,
    dt_ms: float,
    n_channels: int,
    pool: int = 1,
    max_duration_ms: float | None = None,
    pad: bool = False,
    binary: bool = False,
    dtype: np.dtype | type = np.float32,
    grid: str = "fixed",
) -> tuple[np.ndarray, np.ndarray]:
    """Bin many samples at once (one ``bincount`` for the whole batch).

    Args:
        times_s: concatenated event times of all samples, seconds, ``[E]``; must be ``>= 0``.
        units: concatenated channel ids, ``[E]``, each in ``[0, n_channels)``.
        sample_offsets: ``[N+1]`` int; events of sample ``i`` are ``[offsets[i], offsets[i+1])``.
        dt_ms, n_channels, pool, max_duration_ms, pad, binary, grid: see the module docstring.
        dtype: dtype of the returned frames.

    Returns:
        ``(frames, lengths)``: frames ``[ΣT_i, C]`` (samples stacked along time) and ``lengths``
        ``[N]`` int64 with each sample's ``T_i``.  An empty sample gets ``T_i = 1`` zero row
        (or ``ceil(max_duration/dt)`` rows with ``pad=True``).

    Raises:
        ValueError: negative or non-finite times, channel ids out of range, bad parameters.
    """
    _check_params(dt_ms, n_channels, pool, max_duration_ms)
    times_s = np.asarray(times_s)
    units = np.asarray(units)
    offsets = np.asarray(sample_offsets, dtype=np.int64)
    if times_s.ndim != 1 or units.shape != times_s.shape:
        raise ValueError(
            f"times_s and units must be 1-D of equal length, got shapes {times_s.shape} and {units.shape}"
        )
    if offsets.ndim != 1 or offsets.size < 1 or offsets[0] != 0 or offsets[-1] != times_s.size or np.any(np.diff(offsets) < 0):
        raise ValueError(
            f"sample_offsets must be non-decreasing from 0 to {times_s.size}, got {offsets[:3]}...{offsets[-3:]}"
        )
    n = offsets.size - 1
    c_out = -(-int(n_channels) // int(pool))
    cap = _n_steps_cap(dt_ms, max_duration_ms)
    if pad and cap is None:
        raise ValueError("pad=True needs max_duration_ms (the padded length), got max_duration_ms=None")
    if times_s.size:
        if not np.all(np.isfinite(times_s)):
            raise ValueError("times_s contains non-finite values (NaN or inf)")
        t_min = times_s.min()
        if t_min < 0:
            raise ValueError(f"times_s must be >= 0 seconds, got a minimum of {float(t_min)!r}")
        u_min, u_max = int(units.min()), int(units.max())
        if u_min < 0 or u_max >= n_channels:
            bad = u_max if u_max >= n_channels else u_min
            raise ValueError(f"channel ids must lie in [0, {n_channels}), got {bad}")
    if grid not in GRIDS:
        raise ValueError(f"grid must be one of {GRIDS}, got {grid!r}")
    if grid == "event_anchored":
        return _event_anchored_batch(times_s, units, offsets, float(dt_ms), c_out, cap, bool(pad), int(pool),
                                     bool(binary), np.dtype(dtype))
    if times_s.dtype not in (np.float32, np.float64):
        times_s = times_s.astype(np.float64)  # float16 (as in the SHD files) and ints; exact for both
    dt_us = float(dt_ms) * 1000.0
    cap_i = -1 if cap is None else int(cap)
    lengths = np.empty(n, dtype=np.int64)
    _lengths_kernel(times_s, offsets, dt_us, cap_i, bool(pad), lengths)
    row0 = np.zeros(n + 1, dtype=np.int64)
    np.cumsum(lengths, out=row0[1:])
    out_dtype = np.dtype(dtype)
    frames = np.zeros((int(row0[-1]), c_out), dtype=out_dtype)
    _fill_kernel(times_s, units, offsets, row0, dt_us, cap_i, int(pool), bool(binary), frames)
    return frames, lengths


@numba.njit(cache=True, nogil=True)
def _bin_of(t, dt_us):
    # µs truncated toward zero (as ``times_to_us``), then floor division by the bin width
    return np.int64(np.floor(np.float64(np.int64(np.float64(t) * 1e6)) / dt_us))


@numba.njit(cache=True, nogil=True)
def _lengths_kernel(times, offsets, dt_us, cap, pad, lengths):
    for i in range(offsets.size - 1):
        if pad:
            lengths[i] = cap
            continue
        last = -1
        for k in range(offsets[i], offsets[i + 1]):
            b = _bin_of(times[k], dt_us)
            if (cap < 0 or b < cap) and b > last:
                last = b
        lengths[i] = max(last + 1, 1)


@numba.njit(cache=True, nogil=True)
def _fill_kernel(times, units, offsets, row0, dt_us, cap, pool, binary, frames):
    for i in range(offsets.size - 1):
        r = row0[i]
        for k in range(offsets[i], offsets[i + 1]):
            b = _bin_of(times[k], dt_us)
            if cap >= 0 and b >= cap:
                continue
            c = np.int64(units[k]) // pool
            if binary:
                frames[r + b, c] = 1
            else:
                frames[r + b, c] += 1


def event_anchored_groups(times_s: np.ndarray, dt_ms: float) -> np.ndarray:
    """Frame index of every event under ``grid="event_anchored"`` (see the module docstring), ``[E]`` int64.

    Arithmetic in the times' own float type, as the reference: ``t_ms = 1000 · t`` and ``t_ms[k] - t_ms[start]``
    are rounded to that type (float16 for the published SHD/SSC files) before the comparison with ``dt_ms``.
    """
    t = np.asarray(times_s)
    if not np.issubdtype(t.dtype, np.floating):
        t = t.astype(np.float64)
    t_ms = (t.dtype.type(1000) * t).astype(t.dtype)
    groups = np.empty(t.size, dtype=np.int64)
    left, g = 0, 0
    while left < t.size:
        # differences to the frame's first event, rounded like the reference's ``t[right] - t_l``; non-decreasing
        # for sorted times, so the frame ends at the first difference above dt
        diff = (t_ms[left:] - t_ms[left]).astype(np.float64)
        right = left + int(np.searchsorted(diff, float(dt_ms), side="right"))
        groups[left:right] = g
        left, g = right, g + 1
    return groups


def _event_anchored_batch(times_s, units, offsets, dt_ms, c_out, cap, pad, pool, binary, dtype):
    n = offsets.size - 1
    per_sample, lengths = [], np.empty(n, dtype=np.int64)
    for i in range(n):
        t = times_s[offsets[i]:offsets[i + 1]]
        if t.size > 1 and np.any(np.diff(t.astype(np.float64)) < 0):
            raise ValueError(f"grid='event_anchored' needs events sorted by time; sample {i} is not")
        g = event_anchored_groups(t, dt_ms) if t.size else np.zeros(0, dtype=np.int64)
        T = int(g[-1]) + 1 if g.size else 1
        if cap is not None:
            T = cap if pad else min(T, cap)
        per_sample.append(g)
        lengths[i] = T
    row0 = np.zeros(n + 1, dtype=np.int64)
    np.cumsum(lengths, out=row0[1:])
    frames = np.zeros((int(row0[-1]), c_out), dtype=dtype)
    for i, g in enumerate(per_sample):
        keep = g < lengths[i]
        rows = row0[i] + g[keep]
        cols = np.asarray(units[offsets[i]:offsets[i + 1]])[keep].astype(np.int64) // pool
        if binary:
            frames[rows, cols] = 1
        else:
            np.add.at(frames, (rows, cols), 1)
    return frames, lengths


def bin_events(
    times_s: np.ndarray,
    units: np.ndarray,
    *,
    dt_ms: float,
    n_channels: int,
    pool: int = 1,
    max_duration_ms: float | None = None,
    pad: bool = False,
    binary: bool = False,
    dtype: np.dtype | type = np.float32,
    grid: str = "fixed",
) -> np.ndarray:
    """Bin one sample's events into frames ``[T, C]`` (see the module docstring for the rule).

    Args:
        times_s: event times in seconds, ``[E]``, ``>= 0`` (order does not matter).
        units: channel ids ``[E]`` in ``[0, n_channels)``.
        dt_ms: bin width in milliseconds.
        n_channels: number of input channels before pooling (700 for SHD/SSC).
        pool: sum groups of this many adjacent channels; ``C = ceil(n_channels / pool)``.
        max_duration_ms: drop events at or after this time; caps ``T``.
        pad: zero-pad to exactly ``ceil(max_duration_ms / dt_ms)`` steps (needs ``max_duration_ms``).
        binary: clip counts to 0/1.
        dtype: output dtype.
        grid: ``"fixed"`` (bins from t = 0) or ``"event_anchored"`` (the DCLS reference's rule).

    Returns:
        ``np.ndarray`` ``[T, C]``.
    """
    times_s = np.asarray(times_s)
    frames, _ = bin_events_batch(
        times_s, units, np.array([0, times_s.size]), dt_ms=dt_ms, n_channels=n_channels, pool=pool,
        max_duration_ms=max_duration_ms, pad=pad, binary=binary, dtype=dtype, grid=grid,
    )
    return frames


class ToFrames:
    """Transform: events of one sample → dense frames ``[T, C]`` (float32 counts).

    Choose ``dt_ms`` for the time resolution the network steps at (10 ms is the usual SHD choice;
    1-4 ms keeps more timing for delay-learning models at the cost of longer sequences), ``pool`` to
    reduce 700 cochlea channels to fewer inputs (5 → 140, as in the DCLS recipe), ``max_duration_ms``
    to crop long samples (and ``pad=True`` for fixed-length batches without a collate), ``binary``
    for spike/no-spike inputs when the model expects spikes rather than counts, and ``grid="event_anchored"``
    only to reproduce results obtained with SpikingJelly's SHD frames (it drops silences; see the module docstring).

    Args:
        dt_ms: bin width, ms.
        n_channels: channels in the source (before pooling).
        pool: channel group size for summing.
        max_duration_ms: optional crop, ms.
        binary: clip counts to 0/1.
        pad: pad every sample to ``ceil(max_duration_ms / dt_ms)`` steps.
        grid: ``"fixed"`` (bins start at t = 0) or ``"event_anchored"``.

    Shape: ``__call__(times_s [E], units [E]) -> np.ndarray [T, ceil(n_channels/pool)]`` float32.
    """

    def __init__(
        self,
        dt_ms: float = 10.0,
        n_channels: int = 700,
        pool: int = 1,
        max_duration_ms: float | None = None,
        binary: bool = False,
        pad: bool = False,
        grid: str = "fixed",
    ) -> None:
        _check_params(dt_ms, n_channels, pool, max_duration_ms)
        if grid not in GRIDS:
            raise ValueError(f"grid must be one of {GRIDS}, got {grid!r}")
        if pad and max_duration_ms is None:
            raise ValueError("pad=True needs max_duration_ms (the padded length), got max_duration_ms=None")
        self.dt_ms = float(dt_ms)
        self.n_channels = int(n_channels)
        self.pool = int(pool)
        self.max_duration_ms = None if max_duration_ms is None else float(max_duration_ms)
        self.binary = bool(binary)
        self.pad = bool(pad)
        self.grid = grid

    @property
    def n_out(self) -> int:
        """Channels after pooling, ``ceil(n_channels / pool)``."""
        return -(-self.n_channels // self.pool)

    @property
    def max_steps(self) -> int | None:
        """Upper bound on ``T`` set by ``max_duration_ms`` (None when uncropped)."""
        return _n_steps_cap(self.dt_ms, self.max_duration_ms)

    def cache_key(self) -> dict[str, Any]:
        """Every parameter that changes the output, for cache keys."""
        return {
            "kind": "ToFrames",
            "dt_ms": self.dt_ms,
            "n_channels": self.n_channels,
            "pool": self.pool,
            "max_duration_ms": self.max_duration_ms,
            "binary": self.binary,
            "pad": self.pad,
            **({"grid": self.grid} if self.grid != "fixed" else {}),  # fixed-grid cache keys stay as they were
        }

    def kwargs(self) -> dict[str, Any]:
        return {k: v for k, v in self.cache_key().items() if k != "kind"}

    def batch(self, times_s: np.ndarray, units: np.ndarray, offsets: np.ndarray, dtype=np.float32):
        """Bin many concatenated samples; returns ``(frames [ΣT, C], lengths [N])``."""
        return bin_events_batch(times_s, units, offsets, dtype=dtype, **self.kwargs())

    def __call__(self, times_s: np.ndarray, units: np.ndarray) -> np.ndarray:
        return bin_events(times_s, units, **self.kwargs())

    def __repr__(self) -> str:
        args = ", ".join(f"{k}={v!r}" for k, v in self.kwargs().items())
        return f"ToFrames({args})"
