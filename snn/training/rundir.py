"""Run folders: one run per folder, never silently replaced, never written by two live runs at once.

A run claims its folder before it writes anything::

    with claim_run_dir(out, overwrite=False, resume=False) as lock:
        ...  # train, write config.yaml, metrics.csv, last.pt, best.pt into lock.path

:class:`RunDirLock` holds an exclusive ``fcntl.flock`` on ``<folder>/.snn-run.lock`` for as long as the run lives
(the kernel drops it when the process ends, however it ends, so a killed run never leaves a stale lock); the file
records the holder's pid, host and start time so that a second run is told who holds the folder.
:func:`prepare_run_dir`, called with the lock held, first removes the temporary files that killed writers left
(:func:`snn.atomic.remove_stale_temps`), then refuses a folder that already holds anything unless the run resumes
it or ``overwrite`` is set, in which case the previous run's outputs (:data:`RUN_OUTPUTS`) are deleted so that
nothing of the old run mixes with the new one; files the library did not write are left alone.

``flock`` works on local file systems and on NFSv4 (Linux maps it to a POSIX lock there); on a file system without
locking support :class:`RunDirLock` raises :class:`RunDirError` rather than running unprotected. Under DDP only
the main process claims the folder.
"""
from __future__ import annotations

import datetime
import errno
import fcntl
import json
import os
import shutil
import socket
import time
from pathlib import Path
from types import TracebackType

from snn.atomic import remove_stale_temps

__all__ = ["RunDirError", "RunDirNotEmptyError", "RunDirLockedError", "RunDirLock", "prepare_run_dir",
           "claim_run_dir", "LOCK_NAME", "RUN_OUTPUTS"]

#: name of the lock file inside a run folder
LOCK_NAME = ".snn-run.lock"
#: what a run (and ``snn energy RUN``) writes into its folder, as glob patterns; ``overwrite`` deletes exactly these
RUN_OUTPUTS = ("config.yaml", "metrics.csv", "last.pt", "best.pt", "test_metrics.json", "energy.json", "energy.txt",
               "energy_*.json", "tensorboard", "plots")


class RunDirError(ValueError):
    """A run folder cannot be used (not a folder, no locking support, ...)."""


class RunDirNotEmptyError(RunDirError):
    """The run folder already holds a run (or other files) and neither resume nor overwrite was asked for."""


class RunDirLockedError(RunDirError):
    """Another live process holds the run folder's lock."""


def _holder_text(raw: bytes) -> str:
    try:
        h = json.loads(raw.decode())
        return f"pid {h['pid']} on host {h['host']} (since {h['started']})"
    except (ValueError, KeyError, TypeError):
        return "a process that has not recorded itself yet"


def _read_holder(fd: int) -> bytes:
    """The holder's record; it writes it just after taking the lock, so wait briefly for it to appear."""
    for _ in range(20):
        raw = os.pread(fd, 4096, 0)
        if raw.strip():
            return raw
        time.sleep(0.025)
    return b""


class RunDirLock:
    """Exclusive lock on a run folder for the life of a run (``with RunDirLock(path): ...``).

    Args:
        path: the run folder (created if missing).

    Raises:
        RunDirLockedError: another process holds the folder; the message names its pid and host.
    """

    def __init__(self, path: str | os.PathLike) -> None:
        self.path = Path(path)
        self._fd: int | None = None

    @property
    def locked(self) -> bool:
        """True while this object holds the lock."""
        return self._fd is not None

    def acquire(self) -> RunDirLock:
        """Take the lock (non-blocking); returns ``self``."""
        if self._fd is not None:
            return self
        if self.path.exists() and not self.path.is_dir():
            raise RunDirError(f"run folder {self.path} exists and is not a folder")
        self.path.mkdir(parents=True, exist_ok=True)
        fd = os.open(self.path / LOCK_NAME, os.O_RDWR | os.O_CREAT, 0o644)
        try:
            fcntl.flock(fd, fcntl.LOCK_EX | fcntl.LOCK_NB)
        except OSError as err:
            holder = _read_holder(fd)
            os.close(fd)
            if err.errno in (errno.EWOULDBLOCK, errno.EAGAIN, errno.EACCES):
                raise RunDirLockedError(
                    f"run folder {self.path} is in use by another run: {_holder_text(holder)}. Wait for it to "
                    f"finish, or choose another folder with --out"
                ) from None
            raise RunDirError(f"cannot lock run folder {self.path} ({err.strerror}); its file system may not "
                              f"support file locks: use a local folder") from err
        started = datetime.datetime.now(datetime.timezone.utc).strftime("%Y-%m-%d %H:%M:%S UTC")
        record = json.dumps({"pid": os.getpid(), "host": socket.gethostname(), "started": started}).encode()
        os.ftruncate(fd, 0)
        os.pwrite(fd, record, 0)
        self._fd = fd
        return self

    def release(self) -> None:
        """Drop the lock (idempotent)."""
        if self._fd is None:
            return
        fd, self._fd = self._fd, None
        try:
            os.ftruncate(fd, 0)
            fcntl.flock(fd, fcntl.LOCK_UN)
        finally:
            os.close(fd)

    def __enter__(self) -> RunDirLock:
        return self.acquire()

    def __exit__(self, exc_type: type[BaseException] | None, exc: BaseException | None,
                 tb: TracebackType | None) -> None:
        self.release()

    def __del__(self) -> None:
        if self._fd is not None:
            self.release()

    def __repr__(self) -> str:
        return f"RunDirLock(path={str(self.path)!r}, locked={self.locked})"


def prepare_run_dir(path: str | os.PathLike, *, overwrite: bool = False, resume: bool = False) -> Path:
    """Check (and with ``overwrite`` clear) a run folder before a run writes into it; call with the lock held.

    Args:
        path: the run folder (created if missing).
        overwrite: delete the previous run's outputs (:data:`RUN_OUTPUTS`) instead of refusing a non-empty folder.
        resume: the run continues the one in this folder (which must hold ``last.pt``).

    Stale temporary files of killed writers are removed first in every case.

    Raises:
        RunDirNotEmptyError: the folder holds files and neither ``resume`` nor ``overwrite`` is set; the message
            says how to resume it or pick another folder.
        FileNotFoundError: ``resume`` and the folder has no ``last.pt``.
        ValueError: both ``resume`` and ``overwrite``.
    """
    if resume and overwrite:
        raise ValueError("resume and overwrite exclude each other: resuming continues the run in the folder, "
                         "overwrite deletes it")
    path = Path(path)
    if path.exists() and not path.is_dir():
        raise RunDirError(f"run folder {path} exists and is not a folder")
    path.mkdir(parents=True, exist_ok=True)
    remove_stale_temps(path)
    if resume:
        if not (path / "last.pt").is_file():
            raise FileNotFoundError(f"cannot resume {path}: it has no last.pt")
        return path
    entries = sorted(e.name for e in path.iterdir() if e.name != LOCK_NAME)
    if not entries:
        return path
    if not overwrite:
        shown = ", ".join(entries[:6]) + (", ..." if len(entries) > 6 else "")
        how = (f"continue it with --resume {path} (Python: resume=...), " if "last.pt" in entries else "")
        raise RunDirNotEmptyError(
            f"run folder {path} is not empty ({shown}); {how}choose another folder with --out, or pass "
            f"--overwrite (Python: overwrite=True) to delete the previous run's outputs"
        )
    for p in (p for pattern in RUN_OUTPUTS for p in path.glob(pattern)):
        if p.is_dir() and not p.is_symlink():
            shutil.rmtree(p)
        else:
            p.unlink()
    return path


def claim_run_dir(path: str | os.PathLike, *, overwrite: bool = False, resume: bool = False) -> RunDirLock:
    """Lock the run folder, then :func:`prepare_run_dir` it; returns the held :class:`RunDirLock`.

    The lock is taken first, so two runs started together cannot both find the folder empty. On any error the
    lock is released before the error propagates. Use as ``with claim_run_dir(out) as lock: ...`` or call
    ``lock.release()`` when the run ends.
    """
    lock = RunDirLock(path).acquire()
    try:
        prepare_run_dir(path, overwrite=overwrite, resume=resume)
    except BaseException:
        lock.release()
        raise
    return lock
