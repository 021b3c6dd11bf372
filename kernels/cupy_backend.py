r"""Fused CUDA backend: the kernels of :mod:`snn.kernels.cuda_source`, compiled with NVRTC through CuPy.

One thread per lane walks all ``T`` steps with its state in registers (see :mod:`snn.kernels.cuda_source` for
the layout and the numerics). Kernels are compiled once per ``(dynamics, dtype, record, param_grads)`` with
``cupy.RawModule(code=..., options=("-std=c++17", "--fmad=false"))`` — no fused multiply-add, so float32 runs do
the same IEEE operations as the torch reference and their spikes are identical to it — and cached per device
(CuPy also keeps the compiled binaries on disk under ``~/.cupy/kernel_cache``).

Tensors stay torch tensors: the kernels receive their ``data_ptr()`` and run on torch's current stream (wrapped
as a ``cupy.cuda.ExternalStream``), so they order correctly with the surrounding torch work and no copy is made.

Dtypes: float32, float16 and bfloat16 (float64 also works). Half inputs are computed in float32 registers: the
state and the per-lane parameter-gradient accumulators never round during the sequence; what is stored (spikes,
saved variables, recordings, and the gradients ``∂L/∂x``, ``∂L/∂param`` per lane and ``∂L/∂state₀``) is in the
input's dtype. The per-lane parameter gradient is therefore rounded once, after summing over all ``T`` steps in
float32; torch then sums it over the batch in the parameter's dtype (a half parameter gets a half gradient).

Sources written by hand for a neuron's structure (:mod:`snn.kernels.elm_cuda_source`) go through the same
compile cache and launch path with :meth:`CupyRunner.launch_source` (with dynamic shared memory above the default
48 KiB opted into per function).

CuPy is imported when a :class:`CupyRunner` is created, never at module import; a missing or broken CuPy, a
missing CUDA device or an NVRTC failure raise :class:`snn.kernels.backends.BackendUnavailable` with the real error
and the fix.
"""
from __future__ import annotations

from typing import Any, Sequence

import numpy as np
import torch

from snn.kernels import cuda_source
from snn.kernels.backends import BackendUnavailable
from snn.kernels.dynamics import Dynamics
from snn.kernels.runner import DTYPE_NAMES, FusedRunner

BLOCK = 256
# threads per block of a cooperative kernel, at most 256: a thread uses at most 255 registers, so 256 threads always
# fit a block's 64K-register file (ptxas gives the ELM memory kernels up to 168 for sm_90, which would not fit 1024
# threads); wider layers are covered by the kernels' strided loops
COOPERATIVE_THREADS = 256
DEFAULT_SHARED_BYTES = 48 * 1024
NVRTC_OPTIONS = ("-std=c++17", "--fmad=false")
SUPPORTED_DTYPES = DTYPE_NAMES  # every dtype the CUDA sources are generated for
_FIX = ("Fix: install the CuPy wheel that matches your CUDA toolkit (from a clone: `pip install -e \".[cuda]\"` for CUDA 12, "
        "`pip install -e \".[cuda13]\"` for CUDA 13; or `pip install cupy-cuda12x` / `cupy-cuda13x`), or use backend='torch'.")


def _import_cupy() -> Any:
    try:
        import cupy
    except Exception as err:  # ImportError, or a wheel that does not match the driver/toolkit
        raise BackendUnavailable(f"the cupy backend needs CuPy, which failed to import: {type(err).__name__}: {err}. {_FIX}") from err
    return cupy


class CupyRunner(FusedRunner):
    """Runs a :class:`Dynamics` on CUDA tensors ``[T, L]`` / ``[L]`` (contiguous, float32/float16/bfloat16/float64).

    Args:
        block: threads per block (one lane per thread); 256 by default, any multiple of 32 up to 1024.
    """

    name = "cupy"

    def __init__(self, block: int = BLOCK):
        if not isinstance(block, int) or not 32 <= block <= 1024 or block % 32:
            raise ValueError(f"block: expected a multiple of 32 in [32, 1024], got {block!r}")
        if not torch.cuda.is_available():
            raise BackendUnavailable("the cupy backend needs a CUDA device, and torch.cuda.is_available() is False. "
                                     "Use backend='numba' or 'torch' on CPU.")
        self.cupy = _import_cupy()
        self.block = block
        self._modules: dict[tuple, tuple[Any, ...]] = {}
        self._by_dynamics: dict[tuple, tuple[Any, ...]] = {}
        self._shared_limits: dict[int, int] = {}

    def _compiled(self, code: str, names: Sequence[str], device: int, what: str) -> tuple[Any, ...]:
        """The functions ``names`` of ``code`` compiled for ``device`` (NVRTC, cached per source and device)."""
        key = (code, device)
        if key not in self._modules:
            try:
                with self.cupy.cuda.Device(device):
                    module = self.cupy.RawModule(code=code, options=NVRTC_OPTIONS)
                    self._modules[key] = tuple(module.get_function(name) for name in names)
            except Exception as err:  # CompileException carries NVRTC's log
                raise BackendUnavailable(
                    f"the cupy backend could not compile the kernels of {what}: {type(err).__name__}: {err}. {_FIX}"
                ) from err
        return self._modules[key]

    def _functions(self, dynamics: Dynamics, dtype: str, record: bool, param_grads: bool, device: int) -> tuple[Any, Any]:
        key = (dynamics, dtype, record, param_grads, device)
        if key not in self._by_dynamics:  # no source generation or hashing per launch
            pair = cuda_source.kernels(dynamics, dtype, record, param_grads)
            code = cuda_source.generate_source(dynamics, dtype, record, param_grads)
            self._by_dynamics[key] = self._compiled(code, (pair.forward.name, pair.backward.name), device,
                                                    f"{dynamics.key!r} ({dtype})")
        return self._by_dynamics[key]

    def _run(self, function: Any, grid: int, block: int, args: Sequence, device: torch.device,
             shared_bytes: int = 0) -> None:
        """Launch on torch's current stream of ``device``."""
        stream = self.cupy.cuda.ExternalStream(torch.cuda.current_stream(device).cuda_stream)
        with self.cupy.cuda.Device(device.index), stream:
            function((grid,), (block,), tuple(args), shared_mem=shared_bytes)

    def _launch(self, function: Any, tensors: Sequence[torch.Tensor], scalars: Sequence[float], dtype: str,
                T: int, L: int, device: torch.device) -> None:
        if L == 0:
            return
        if T >= 2**31 or L >= 2**31:
            raise ValueError(f"the cupy backend indexes lanes with 32-bit ints; got L={L}")
        for t in tensors:
            if not t.is_contiguous() or t.device != device or t.dtype != tensors[0].dtype:
                raise ValueError(f"cupy backend: every tensor must be contiguous, on {device} and of dtype {tensors[0].dtype}")
        acc = np.float64 if dtype == "float64" else np.float32
        args = [np.uint64(t.data_ptr()) for t in tensors] + [acc(v) for v in scalars] + [np.int32(T), np.int32(L)]
        self._run(function, (L + self.block - 1) // self.block, self.block, args, device)

    def threads(self, wanted: int) -> int:
        """Threads per block for a cooperative kernel with work for ``wanted`` threads: a multiple of 32, at most
        ``COOPERATIVE_THREADS``."""
        return min(COOPERATIVE_THREADS, max(32, -(-int(wanted) // 32) * 32))

    def shared_memory_limit(self, device: torch.device) -> int:
        """Dynamic shared memory one block may use on ``device`` (the opt-in maximum), in bytes."""
        index = device.index if device.index is not None else torch.cuda.current_device()
        if index not in self._shared_limits:
            self._shared_limits[index] = int(self.cupy.cuda.Device(index).attributes["MaxSharedMemoryPerBlockOptin"])
        return self._shared_limits[index]

    def launch_source(self, source: cuda_source.Source, name: str, grid: int, block: int, args: Sequence,
                      shared_bytes: int = 0) -> None:
        """Launch kernel ``name`` of ``source`` on ``grid`` blocks of ``block`` threads with ``shared_bytes`` of
        dynamic shared memory; ``args`` in the kernel's parameter order (CUDA tensors for pointers, numbers)."""
        kernel = source.kernel(name)
        if len(args) != len(kernel.params):
            raise ValueError(f"{name}: expected {len(kernel.params)} arguments, got {len(args)}")
        device = next(a.device for a in args if isinstance(a, torch.Tensor))
        values = []
        for (ctype, pname), value in zip(kernel.params, args):
            if "*" in ctype:
                if not isinstance(value, torch.Tensor) or value.device != device or not value.is_contiguous():
                    raise ValueError(f"{name}: argument {pname} must be a contiguous tensor on {device}")
                values.append(np.uint64(value.data_ptr()))
            elif ctype == "int":
                values.append(np.int32(value))
            else:
                values.append(np.float64(value) if source.dtype == "float64" else np.float32(value))
        names = tuple(k.name for k in source.kernels)
        function = self._compiled(source.code, names, device.index, f"{name} ({source.dtype})")[names.index(name)]
        if shared_bytes > DEFAULT_SHARED_BYTES and function.max_dynamic_shared_size_bytes < shared_bytes:
            function.max_dynamic_shared_size_bytes = shared_bytes
        self._run(function, grid, block, values, device, shared_bytes)

    def dtype_key(self, t: torch.Tensor) -> str:
        if t.device.type != "cuda":
            raise BackendUnavailable(f"backend='cupy' runs on CUDA tensors; the input is on {t.device}. Use 'numba' or 'auto'.")
        if t.dtype not in SUPPORTED_DTYPES:
            raise TypeError(f"backend='cupy' supports float32, float16, bfloat16 and float64; the input is {t.dtype}")
        return SUPPORTED_DTYPES[t.dtype]

    def launch(self, kind, dynamics, dtype, record, param_grads, tensors, scalars, T, L) -> None:
        device = tensors[0].device
        forward, backward = self._functions(dynamics, dtype, record, param_grads, device.index)
        self._launch(forward if kind == "forward" else backward, tensors, scalars, dtype, T, L, device)
