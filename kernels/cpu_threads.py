"""CPU thread pools of torch and numba: set together, started in an order that keeps both, recorded for resumes.

Three pools run a CPU training step: torch's intra-op pool (matrix products, BatchNorm statistics); the fused neuron
kernels split their lanes over a ``ThreadPoolExecutor`` of ``torch.get_num_threads()`` workers
(:mod:`snn.kernels.numba_backend`); numba's own pool runs the ``parallel=True`` kernels (the delay layer's spike
scatter, the event-driven linear map; at most ``NUMBA_NUM_THREADS``), and its threads wait actively: with more
threads than free cores (two runs side by side on two cores) a training step was measured 20× slower.

Thread counts set the order of some float sums: BatchNorm's statistics (one partial sum per torch thread) and the
delay and event kernels' weight gradients (one partial sum per numba thread). A run is bit-reproducible only at
the same counts, so checkpoints record them (:func:`thread_counts`) and a resume restores them
(:func:`restore_thread_counts`).

Why numba's pool is started here (:func:`start_numba_pool`): numba starts it on first use (the first
``parallel=True`` kernel, or the first ``numba.get_num_threads`` / ``numba.set_num_threads``). With its OpenMP
threading layer (the one picked where GNU OpenMP is installed, as on these Linux machines) starting the pool calls
``omp_set_num_threads(NUMBA_NUM_THREADS)`` on the calling thread (numba's ``omppool.cpp``, ``launch_threads``).
torch's CPU build uses the same GNU OpenMP runtime, so that call silently changed *torch's* thread count on that
thread, e.g. from the ``torch.set_num_threads(1)`` a seeded run asked for to ``NUMBA_NUM_THREADS``. torch re-applies
its own setting only the first time a thread runs a parallel op, so whether the change stuck depended on what had
run before (an earlier test, a user's data preparation): the first run of a process could train at two torch
threads and its resumed copy at one. Every path into a ``parallel=True`` kernel of the package goes through
:func:`start_numba_pool` or :func:`numba_threads` first.
"""
from __future__ import annotations

import threading
import warnings
from typing import Any

import numba
import torch

__all__ = ["start_numba_pool", "numba_threads", "set_threads", "thread_counts", "restore_thread_counts"]

_started = False
_lock = threading.Lock()


def start_numba_pool() -> None:
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


def numba_threads() -> int:
    """The number of threads numba's ``parallel=True`` kernels use on the calling thread (pool started first)."""
    start_numba_pool()
    return numba.get_num_threads()


def _check_count(name: str, n: Any) -> None:
    if not isinstance(n, int) or isinstance(n, bool) or n < 1:
        raise ValueError(f"{name} must be a positive int, got {n!r}")


def set_threads(n: int) -> None:
    """Use ``n`` CPU threads in torch, in the fused neuron kernels and in numba's parallel kernels (numba's at most
    ``NUMBA_NUM_THREADS``). Applies to the calling thread's numba count (numba's setting is per thread)."""
    _check_count("threads", n)
    start_numba_pool()  # first: started after torch's setting it would overwrite it with NUMBA_NUM_THREADS
    torch.set_num_threads(n)
    numba.set_num_threads(min(n, numba.config.NUMBA_NUM_THREADS))


def thread_counts() -> dict[str, int]:
    """``{"torch": ..., "numba": ...}``: the counts this thread's training step runs with (for a checkpoint)."""
    return {"torch": torch.get_num_threads(), "numba": numba_threads()}


def restore_thread_counts(saved: dict[str, int]) -> dict[str, int] | None:
    """Set the counts of :func:`thread_counts` ``saved`` (torch's and numba's separately).

    Returns the counts set when they differed from the current ones (``None`` when nothing changed). numba's count
    cannot exceed this process's ``NUMBA_NUM_THREADS``: it is then set as high as allowed and a ``RuntimeWarning``
    says that the continuation may differ in the last bits.
    """
    for key in ("torch", "numba"):
        _check_count(f"saved thread counts[{key!r}]", saved.get(key))
    current = thread_counts()
    if current == {"torch": saved["torch"], "numba": saved["numba"]}:
        return None
    limit = numba.config.NUMBA_NUM_THREADS
    if saved["numba"] > limit:
        warnings.warn(f"the checkpoint ran numba's kernels on {saved['numba']} threads, this process allows "
                      f"{limit} (NUMBA_NUM_THREADS): the continuation may differ from an uninterrupted run in the "
                      f"last bits (float reduction order)", RuntimeWarning, stacklevel=2)
    torch.set_num_threads(saved["torch"])
    numba.set_num_threads(min(saved["numba"], limit))
    return thread_counts()
