"""SHD-Adding (Spieler et al., ICLR 2024): two spoken digits in sequence, the target is the sum of their digits.

Built from any dataset in the Heidelberg layout whose items are ``(frames [T_i, C], label)`` with labels 0–9
(English) and 10–19 (German) — SHD, or the embedded spoken-digits set. Item ``k`` is a fixed pair ``(i, j)``
drawn once from ``seed`` (with replacement, as the reference's batches are):

    x = concat_time(x_i, x_j)   [T_i + T_j, C],      y = (label_i mod 10) + (label_j mod 10)   ∈ {0, …, 18}

The reference crops every sample to 1 s (100 bins of 10 ms) before concatenating; here each sample keeps its own
length (crop with the base dataset's binning, e.g. ``max_duration_ms``, to match). 19 classes.

With ``redraw=True`` every access draws a fresh pair from torch's global random stream (seeded by the training
run), as the reference draws new pairs for every batch: the training set is then not a fixed list of pairs.
"""
from __future__ import annotations

import numpy as np
import torch
from torch.utils.data import Dataset

__all__ = ["SHDAdding", "N_CLASSES"]

N_CLASSES = 19


class SHDAdding(Dataset):
    """Pairs of samples of ``base`` in sequence, labelled with the sum of their digits (see the module docstring).

    Args:
        base: a dataset of ``(frames [T, C] tensor, label int)`` items with labels in ``[0, 20)``.
        n_samples: number of pairs (default ``len(base)``).
        seed: seed of the pair draw.
        redraw: draw a new pair at every access (torch's global generator; ``pairs`` and ``labels`` then hold the
            first draw only, e.g. for the class count).
    """

    def __init__(self, base: Dataset, n_samples: int | None = None, seed: int = 0, redraw: bool = False) -> None:
        n_base = len(base)  # type: ignore[arg-type]
        if n_base == 0:
            raise ValueError("base: expected a non-empty dataset, got 0 samples")
        n_samples = n_base if n_samples is None else n_samples
        if not isinstance(n_samples, int) or n_samples < 1:
            raise ValueError(f"n_samples: expected a positive int, got {n_samples!r}")
        self.base = base
        self.redraw = bool(redraw)
        self.pairs = np.random.default_rng(seed).integers(0, n_base, size=(n_samples, 2))

    def __len__(self) -> int:
        return int(self.pairs.shape[0])

    def __getitem__(self, k: int) -> tuple[torch.Tensor, int]:
        if not -len(self) <= k < len(self):
            raise IndexError(f"index {k} out of range for a dataset of {len(self)} pairs")
        pair = torch.randint(0, len(self.base), (2,)).tolist() if self.redraw else self.pairs[k]  # type: ignore[arg-type]
        i, j = (int(v) for v in pair)
        (x_i, y_i), (x_j, y_j) = self.base[i], self.base[j]
        for name, y in (("first", y_i), ("second", y_j)):
            if not 0 <= int(y) < 20:
                raise ValueError(f"base: {name} label of pair {k} is {y!r}, expected a spoken-digit class in [0, 20)")
        return torch.cat([torch.as_tensor(x_i), torch.as_tensor(x_j)], dim=0), int(y_i) % 10 + int(y_j) % 10

    @property
    def classes(self) -> list[str]:
        return [str(v) for v in range(N_CLASSES)]

    @property
    def n_channels(self) -> int:
        """Input channels of each frame (the base dataset's)."""
        return int(getattr(self.base, "n_channels"))

    @property
    def labels(self) -> np.ndarray:
        """Labels of all pairs ``[N]`` (reads only the base dataset's ``labels``)."""
        base_labels = np.asarray(getattr(self.base, "labels"))
        return base_labels[self.pairs[:, 0]] % 10 + base_labels[self.pairs[:, 1]] % 10
