"""Seeded held-out splits (SHD ships no validation set).

``by="speaker"``: speakers are shuffled with ``numpy.random.default_rng(seed)`` and moved to the
validation side one at a time until it holds at least ``fraction`` of the samples; at least one
speaker stays on each side.  No speaker appears in both parts, so the validation score measures
generalisation to new voices, as the SHD test set does.

``by="fraction"``: a class-stratified random split: in every class ``round(fraction · n_c)``
samples (at least one when the class has two or more) go to validation.
"""

from __future__ import annotations

import numpy as np

__all__ = ["holdout_split"]


def holdout_split(
    labels: np.ndarray,
    speakers: np.ndarray | None,
    *,
    fraction: float = 0.1,
    by: str = "speaker",
    seed: int = 0,
) -> tuple[np.ndarray, np.ndarray]:
    """Return sorted ``(train_indices, valid_indices)`` for a held-out split of ``N`` samples.

    Args:
        labels: ``[N]`` class ids.
        speakers: ``[N]`` speaker ids (needed for ``by="speaker"``).
        fraction: target share of samples in the validation part, in ``(0, 1)``.
        by: ``"speaker"`` or ``"fraction"``.
        seed: RNG seed; the same inputs and seed always give the same split.
    """
    if not 0.0 < fraction < 1.0:
        raise ValueError(f"valid_fraction must lie in (0, 1), got {fraction!r}")
    if by not in ("speaker", "fraction"):
        raise ValueError(f"valid_by must be 'speaker' or 'fraction', got {by!r}")
    labels = np.asarray(labels)
    n = labels.size
    rng = np.random.default_rng(seed)
    valid = np.zeros(n, dtype=bool)
    if by == "speaker":
        if speakers is None:
            raise ValueError("valid_by='speaker' needs speaker ids (extra/speaker), but the file has none")
        speakers = np.asarray(speakers)
        uniq = np.unique(speakers)
        if uniq.size < 2:
            raise ValueError(f"valid_by='speaker' needs at least 2 speakers, got {uniq.size}")
        order = rng.permutation(uniq)
        target = fraction * n
        for s in order[:-1]:
            valid |= speakers == s
            if valid.sum() >= target:
                break
    else:
        for c in np.unique(labels):
            idx = np.flatnonzero(labels == c)
            k = int(round(fraction * idx.size))
            if idx.size >= 2:
                k = min(max(k, 1), idx.size - 1)
            valid[rng.choice(idx, size=k, replace=False)] = True
    return np.flatnonzero(~valid), np.flatnonzero(valid)
