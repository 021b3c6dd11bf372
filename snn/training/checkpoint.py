"""Checkpoints: written atomically (temporary file + ``os.replace``), checked against the model and config on load.

A training checkpoint (``last.pt``) holds everything needed to continue bit-for-bit: model, optimisers,
schedulers, gradient scaler, the RNG states (python, numpy, torch CPU/CUDA, the data-order generator), the
number of finished epochs, the metrics history, the best score and the resolved config. ``best.pt`` holds the
model of the best validation epoch with its metrics and config.
"""
from __future__ import annotations

import os
import random
from pathlib import Path
from typing import Any

import numpy as np
import torch
from torch import nn

from snn.atomic import atomic_open
from snn.config import config_diff

__all__ = ["save_atomic", "load_checkpoint", "CheckpointMismatchError", "check_model_state", "check_config",
           "capture_rng", "restore_rng", "COMPARED_SECTIONS"]

#: config sections that must agree between a checkpoint and the run that loads it (``run`` may differ)
COMPARED_SECTIONS = ("data", "model", "training", "optim")


class CheckpointMismatchError(ValueError):
    """A checkpoint was made by a different model or config; the message lists the differences."""


def save_atomic(obj: Any, path: str | os.PathLike) -> None:
    """``torch.save`` into a temporary file beside ``path``, then rename it over ``path``."""
    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    with atomic_open(path, "wb", fsync=True) as f:
        torch.save(obj, f)


def load_checkpoint(path: str | os.PathLike, map_location: Any = "cpu") -> dict[str, Any]:
    """Read a checkpoint written by :func:`save_atomic` (a dict); errors name the file."""
    path = Path(path)
    if not path.is_file():
        raise FileNotFoundError(f"checkpoint not found: {path}")
    try:
        ckpt = torch.load(path, map_location=map_location, weights_only=False)
    except Exception as err:  # torch raises many kinds for truncated/corrupt files
        raise CheckpointMismatchError(f"{path}: cannot be read as a checkpoint: {err}") from err
    if not isinstance(ckpt, dict) or "model" not in ckpt:
        raise CheckpointMismatchError(f"{path}: not an snn checkpoint (no 'model' entry)")
    return ckpt


def check_model_state(model: nn.Module, state: dict[str, torch.Tensor], source: str = "checkpoint") -> None:
    """Raise :class:`CheckpointMismatchError` listing missing/unexpected keys and shape differences."""
    own = model.state_dict()
    lines = []
    for k in sorted(set(state) - set(own)):
        lines.append(f"  {k}: in the {source}, not in the model")
    for k in sorted(set(own) - set(state)):
        lines.append(f"  {k}: in the model, not in the {source}")
    for k in sorted(set(own) & set(state)):
        if tuple(own[k].shape) != tuple(state[k].shape):
            lines.append(f"  {k}: {source} shape {tuple(state[k].shape)}, model shape {tuple(own[k].shape)}")
    if lines:
        raise CheckpointMismatchError(
            f"the {source} was made by a different model ({type(model).__name__}):\n" + "\n".join(lines)
        )


def check_config(saved: dict[str, Any] | None, current: dict[str, Any], source: str = "checkpoint",
                 ignore: tuple[str, ...] = ()) -> None:
    """Raise :class:`CheckpointMismatchError` listing the config keys (in :data:`COMPARED_SECTIONS`) that differ."""
    if saved is None:
        return
    a = {s: saved.get(s, {}) for s in COMPARED_SECTIONS}
    b = {s: current.get(s, {}) for s in COMPARED_SECTIONS}
    lines = [d for d in config_diff(a, b) if d.split(":", 1)[0] not in ignore]
    if lines:
        raise CheckpointMismatchError(
            f"the {source} was made with a different config ({source} value != current value):\n  " + "\n  ".join(lines)
        )


def capture_rng(generator: torch.Generator | None = None) -> dict[str, Any]:
    """RNG states of python, numpy, torch (CPU and every CUDA device) and the data-order generator."""
    state = {
        "python": random.getstate(),
        "numpy": np.random.get_state(),
        "torch": torch.get_rng_state(),
        "cuda": torch.cuda.get_rng_state_all() if torch.cuda.is_available() else None,
        "generator": generator.get_state() if generator is not None else None,
    }
    return state


def restore_rng(state: dict[str, Any], generator: torch.Generator | None = None) -> None:
    """Inverse of :func:`capture_rng`."""
    random.setstate(state["python"])
    np.random.set_state(state["numpy"])
    torch.set_rng_state(state["torch"])
    if state.get("cuda") is not None and torch.cuda.is_available():
        torch.cuda.set_rng_state_all(state["cuda"])
    if generator is not None and state.get("generator") is not None:
        generator.set_state(state["generator"])
