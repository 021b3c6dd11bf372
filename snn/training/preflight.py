"""Checks of a run's config against the machine, before any data is read or step taken.

``snn.config`` checks types, allowed values and value ranges when a config is loaded. What depends on the
machine is checked here, all at once, so that a run fails in its first second with every problem listed
instead of after an epoch or at the end: every named resource resolves — the energy profile
(``run.energy_profile``, when the run logs or reports energy), the dataset's files (``data.dataset`` /
``data.root``), the device (``training.device``), the cache folder (``data.cache_dir``).

Usage (what :func:`snn.training.experiment.run` does before building anything)::

    preflight(config)   # raises ConfigError listing every problem, one per line
"""
from __future__ import annotations

import os
from pathlib import Path

import torch

from snn.config import Config, ConfigError

__all__ = ["preflight", "preflight_problems"]


def _profile_problems(config: Config) -> list[str]:
    run = config.run
    if not (getattr(run, "energy", False) or getattr(run, "log_energy", False)):
        return []
    from snn.energy import load_profile

    try:
        load_profile(run.energy_profile)
    except (ValueError, TypeError, OSError) as err:
        return [f"run.energy_profile: {err}"]
    return []


def _dataset_files(config: Config) -> list[tuple[str, type, str]]:
    """``(split, dataset class, file name)`` of every file the run reads."""
    from snn.datasets import SHD, SSC, SpokenDigits

    from snn.training.data import ADDING_SETS

    data = config.data
    cls = {"spoken_digits": SpokenDigits, "shd": SHD, "ssc": SSC}.get(ADDING_SETS.get(data.dataset, data.dataset))
    if cls is None:
        return []
    splits = [data.train_split, "valid"] + (["test"] if config.run.test_at_end else [])
    return [(s, cls, cls.files[s]) for s in dict.fromkeys(splits) if s in cls.files]


def _data_problems(config: Config) -> list[str]:
    from snn.datasets.shd import DATA_DIR, SpokenDigits, find_file

    data = config.data
    files = _dataset_files(config)
    if not files:
        return []
    cls = files[0][1]
    if cls is not SpokenDigits and data.root is None:
        return [f"data.root: the {data.dataset.upper()} dataset needs the folder holding "
                f"{', '.join(sorted({f for _, _, f in files}))}, got null"]
    root = Path(data.root).expanduser() if data.root is not None else DATA_DIR
    out = []
    for name in dict.fromkeys(f for _, _, f in files):
        try:
            find_file(root, name, (cls.subdir,) if cls.subdir else (), what=f"data.root ({data.dataset})",
                      hint="Set data.root to the folder that holds the dataset's files.")
        except FileNotFoundError as err:
            out.append(str(err))
    return out


def _device_problems(config: Config) -> list[str]:
    name = config.training.device
    if name == "auto":
        return []
    try:
        dev = torch.device(name)
    except (RuntimeError, ValueError):
        return [f"training.device: {name!r} is not a device; expected 'auto', 'cpu', 'cuda' or 'cuda:N'"]
    if dev.type == "cpu":
        return []
    if dev.type != "cuda":
        return [f"training.device: {name!r} is not supported; expected 'auto', 'cpu', 'cuda' or 'cuda:N'"]
    if not torch.cuda.is_available():
        return [f"training.device: {name!r} requested but CUDA is not available on this machine; use 'cpu' or 'auto'"]
    if dev.index is not None and dev.index >= torch.cuda.device_count():
        return [f"training.device: {name!r} requested but this machine has {torch.cuda.device_count()} CUDA "
                f"device(s) (cuda:0..cuda:{torch.cuda.device_count() - 1})"]
    return []


def _cache_problems(config: Config) -> list[str]:
    folder = config.data.cache_dir
    if folder is None:
        return []
    path = Path(folder).expanduser()
    try:
        path.mkdir(parents=True, exist_ok=True)
    except OSError as err:
        return [f"data.cache_dir: cannot create {path}: {err.strerror}"]
    if not os.access(path, os.W_OK | os.X_OK):
        return [f"data.cache_dir: {path} is not writable"]
    return []


def preflight_problems(config: Config) -> list[str]:
    """Every problem :func:`preflight` would report, as ``key: message`` lines (``[]``: ready to run)."""
    if not isinstance(config, Config):
        raise TypeError(f"config must be an snn.config.Config, got {type(config).__name__}")
    return _profile_problems(config) + _data_problems(config) + _device_problems(config) + _cache_problems(config)


def preflight(config: Config) -> None:
    """Raise :class:`~snn.config.ConfigError` listing every problem of ``config`` for a run on this machine."""
    problems = preflight_problems(config)
    if problems:
        raise ConfigError("the config cannot run:\n  " + "\n  ".join(problems))
