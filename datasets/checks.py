"""Plausibility checks of spike samples and labels, shared by the loaders and ``snn data info``.

Each function returns messages that name the sample (``sample 17 has ...``) instead of raising, so a loader
raises the first one and ``snn data info`` lists them all. What is checked:

* labels: integers (a float label ``3.7`` is an error, not ``3``), ``>= 0``, below the stated number of classes
  (the dataset's, or ``extra/keys``); without a stated number, labels that imply far more classes than occur
  (one label 60000 among 20 classes) give a warning;
* spikes: as many times as channel ids, times finite and ``>= 0``, channel ids in ``[0, n_channels)``, no empty
  sample unless allowed;
* durations: against the dataset's known longest sample, and against the file's typical sample (a sample 100×
  longer than the median, over 10 s); a sample whose times are ~1000× too large is reported with "times look like
  milliseconds".
"""

from __future__ import annotations

import numpy as np

__all__ = ["label_problems", "event_problems", "duration_problems"]

#: a sample is an outlier when it lasts this many times the file's median sample, and at least OUTLIER_MIN_S
OUTLIER_RATIO = 100.0
OUTLIER_MIN_S = 10.0


def label_problems(raw: np.ndarray, *, n_classes: int | None = None,
                   names: list[str] | None = None) -> tuple[np.ndarray, list[str], list[str]]:
    """``(labels int64 [N], errors, warnings)`` of a file's label array.

    Args:
        raw: the labels as stored.
        n_classes: the number of classes the dataset states (``None``: unknown).
        names: class names from the file (``extra/keys``), which state the number of classes too.
    """
    raw = np.asarray(raw).reshape(-1)
    errors: list[str] = []
    if raw.size == 0:
        return np.zeros(0, np.int64), errors, []
    if raw.dtype.kind == "f":
        bad = np.flatnonzero(~np.isfinite(raw) | (raw != np.floor(raw)))
        if bad.size:
            j = int(bad[0])
            errors.append(f"labels must be integers: sample {j} has label {raw[j].item()!r}"
                          + (f" ({bad.size} such samples)" if bad.size > 1 else ""))
            return np.zeros(raw.size, np.int64), errors, []
    elif raw.dtype.kind not in "iu":
        return np.zeros(raw.size, np.int64), [f"labels must be integers, got dtype {raw.dtype}"], []
    labels = raw.astype(np.int64)
    if labels.min() < 0:
        j = int(np.argmin(labels))
        errors.append(f"labels must be >= 0: sample {j} has label {labels[j]}")
    stated = [(n, why) for n, why in ((n_classes, "the dataset has"), (len(names) if names else None, "extra/keys names"))
              if n is not None]
    for n, why in stated:
        if labels.max() >= n:
            j = int(np.argmax(labels))
            errors.append(f"sample {j} has label {labels[j]}, but {why} {n} classes (labels 0..{n - 1})")
            break
    warnings: list[str] = []
    if not stated and labels.min() >= 0:
        implied, present = int(labels.max()) + 1, np.unique(labels).size
        if implied > 2 * present + 10:
            j = int(np.argmax(labels))
            warnings.append(f"labels imply {implied} classes but only {present} occur (sample {j} has label "
                            f"{labels[j]}); state the classes with extra/keys or n_classes=")
    return labels, errors, warnings


def event_problems(times: np.ndarray, units: np.ndarray, j: int, *, n_channels: int | None,
                   allow_empty: bool = False) -> list[str]:
    """Problems of sample ``j``'s spikes (``times`` in seconds, ``units`` channel ids)."""
    t, u = np.asarray(times), np.asarray(units)
    if t.shape != u.shape:
        return [f"sample {j} has {t.size} spike times but {u.size} unit ids"]
    if t.size == 0:
        return [] if allow_empty else [f"sample {j} has no spikes (pass allow_empty=True to keep empty samples)"]
    out = []
    finite = np.isfinite(t)
    if not finite.all():
        out.append(f"sample {j} has non-finite spike times ({int((~finite).sum())} of {t.size}, e.g. "
                   f"{t[~finite][0].item()!r}); times must be finite seconds >= 0")
    elif t.min() < 0:
        out.append(f"sample {j} has negative spike times (min {float(t.min())!r} s); times must be >= 0")
    u = u.astype(np.int64)
    if u.min() < 0 or (n_channels is not None and u.max() >= n_channels):
        bad = int(u.min()) if u.min() < 0 else int(u.max())
        hint = (" (a -1 written as uint16 reads as 65535)" if bad == 65535 else "")
        out.append(f"sample {j} has channel id {bad} outside [0, {n_channels}){hint}; set the channel count "
                   f"(ToFrames(n_channels=...)) to the file's if it has more channels")
    return out


def duration_problems(durations: np.ndarray, first: int, *, max_duration_s: float | None = None,
                      reference_s: float | None = None, name: str = "this dataset") -> list[str]:
    """Samples ``first + k`` whose duration ``durations[k]`` (s, last spike time) is implausible.

    Args:
        max_duration_s: the longest sample the dataset is known to hold (``None``: unknown).
        reference_s: the file's typical duration (median); a sample ``OUTLIER_RATIO`` times longer (and over
            ``OUTLIER_MIN_S``) is reported (``None``: no relative check).
    """
    out = []
    for k, d in enumerate(np.asarray(durations, dtype=np.float64)):
        if not np.isfinite(d):
            continue  # reported by event_problems
        limit = None
        if max_duration_s is not None and d > max_duration_s:
            limit, what = max_duration_s, f"longer than any {name} sample ({max_duration_s:g} s)"
        elif reference_s is not None and reference_s > 0 and d > OUTLIER_RATIO * reference_s and d > OUTLIER_MIN_S:
            limit, what = reference_s, f"{d / reference_s:.0f}× the file's typical {reference_s:.3g} s"
        if limit is None:
            continue
        plausible = max_duration_s if max_duration_s is not None else 10 * reference_s
        ms = d / 1000.0 <= plausible
        out.append(f"sample {first + k} lasts {d:.4g} s, {what}"
                   + ("; its times look like milliseconds (the file layout expects seconds)" if ms else ""))
    return out
