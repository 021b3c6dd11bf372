r"""scikit-learn's bundled 8×8 handwritten digits (1,797 images, 10 classes) as deterministic spike trains.

Each pixel intensity ``p ∈ [0, 16]`` becomes a regular spike train of rate ``q = p / 16`` over ``T`` steps:

.. math::

    s[t] = \lfloor (t + 1)\, q \rfloor - \lfloor t\, q \rfloor, \qquad t = 0 … T-1

so a pixel fires ``⌊T q⌋`` spikes, evenly spaced, with no randomness (every run sees the same trains). The split
is fixed: ``sklearn.model_selection.train_test_split(test_size=0.2, stratify=labels, random_state=0)``
(1,437 train / 360 test). ``label_channels = K`` prepends ``K`` silent channels, the slots into which rules that
embed the label in the input (spiking forward-forward) write it; every model of a comparison then sees the same
input width. Needs scikit-learn (the ``dev`` extra). :class:`snn.datasets.digits8x8.Digits8x8` is the same images
as static frames ``[T, 1, 8, 8]`` with its own train/valid/test split (for the spike-driven transformers); this
module is the flat spike-train form the local-rule comparison uses.
"""
from __future__ import annotations

import numpy as np
import torch
from torch.utils.data import Dataset

__all__ = ["Digits8x8Spikes", "regular_spike_trains"]


def regular_spike_trains(rates: np.ndarray, steps: int) -> np.ndarray:
    """``[T, ...]`` spike trains, ``⌊T q⌋`` evenly spaced spikes for rates ``q ∈ [0, 1]`` (module docstring)."""
    if steps < 1:
        raise ValueError(f"steps must be >= 1, got {steps!r}")
    t = np.arange(steps + 1, dtype=np.float64).reshape(-1, *([1] * rates.ndim))
    counts = np.floor(t * rates[None] + 1e-9)
    return np.diff(counts, axis=0).astype(np.float32)


class Digits8x8Spikes(Dataset):
    """The 8×8 digits split ``"train"`` or ``"test"``; items ``(x [T, label_channels + 64], label)``.

    Args:
        split: ``"train"`` (1,437 images) or ``"test"`` (360).
        steps: time steps ``T`` per image.
        label_channels: silent channels prepended for label embedding (0: none).
    """

    n_pixels = 64

    def __init__(self, split: str = "train", steps: int = 16, label_channels: int = 0) -> None:
        if split not in ("train", "test"):
            raise ValueError(f"split must be 'train' or 'test', got {split!r}")
        if not isinstance(label_channels, int) or label_channels < 0:
            raise ValueError(f"label_channels must be an int >= 0, got {label_channels!r}")
        try:
            from sklearn.datasets import load_digits
            from sklearn.model_selection import train_test_split
        except ImportError as err:  # pragma: no cover - scikit-learn is in the dev extra
            raise ImportError("Digits8x8 needs scikit-learn: pip install scikit-learn") from err
        digits = load_digits()
        idx_train, idx_test = train_test_split(np.arange(len(digits.target)), test_size=0.2,
                                               stratify=digits.target, random_state=0)
        idx = idx_train if split == "train" else idx_test
        rates = np.clip(digits.data[idx] / 16.0, 0.0, 1.0)  # [N, 64]
        trains = regular_spike_trains(rates, steps)  # [T, N, 64]
        if label_channels:
            trains = np.concatenate([np.zeros((steps, len(idx), label_channels), np.float32), trains], axis=2)
        self.x = torch.from_numpy(np.ascontiguousarray(trains.transpose(1, 0, 2)))  # [N, T, C]
        self.labels = digits.target[idx].astype(np.int64)
        self.classes = [str(c) for c in range(10)]
        self.n_channels = label_channels + self.n_pixels
        self.steps, self.split, self.label_channels = steps, split, label_channels

    def select(self, indices: np.ndarray) -> "Digits8x8Spikes":
        """Keep only the samples at ``indices`` (in this order), in place; returns ``self``."""
        idx = np.asarray(indices, dtype=np.int64)
        self.x, self.labels = self.x[torch.from_numpy(idx)], self.labels[idx]
        return self

    def __len__(self) -> int:
        return len(self.labels)

    def __getitem__(self, i: int) -> tuple[torch.Tensor, int]:
        return self.x[i], int(self.labels[i])

    def __repr__(self) -> str:
        return (f"Digits8x8Spikes(split={self.split!r}, samples={len(self)}, steps={self.steps}, "
                f"channels={self.n_channels})")
