"""scikit-learn's bundled 8×8 handwritten digits (UCI optdigits test set, 1797 images) as a static-image dataset.

Pixels (0–16) are scaled to ``[0, 1]`` and presented by direct encoding: the same frame at every time step, items
``x [T, 1, 8, 8]`` (``T = time_steps``; with the default ``T = 1`` a spike-driven transformer repeats the single frame
over its own ``time_steps``). Splits are fixed: a class-stratified 25 % test part (seed 0), and the remaining 75 %
divided into ``"train"`` and ``"valid"`` by :func:`snn.datasets.splits.holdout_split` (``"full_train"`` is all of it).
Needs scikit-learn (``pip install scikit-learn``); nothing is downloaded.
"""

from __future__ import annotations

import numpy as np
import torch
from torch.utils.data import Dataset

from snn.datasets.splits import holdout_split

__all__ = ["Digits8x8"]

_SPLITS = ("train", "valid", "test", "full_train")


def _test_indices(labels: np.ndarray, fraction: float = 0.25, seed: int = 0) -> np.ndarray:
    """Class-stratified fixed test indices: in each class, a seeded permutation's first ``round(fraction·n)``."""
    rng = np.random.default_rng(seed)
    picked = []
    for c in np.unique(labels):
        idx = np.flatnonzero(labels == c)
        picked.append(rng.permutation(idx)[: int(round(fraction * idx.size))])
    return np.sort(np.concatenate(picked))


class Digits8x8(Dataset):
    """The 8×8 digits (see the module docstring).

    Args:
        split: ``"train"``, ``"valid"``, ``"test"`` or ``"full_train"`` (train + valid).
        time_steps: frames per item (the image repeated).
        valid_fraction: share of the non-test part held out as ``"valid"``.
        seed: seed of the train/valid split (the test split is always the same).

    Items: ``(x float32 [time_steps, 1, 8, 8], label int)``.
    """

    n_channels = 1
    image_size = (8, 8)

    def __init__(self, split: str = "train", time_steps: int = 1, valid_fraction: float = 0.1, seed: int = 0):
        if split not in _SPLITS:
            raise ValueError(f"split: expected one of {list(_SPLITS)}, got {split!r}")
        if not isinstance(time_steps, int) or time_steps < 1:
            raise ValueError(f"time_steps: expected an int >= 1, got {time_steps!r}")
        try:
            from sklearn.datasets import load_digits
        except ImportError as err:
            raise ImportError("Digits8x8 needs scikit-learn: pip install scikit-learn") from err
        data = load_digits()
        images, labels = data.images.astype(np.float32) / 16.0, data.target.astype(np.int64)
        test = _test_indices(labels)
        rest = np.setdiff1d(np.arange(labels.size), test)
        if split == "test":
            keep = test
        elif split == "full_train":
            keep = rest
        else:
            tr, va = holdout_split(labels[rest], None, fraction=valid_fraction, by="fraction", seed=seed)
            keep = rest[tr if split == "train" else va]
        self.split, self.time_steps = split, time_steps
        self._images = torch.from_numpy(images[keep]).unsqueeze(1)     # [N, 1, 8, 8]
        self.labels = labels[keep]
        self.classes = [str(c) for c in range(10)]

    def __len__(self) -> int:
        return int(self.labels.size)

    def __getitem__(self, i: int):
        return self._images[i].unsqueeze(0).expand(self.time_steps, 1, 8, 8), int(self.labels[i])

    def __repr__(self) -> str:
        return f"Digits8x8(split={self.split!r}, n={len(self)}, time_steps={self.time_steps})"
