"""Batching of variable-length frame sequences."""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any

import numpy as np
import torch

__all__ = ["pad_collate"]


def pad_collate(batch: Sequence[tuple[Any, Any]]) -> tuple[torch.Tensor, torch.Tensor, torch.Tensor]:
    """Stack ``(x_i [T_i, *F], label_i)`` items into a zero-padded, time-major batch.

    Returns:
        ``x``: float32 ``[T_max, B, *F]`` (rows ``t >= T_i`` of sample ``i`` are zero),
        ``labels``: int64 ``[B]``,
        ``lengths``: int64 ``[B]`` with ``T_i``.

    Works in DataLoader workers (no global state); pass it as ``collate_fn=pad_collate``.
    """
    if len(batch) == 0:
        raise ValueError("pad_collate got an empty batch")
    xs = [torch.as_tensor(np.asarray(x) if not torch.is_tensor(x) else x) for x, _ in batch]
    feat = xs[0].shape[1:]
    for i, x in enumerate(xs):
        if x.dim() < 1 or x.shape[1:] != feat:
            raise ValueError(
                f"pad_collate: item {i} has shape {tuple(x.shape)}, expected [T, {', '.join(map(str, feat))}] like item 0"
            )
    lengths = torch.tensor([x.shape[0] for x in xs], dtype=torch.long)
    out = torch.zeros((int(lengths.max()), len(xs), *feat), dtype=torch.float32)
    for i, x in enumerate(xs):
        out[: x.shape[0], i] = x
    labels = torch.as_tensor([int(y) for _, y in batch], dtype=torch.long)
    return out, labels, lengths
