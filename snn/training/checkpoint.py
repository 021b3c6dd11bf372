"""Checkpoints: written atomically (temporary file + ``os.replace``), checked against the model and config on load.

A training checkpoint (``last.pt``) holds everything needed to continue bit-for-bit: model, optimisers,
schedulers, gradient scaler, the RNG states (python, numpy, torch CPU/CUDA, the data-order generator), the
number of finished epochs, the metrics history, the best score and the resolved config. ``best.pt`` holds the
model of the best validation epoch with its metrics and config.

Loading never runs code from the file: checkpoints are read with ``torch.load(weights_only=True)``, which accepts
tensors and plain data only (dicts, lists, numbers, strings — the config is stored as plain dicts, the numpy RNG
state as lists). A file holding anything else (a pickled object, a whole ``nn.Module``, a payload) is refused with
:class:`UntrustedCheckpointError` before any of it runs. A user who trusts such a file opts in explicitly:
``load_checkpoint(path, trust=True)``, or ``with trust_checkpoints():`` around code that loads (what the CLI's
``--trust-checkpoint`` does). Checkpoints written before this rule (numpy arrays and scalars inside) still load: the
numpy pieces they hold are allowed by name, nothing else.

Resuming compares the checkpoint's config with the current one (:func:`check_config`). Settings that provably do
not change the training trajectory may differ (:data:`NEUTRAL_KEYS`, ``training.device`` when both resolve to the
same device). ``training.epochs`` may grow when the caller asks for it (``--epochs N`` with ``--resume``); the
schedules then continue as if the new epoch count had been configured from the start (:func:`resume_scheduler`).
"""
from __future__ import annotations

import contextlib
import contextvars
import os
import pickle
import random
import re
import warnings
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import numpy as np
import torch

try:  # numpy >= 2
    from numpy._core import multiarray as _multiarray
except ImportError:  # pragma: no cover - numpy 1.x
    from numpy.core import multiarray as _multiarray
from torch import nn

from snn.atomic import atomic_open
from snn.config import config_diff

__all__ = ["save_atomic", "load_checkpoint", "load_torch_file", "trust_checkpoints", "CheckpointMismatchError",
           "UntrustedCheckpointError", "check_model_state", "check_config", "resume_scheduler", "capture_rng",
           "restore_rng", "COMPARED_SECTIONS", "NEUTRAL_KEYS"]

#: config sections that must agree between a checkpoint and the run that loads it (``run`` may differ)
COMPARED_SECTIONS = ("data", "model", "training", "optim")
#: keys that may differ on resume: they change where or how fast the run computes, not what it computes
#: (items are pure functions of their index, so loader workers do not change the data; the cache folder holds
#: the same binned frames; thread counts change only float reduction order inside large torch ops — see
#: :func:`check_config`, which warns about that one)
NEUTRAL_KEYS = ("data.num_workers", "data.cache_dir", "training.threads")

# numpy objects that checkpoints written before weights_only loading hold (RNG state, metric scalars)
_LEGACY_NUMPY = [np.ndarray, np.dtype, _multiarray._reconstruct, _multiarray.scalar,
                 *(type(np.dtype(t)) for t in (np.uint32, np.int64, np.float64, np.float32, np.bool_))]
_TRUSTED: contextvars.ContextVar[bool] = contextvars.ContextVar("snn_trust_checkpoints", default=False)


class CheckpointMismatchError(ValueError):
    """A checkpoint was made by a different model or config; the message lists the differences."""


class UntrustedCheckpointError(ValueError):
    """A ``.pt`` file holds Python objects that loading would have to execute; it was refused unread."""


@contextlib.contextmanager
def trust_checkpoints(enabled: bool = True) -> Iterator[None]:
    """Inside the block, :func:`load_torch_file` / :func:`load_checkpoint` load any file fully (``weights_only=False``).

    Only for files whose source you trust: unpickling can execute arbitrary code.
    """
    token = _TRUSTED.set(bool(enabled))
    try:
        yield
    finally:
        _TRUSTED.reset(token)


def _plain(obj: Any) -> Any:
    """``obj`` with numpy scalars as python numbers and numpy arrays as tensors (loadable with weights_only)."""
    if isinstance(obj, np.generic):
        return obj.item()
    if isinstance(obj, np.ndarray):
        return torch.from_numpy(np.array(obj))
    if isinstance(obj, dict):
        items = {k: _plain(v) for k, v in obj.items()}
        if all(items[k] is v for k, v in obj.items()):
            return obj  # unchanged: keep the object (a state_dict's ``_metadata`` with it)
        out = type(obj)(items)
        if hasattr(obj, "_metadata"):
            out._metadata = obj._metadata
        return out
    if isinstance(obj, (list, tuple)) and not hasattr(obj, "_fields"):
        items = [_plain(v) for v in obj]
        return obj if all(a is b for a, b in zip(items, obj)) else type(obj)(items)
    return obj


def save_atomic(obj: Any, path: str | os.PathLike) -> None:
    """``torch.save`` into a temporary file beside ``path``, then rename it over ``path``.

    numpy arrays and scalars in ``obj`` are stored as tensors and python numbers so the file loads with
    ``weights_only=True``.
    """
    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    with atomic_open(path, "wb", fsync=True) as f:
        torch.save(_plain(obj), f)


def load_torch_file(path: str | os.PathLike, map_location: Any = "cpu", *, trust: bool | None = None,
                    what: str = "checkpoint") -> Any:
    """``torch.load`` that executes nothing from an untrusted file.

    Args:
        path: a ``.pt`` file.
        map_location: as for ``torch.load``.
        trust: load everything (``weights_only=False``); ``None``: as set by :func:`trust_checkpoints`.
        what: what the file is, for messages (``"checkpoint"``, ``"--data file"``).

    Raises:
        UntrustedCheckpointError: the file holds objects other than tensors and plain data (names the first one).
        CheckpointMismatchError: the file cannot be read at all (truncated, not a torch file).
    """
    path = Path(path)
    if not path.is_file():
        raise FileNotFoundError(f"{what} not found: {path}")
    trusted = _TRUSTED.get() if trust is None else bool(trust)
    try:
        if trusted:
            return torch.load(path, map_location=map_location, weights_only=False)
        with torch.serialization.safe_globals(_LEGACY_NUMPY):
            return torch.load(path, map_location=map_location, weights_only=True)
    except pickle.UnpicklingError as err:
        found = re.search(r"Unsupported global: GLOBAL ([^\s]+)", str(err))
        if found is None:  # garbage bytes, or pickle opcodes the safe loader does not run
            op = re.search(r"Unsupported operand \d+", str(err))
            raise CheckpointMismatchError(f"{path}: cannot be read as a {what} (not a torch file, or corrupt"
                                          f"{': ' + op.group(0).lower() if op else ''})") from None
        raise UntrustedCheckpointError(
            f"{path}: refused to load this {what}: it holds a Python object ({found.group(1)}) whose loading would "
            f"execute code; snn checkpoints hold tensors and plain data only. If you trust the file's source, load "
            f"it with --trust-checkpoint (Python: trust=True or `with trust_checkpoints():`)"
        ) from None
    except Exception as err:  # torch raises many kinds for truncated/corrupt files
        raise CheckpointMismatchError(f"{path}: cannot be read as a {what}: {err}") from None


def load_checkpoint(path: str | os.PathLike, map_location: Any = "cpu", *, trust: bool | None = None) -> dict[str, Any]:
    """Read a checkpoint written by :func:`save_atomic` (a dict) without executing anything; errors name the file.

    ``trust=True`` (or :func:`trust_checkpoints`) loads files that hold pickled objects too; see
    :func:`load_torch_file`.
    """
    path = Path(path)
    if not path.is_file():
        raise FileNotFoundError(f"checkpoint not found: {path}")
    ckpt = load_torch_file(path, map_location, trust=trust)
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


def _resolved_device(name: Any) -> torch.device | None:
    from snn.training.trainer import resolve_device  # late: the trainer imports this module

    try:
        dev = resolve_device(str(name))
    except (ValueError, RuntimeError):
        return None
    if dev.type == "cuda" and dev.index is None:
        dev = torch.device("cuda", torch.cuda.current_device())
    return dev


def _get(config: dict[str, Any], dotted: str) -> Any:
    section, key = dotted.split(".", 1)
    return config.get(section, {}).get(key)


def check_config(saved: dict[str, Any] | None, current: dict[str, Any], source: str = "checkpoint",
                 ignore: tuple[str, ...] = (), *, extend_epochs: bool = False) -> list[str]:
    """Raise :class:`CheckpointMismatchError` listing the config keys (in :data:`COMPARED_SECTIONS`) that differ.

    Differences that do not change the training trajectory are accepted and returned (``key: saved != current``
    lines, for a log message): the keys in :data:`NEUTRAL_KEYS` and ``ignore``, and ``training.device`` when both
    values resolve to the same device (``auto`` and ``cpu`` on a machine without CUDA). ``training.threads``
    changes float reduction order inside large multi-threaded torch ops, so it is accepted with a warning that the
    continuation may differ in the last bits. With ``extend_epochs`` a larger ``training.epochs`` is accepted too
    (the caller then restores schedulers with :func:`resume_scheduler`); a smaller one never is.
    """
    if saved is None:
        return []
    a = {s: saved.get(s, {}) for s in COMPARED_SECTIONS}
    b = {s: current.get(s, {}) for s in COMPARED_SECTIONS}
    accepted, refused = [], []
    for line in config_diff(a, b):
        key = line.split(":", 1)[0]
        if key in NEUTRAL_KEYS or key in ignore:
            accepted.append(line)
        elif key == "training.device" and (dev := _resolved_device(_get(a, key))) is not None \
                and dev == _resolved_device(_get(b, key)):
            accepted.append(line)
        elif key == "training.epochs" and extend_epochs:
            old, new = _get(a, key), _get(b, key)
            if new < old:
                raise CheckpointMismatchError(
                    f"training.epochs: the {source} was configured for {old} epochs; a resumed run can extend it, "
                    f"not shorten it (got {new})")
            accepted.append(line)
        else:
            refused.append(line)
    if refused:
        hint = ("\nTo train a finished run for more epochs, pass --epochs N together with --resume."
                if any(r.startswith("training.epochs:") for r in refused) else "")
        raise CheckpointMismatchError(
            f"the {source} was made with a different config ({source} value != current value):\n  "
            + "\n  ".join(refused) + hint
        )
    if any(line.startswith("training.threads:") for line in accepted):
        warnings.warn(f"training.threads differs from the {source}'s: the continuation may differ from an "
                      f"uninterrupted run in the last bits (float reduction order)", RuntimeWarning, stacklevel=2)
    return accepted


#: scheduler state entries that fix a schedule's length; :func:`resume_scheduler` keeps the new run's values
_HORIZON_KEYS = ("total_steps", "_schedule_phases", "T_max")


def resume_scheduler(scheduler: Any, state: dict[str, Any]) -> None:
    """Load a learning-rate scheduler's saved ``state`` into ``scheduler``, built for the resumed run's length.

    When the length is unchanged this is ``scheduler.load_state_dict(state)``, bit-exact. When ``training.epochs``
    was extended the schedule continues *as if the new epoch count had been configured from the start*: the step
    counter comes from ``state``, the horizon (one-cycle ``total_steps`` and phases, cosine ``T_max``) from
    ``scheduler``, and the learning rate (and one-cycle momentum) of the current step is recomputed on the new
    horizon. From then on every step's learning rate equals that of a run configured with the new length from
    epoch 0. The epochs already trained keep the rates they had, so the result is not bit-identical to such a run;
    for one-cycle and cosine, whose rate had decayed to ~0 at the old end, the rate jumps back up to the new
    schedule's value at that step (a warm restart). The model's own epoch schedules (the DCLS σ decay) receive the
    new epoch count through ``set_epoch`` and follow the same rule.
    """
    fresh = scheduler.state_dict()
    horizon = {k: fresh[k] for k in _HORIZON_KEYS if k in fresh}
    if all(state.get(k) == v for k, v in horizon.items()):
        scheduler.load_state_dict(state)
        return
    scheduler.load_state_dict({**state, **horizon})
    closed_form = getattr(scheduler, "_get_closed_form_lr", None)
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")  # get_lr outside step() warns; here it is the point
        lrs = closed_form() if closed_form is not None else scheduler.get_lr()  # one-cycle: sets momentum too
    for group, lr in zip(scheduler.optimizer.param_groups, lrs):
        group["lr"] = lr
    scheduler._last_lr = [group["lr"] for group in scheduler.optimizer.param_groups]


def capture_rng(generator: torch.Generator | None = None) -> dict[str, Any]:
    """RNG states of python, numpy, torch (CPU and every CUDA device) and the data-order generator."""
    kind, keys, pos, has_gauss, cached = np.random.get_state()
    state = {
        "python": random.getstate(),
        "numpy": {"kind": kind, "keys": keys.tolist(), "pos": int(pos), "has_gauss": int(has_gauss),
                  "cached_gaussian": float(cached)},
        "torch": torch.get_rng_state(),
        "cuda": torch.cuda.get_rng_state_all() if torch.cuda.is_available() else None,
        "generator": generator.get_state() if generator is not None else None,
    }
    return state


def restore_rng(state: dict[str, Any], generator: torch.Generator | None = None) -> None:
    """Inverse of :func:`capture_rng`."""
    random.setstate(state["python"])
    npstate = state["numpy"]
    if isinstance(npstate, dict):
        npstate = (npstate["kind"], np.asarray(npstate["keys"], dtype=np.uint32), npstate["pos"],
                   npstate["has_gauss"], npstate["cached_gaussian"])
    np.random.set_state(npstate)
    torch.set_rng_state(state["torch"])
    if state.get("cuda") is not None and torch.cuda.is_available():
        torch.cuda.set_rng_state_all(state["cuda"])
    if generator is not None and state.get("generator") is not None:
        generator.set_state(state["generator"])
