"""Writing files so that no reader ever sees half of one.

What the project writes for later readers (checkpoints, configs, metrics, plots, HDF5 datasets, frame caches,
generated kernels, benchmark results) goes through these helpers: the data is written to a temporary file in the
target's folder and renamed over the target only when complete (``os.replace`` is atomic on one file system). On
any error, or an interrupt, the temporary file is removed and the target is left as it was. Known exceptions,
written in place: ``energy.txt`` of a run folder (``snn.training.run``) and the host shim's scratch sources in a
private temporary folder (``snn.kernels.host_shim``).

This module imports nothing from ``snn``, so every layer of the package may use it.
"""
from __future__ import annotations

import os
import tempfile
from contextlib import contextmanager
from pathlib import Path
from typing import IO, Iterator


@contextmanager
def atomic_path(path: str | os.PathLike, suffix: str = ".tmp") -> Iterator[Path]:
    """Yield a temporary path beside ``path``; on normal exit rename it over ``path``, on error delete it.

    For writers that want a file name (h5py, ``savefig``); ``suffix`` lets them infer the format.
    """
    path = Path(path)
    fd, tmp = tempfile.mkstemp(dir=path.parent, prefix=f".{path.name}.", suffix=suffix)
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
