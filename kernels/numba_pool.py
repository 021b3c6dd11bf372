"""numba's thread pool, started without changing torch's thread count.

numba starts its pool for ``parallel=True`` kernels on first use (the first such kernel, or the first
``numba.get_num_threads`` / ``numba.set_num_threads``). With its OpenMP threading layer (the one picked where
GNU OpenMP is installed, as on these Linux machines) starting the pool calls ``omp_set_num_threads(NUMBA_NUM_THREADS)``
on the calling thread (numba's ``omppool.cpp``, ``launch_threads``). torch's CPU build is linked against the same
GNU OpenMP runtime, so that call silently changes *torch's* intra-op thread count on that thread, e.g. from the
``torch.set_num_threads(1)`` a seeded run asked for to ``NUMBA_NUM_THREADS``. torch re-applies its own setting
only the first time a thread runs a parallel op, so whether the change sticks depends on what ran before: a
process that had already run one torch op (an earlier test, a user's data preparation) kept ``NUMBA_NUM_THREADS``
torch threads. torch reductions whose split depends on the thread count (BatchNorm's per-thread partial sums)
then differed in the last bits between an uninterrupted run and its resumed copy.

:func:`start` starts the pool once per process and puts torch's count back; every path into a ``parallel=True``
kernel of the package goes through :func:`start` or :func:`threads` first.
"""
from __future__ import annotations

import threading

import numba
import torch

__all__ = ["start", "threads"]

_started = False
_lock = threading.Lock()


def start() -> None:
    """Start numba's thread pool now (once per process); torch's intra-op thread count stays what it was."""
    global _started
    if _started:
        return
    with _lock:
        if _started:
            return
        before = torch.get_num_threads()
        numba.get_num_threads()  # starts the pool (a no-op when something else already started it)
        if torch.get_num_threads() != before:
            torch.set_num_threads(before)
        _started = True


def threads() -> int:
    """The number of threads numba's ``parallel=True`` kernels use on the calling thread (pool started first)."""
    start()
    return numba.get_num_threads()
