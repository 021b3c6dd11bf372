"""Choosing the backend that runs a neuron's dynamics.

==========  ===========================  ==================================================================
name        runs on                      notes
==========  ===========================  ==================================================================
``torch``   any device, any float dtype  the reference: a loop of tensor ops differentiated by autograd
``numba``   CPU, float32/float64         fused forward and backward over all steps (numba, parallel)
``cupy``    CUDA, float32/16, bfloat16   fused forward and backward (CuPy ``RawModule``, NVRTC)
``auto``    —                            ``cupy`` for CUDA tensors when CuPy imports, ``numba`` for CPU
                                         float32/float64 tensors, otherwise ``torch``
==========  ===========================  ==================================================================

Asking explicitly for a backend that cannot run raises :class:`BackendUnavailable` carrying the real reason
(the import or compile error) and how to fix it. CuPy is imported only when a CUDA backend is asked for.
"""
from __future__ import annotations

from functools import lru_cache
from typing import Any

import torch

BACKENDS = ("auto", "torch", "numba", "cupy")


class BackendUnavailable(RuntimeError):
    """The requested backend cannot run here; the message says why and how to fix it."""


def check_name(backend: str) -> str:
    if backend not in BACKENDS:
        raise ValueError(f"backend: expected one of {BACKENDS}, got {backend!r}")
    return backend


@lru_cache(maxsize=None)
def _numba_runner() -> Any:
    try:
        from snn.kernels.numba_backend import NumbaRunner
    except Exception as err:  # ImportError, or numba failing to initialise
        raise BackendUnavailable(
            f"the numba backend failed to import: {type(err).__name__}: {err}. "
            "Fix: `pip install numba` (>= 0.59), or use backend='torch'."
        ) from err
    return NumbaRunner()


@lru_cache(maxsize=None)
def _cupy_runner() -> Any:
    try:
        from snn.kernels.cupy_backend import CupyRunner

        return CupyRunner()
    except BackendUnavailable:
        raise
    except Exception as err:
        raise BackendUnavailable(
            f"the cupy backend failed to load: {type(err).__name__}: {err}. Fix: install the CuPy wheel that "
            "matches your CUDA toolkit (from a clone: `pip install -e \".[cuda]\"` for CUDA 12, "
            "`pip install -e \".[cuda13]\"` for CUDA 13; or `pip install cupy-cuda12x` / `cupy-cuda13x`), "
            "or use backend='torch'."
        ) from err


def select(backend: str, x: torch.Tensor) -> Any | None:
    """The runner for ``x`` (``None`` means the torch reference). Raises when an explicit choice cannot run."""
    check_name(backend)
    if backend == "torch":
        return None
    if backend == "numba":
        if x.device.type != "cpu":
            raise BackendUnavailable(f"backend='numba' runs on CPU tensors; the input is on {x.device}. Use 'cupy' or 'auto'.")
        if x.dtype not in (torch.float32, torch.float64):
            raise BackendUnavailable(f"backend='numba' supports float32 and float64; the input is {x.dtype}. Use 'torch'.")
        return _numba_runner()
    if backend == "cupy":
        if x.device.type != "cuda":
            raise BackendUnavailable(f"backend='cupy' runs on CUDA tensors; the input is on {x.device}. Use 'numba' or 'auto'.")
        return _cupy_runner()
    # auto
    if x.device.type == "cuda":
        try:
            return _cupy_runner()
        except BackendUnavailable:
            return None
    if x.device.type == "cpu" and x.dtype in (torch.float32, torch.float64):
        try:
            return _numba_runner()
        except BackendUnavailable:
            return None
    return None
