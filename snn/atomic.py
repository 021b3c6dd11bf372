"""Writing files so that no reader ever sees half of one.

What the project writes for later readers (checkpoints, configs, metrics, plots, HDF5 datasets, frame caches,
generated kernels, benchmark results) goes through these helpers: the data is written to a temporary file in the
target's folder and renamed over the target only when complete (``os.replace`` is atomic on one file system). On
any error, or an interrupt, the temporary file is removed and the target is left as it was. Known exceptions,
written in place: ``energy.txt`` of a run folder (``snn.training.run``) and the host shim's scratch sources in a
private temporary folder (``snn.kernels.host_shim``).

A writer killed outright (``kill -9``, power loss) cannot remove its temporary file. Each temporary name therefore
carries its owner, ``.<target>.<pid>-<host>.<random><suffix>``, and :func:`remove_stale_temps` (called by the cache
and the run folder on their next start) deletes those whose owner process on this host is gone. Files of other
hosts (a shared file system) and of the old unowned format are removed only once older than ``max_age_s``; a live
writer's file is never touched.

This module imports nothing from ``snn``, so every layer of the package may use it.
"""
from __future__ import annotations

import os
import re
import socket
import tempfile
import time
from contextlib import contextmanager
from pathlib import Path
from typing import IO, Iterator

#: temporary files of other hosts, or without an owner, are removed once older than this (seconds)
STALE_AGE_S = 24 * 3600.0

_TEMP_NAME = re.compile(r"^\.(?P<target>.+)\.(?P<pid>\d+)-(?P<host>[A-Za-z0-9-]*)\.[a-z0-9_]{6,}(?P<suffix>\.[^.]+)$")
_UNOWNED_NAME = re.compile(r"^\.(?P<target>.+)\.[a-z0-9_]{8}(?P<suffix>\.[^.]+)$")


def _host() -> str:
    return re.sub(r"[^A-Za-z0-9-]", "-", socket.gethostname())[:40]


def _owner_tag() -> str:
    return f"{os.getpid()}-{_host()}"


def _pid_alive(pid: int) -> bool:
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    except PermissionError:  # exists, owned by another user
        return True
    return True


def remove_stale_temps(folder: str | os.PathLike, targets: str = "*", max_age_s: float = STALE_AGE_S) -> list[Path]:
    """Delete temporary files left in ``folder`` by writers of :func:`atomic_path` that died; return them.

    Args:
        folder: the folder of the targets.
        targets: glob of the target names whose temporary files are considered (``"last.pt"``, ``"*.frames"``).
        max_age_s: age (by mtime) after which a file whose owner cannot be checked (another host, or a name without
            an owner) counts as stale.

    A file whose owner is a live process on this host is kept, whatever its age.
    """
    import fnmatch

    folder = Path(folder)
    removed: list[Path] = []
    if not folder.is_dir():
        return removed
    now, host = time.time(), _host()
    for entry in folder.iterdir():
        name = entry.name
        m = _TEMP_NAME.match(name)
        if m is not None:
            target = m["target"]
            stale = (not _pid_alive(int(m["pid"]))) if m["host"] == host else None
        else:
            m = _UNOWNED_NAME.match(name)
            if m is None:
                continue
            target, stale = m["target"], None
        if not fnmatch.fnmatchcase(target, targets):
            continue
        try:
            if stale is None:
                stale = now - entry.stat().st_mtime > max_age_s
            if stale and entry.is_file():
                entry.unlink()
                removed.append(entry)
        except FileNotFoundError:  # removed meanwhile (its writer finished, or another cleaner)
            continue
    return removed


@contextmanager
def atomic_path(path: str | os.PathLike, suffix: str = ".tmp") -> Iterator[Path]:
    """Yield a temporary path beside ``path``; on normal exit rename it over ``path``, on error delete it.

    For writers that want a file name (h5py, ``savefig``); ``suffix`` lets them infer the format.
    """
    path = Path(path)
    fd, tmp = tempfile.mkstemp(dir=path.parent, prefix=f".{path.name}.{_owner_tag()}.", suffix=suffix)
    os.close(fd)
    try:
        yield Path(tmp)
        os.replace(tmp, path)
    finally:
        if os.path.exists(tmp):
            os.unlink(tmp)


@contextmanager
def atomic_open(path: str | os.PathLike, mode: str = "wb", fsync: bool = False) -> Iterator[IO]:
    """``open(path, mode)`` through a temporary file; ``fsync`` flushes it to the disk before the rename."""
    with atomic_path(path) as tmp:
        with open(tmp, mode) as handle:
            yield handle
            if fsync:
                handle.flush()
                os.fsync(handle.fileno())


def write_atomic(path: str | os.PathLike, data: bytes | str) -> None:
    """Write ``data`` (bytes, or text as UTF-8) to ``path`` atomically."""
    with atomic_open(path, "wb") as handle:
        handle.write(data.encode("utf-8") if isinstance(data, str) else data)
