"""Silent input channels prepended to every sample: the slots into which a rule writes the label.

Spiking forward-forward (:mod:`snn.rules.forward_forward`) embeds the label in the first ``K`` input channels.
:class:`LabelSlots` makes room for it without losing data: item ``(x [T, C], y)`` becomes
``(concat(0 [T, K], x) [T, K + C], y)``. Silent channels carry no events, so the energy counter counts no extra
synaptic operation for them; every model of a comparison then sees the same input width.
"""
from __future__ import annotations

from typing import Any

import numpy as np
import torch
from torch.utils.data import Dataset

__all__ = ["LabelSlots"]


class LabelSlots(Dataset):
    """``dataset`` with ``k`` silent channels before its own (other attributes are the wrapped dataset's).

    Args:
        dataset: items ``(x [T, C], label)`` with ``x`` a tensor or array.
        k: silent channels to prepend (``≥ 1``).
    """

    def __init__(self, dataset: Dataset, k: int) -> None:
        if not isinstance(k, int) or isinstance(k, bool) or k < 1:
            raise ValueError(f"LabelSlots: k must be an int >= 1, got {k!r}")
        self.dataset, self.k = dataset, k

    @property
    def n_channels(self) -> int:
        return self.k + int(self.dataset.n_channels)

    def __len__(self) -> int:
        return len(self.dataset)

    def __getitem__(self, i: int) -> tuple[torch.Tensor, Any]:
        x, y = self.dataset[i]
        x = torch.as_tensor(np.asarray(x) if not torch.is_tensor(x) else x, dtype=torch.float32)
        return torch.cat([x.new_zeros(x.shape[0], self.k, *x.shape[2:]), x], 1), y

    def __getattr__(self, name: str) -> Any:
        if name in ("dataset", "k"):  # not set yet (unpickling): no recursion
            raise AttributeError(name)
        return getattr(self.dataset, name)

    def __repr__(self) -> str:
        return f"LabelSlots({self.dataset!r}, k={self.k})"
