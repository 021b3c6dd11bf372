r"""Run the generated CUDA kernels on the CPU: the very same source, compiled for the host with g++.

The CUDA kernels of :mod:`snn.kernels.cuda_source` use one thread per lane and no shared memory or barriers,
so a grid launch is equivalent to calling the kernel body once per ``(blockIdx, threadIdx)`` in any order. The
shim prepends a small prelude that turns the CUDA dialect into C++ (``__global__`` / ``__device__`` vanish,
``threadIdx``, ``blockIdx``, ``blockDim`` become thread-local structs, float16 conversions are done in software
with round-to-nearest-even) and appends, per kernel, an ``extern "C"`` launcher that loops over the launch grid.
The library is built with ``g++ -O2 -shared -fPIC -std=c++17 -ffp-contract=off`` (no fused multiply-add, like
``--fmad=false`` on the device), cached by source digest under ``$SNN_CACHE_DIR/cuda_host`` and loaded with
:mod:`ctypes`.

:class:`HostCudaRunner` has the runner interface of :class:`snn.kernels.numba_backend.NumbaRunner`, so
``snn.kernels.fused.run(dynamics, HostCudaRunner(), ...)`` checks the CUDA kernels' numerics (forward and
backward) against the torch reference on machines without a GPU. It accepts float32, float64, float16 and
bfloat16 CPU tensors (half types use the same float arithmetic as on the device). It is a test instrument, not a
fast backend: the launch loop is sequential.
"""
from __future__ import annotations

import ctypes
import os
import shutil
import subprocess
import tempfile
from functools import lru_cache
from pathlib import Path
from typing import Iterable, Sequence

import torch

from snn.atomic import write_atomic
from snn.kernels import codecache, cuda_source
from snn.kernels.dynamics import Dynamics
from snn.kernels.runner import DTYPE_NAMES, FusedRunner

BLOCK = 256
COMPILE_FLAGS = ("-O2", "-shared", "-fPIC", "-std=c++17", "-ffp-contract=off", "-fno-fast-math")


SHIM_PRELUDE = r"""
/* snn.kernels.host_shim: the CUDA dialect used by snn.kernels.cuda_source, for the host. */
#define SNN_HOST_SHIM 1
#include <math.h>
#include <stddef.h>
#define __global__
#define __device__
#define __forceinline__ inline
#define SNN_DEVICE static inline
struct snn_dim3 { unsigned int x, y, z; };
static thread_local snn_dim3 threadIdx, blockIdx, blockDim, gridDim;

union snn_shim_bits { float f; unsigned int u; };

static inline float snn_half_to_float(unsigned short h) {
    snn_shim_bits v;
    unsigned int sign = ((unsigned int)h & 0x8000u) << 16;
    unsigned int e = ((unsigned int)h >> 10) & 0x1fu;
    unsigned int m = (unsigned int)h & 0x3ffu;
    if (e == 0x1fu) {
        v.u = sign | 0x7f800000u | (m << 13);
    } else if (e == 0) {
        if (m == 0) {
            v.u = sign;
        } else {
            e = 113;
            while (!(m & 0x400u)) { m <<= 1; --e; }
            v.u = sign | (e << 23) | ((m & 0x3ffu) << 13);
        }
    } else {
        v.u = sign | ((e + 112u) << 23) | (m << 13);
    }
    return v.f;
}

static inline unsigned short snn_float_to_half(float f) {  /* round to nearest even, as cvt.rn.f16.f32 */
    snn_shim_bits v;
    v.f = f;
    unsigned int sign = (v.u >> 16) & 0x8000u;
    unsigned int ax = v.u & 0x7fffffffu;
    if (ax > 0x7f800000u) return (unsigned short)(sign | 0x7e00u | ((ax >> 13) & 0x3ffu));
    if (ax >= 0x477ff000u) return (unsigned short)(sign | 0x7c00u);
    if (ax >= 0x38800000u) return (unsigned short)(sign | ((ax - 0x38000000u + 0xfffu + ((ax >> 13) & 1u)) >> 13));
    int shift = 126 - (int)(ax >> 23);
    if (shift > 24) return (unsigned short)sign;
    unsigned int mant = (ax & 0x7fffffu) | 0x800000u;
    unsigned int q = mant >> shift;
    unsigned int rem = mant & ((1u << shift) - 1u);
    unsigned int halfway = 1u << (shift - 1);
    if (rem > halfway || (rem == halfway && (q & 1u))) ++q;
    return (unsigned short)(sign | q);
}
"""

_CONVERTERS = r"""
extern "C" void snn_shim_load(const scalar_t* in, float* out, long n) { for (long i = 0; i < n; ++i) out[i] = (float)SNN_LOAD(in[i]); }
extern "C" void snn_shim_store(const float* in, scalar_t* out, long n) { for (long i = 0; i < n; ++i) out[i] = SNN_STORE((acc_t)in[i]); }
"""


class ShimCompileError(RuntimeError):
    """g++ rejected the generated source; the message holds the compiler's output."""


def compiler() -> str | None:
    """The host C++ compiler (``$CXX`` or ``g++`` on ``PATH``), or ``None``."""
    return shutil.which(os.environ.get("CXX", "g++"))


def _launcher(kernel: cuda_source.Kernel) -> str:
    params = ", ".join(f"{ctype} {name}" for ctype, name in kernel.params)
    args = ", ".join(name for _, name in kernel.params)
    return "\n".join([
        f'extern "C" void launch_{kernel.name}(unsigned int snn_grid, unsigned int snn_block, {params}) {{',
        "    blockDim.x = snn_block; blockDim.y = 1; blockDim.z = 1;",
        "    gridDim.x = snn_grid; gridDim.y = 1; gridDim.z = 1;",
        "    blockIdx.y = blockIdx.z = threadIdx.y = threadIdx.z = 0;",
        "    for (unsigned int b = 0; b < snn_grid; ++b) {",
        "        blockIdx.x = b;",
        "        for (unsigned int t = 0; t < snn_block; ++t) {",
        "            threadIdx.x = t;",
        f"            {kernel.name}({args});",
        "        }",
        "    }",
        "}",
    ])


def host_source(cuda_code: str, kernels: Sequence[cuda_source.Kernel], converters: bool = False) -> str:
    """The translation unit g++ compiles: shim prelude + the CUDA source unchanged + one launcher per kernel."""
    parts = [SHIM_PRELUDE, cuda_code]
    parts += [_launcher(k) for k in kernels]
    if converters:
        parts.append(_CONVERTERS)
    return "\n".join(parts) + "\n"


def compile_library(source: str) -> ctypes.CDLL:
    """Compile ``source`` into a shared library (cached by digest, written atomically) and load it."""
    return _compile(source)


@lru_cache(maxsize=None)
def _compile(source: str) -> ctypes.CDLL:
    cxx = compiler()
    if cxx is None:
        raise ShimCompileError("no host C++ compiler: install g++ (or set $CXX) to run the CUDA kernels on the CPU")
    directory = codecache.cache_dir("cuda_host")
    path = directory / f"snn_host_{codecache.digest(cxx + ' '.join(COMPILE_FLAGS) + source)}.so"
    if not path.exists():
        with tempfile.TemporaryDirectory(dir=directory) as tmp:
            src = Path(tmp) / "kernels.cpp"
            src.write_text(source)
            built = Path(tmp) / "kernels.so"
            result = subprocess.run([cxx, *COMPILE_FLAGS, str(src), "-o", str(built)], capture_output=True, text=True)
            if result.returncode != 0:
                raise ShimCompileError(f"g++ failed on the generated CUDA source:\n{result.stderr}")
            write_atomic(path, built.read_bytes())
    return ctypes.CDLL(str(path))


def _ctype(ctype: str, dtype: str):
    if "*" in ctype:
        return ctypes.c_void_p
    if ctype == "int":
        return ctypes.c_int
    if ctype == "acc_t":
        return ctypes.c_double if dtype == "float64" else ctypes.c_float
    raise TypeError(f"unexpected kernel parameter type {ctype!r}")


class _Loaded:
    def __init__(self, lib: ctypes.CDLL, pair: cuda_source.KernelPair, dtype: str):
        self.lib = lib
        self.forward = self._bind(pair.forward, dtype)
        self.backward = self._bind(pair.backward, dtype)

    def _bind(self, kernel: cuda_source.Kernel, dtype: str):
        fn = getattr(self.lib, f"launch_{kernel.name}")
        fn.argtypes = [ctypes.c_uint, ctypes.c_uint] + [_ctype(c, dtype) for c, _ in kernel.params]
        fn.restype = None
        return fn


_LOADED: dict[tuple[Dynamics, str, bool, bool], _Loaded] = {}


def _load(dynamics: Dynamics, dtype: str, record: bool, param_grads: bool = True) -> _Loaded:
    key = (dynamics, dtype, bool(record), bool(param_grads))
    if key not in _LOADED:
        build([key])
    return _LOADED[key]


def build(variants: Iterable[tuple[Dynamics, str, bool, bool]]) -> None:
    """Compile the kernels of many ``(dynamics, dtype, record, param_grads)`` variants into one library per dtype
    (one g++ run instead of one per variant) and make them available to :class:`HostCudaRunner`.

    Each dtype's translation unit is the shim prelude, then every distinct kernel exactly as
    :func:`snn.kernels.cuda_source.generate_source` emits it (after that dtype's prelude), then the launchers.
    """
    by_dtype: dict[str, list[tuple[Dynamics, str, bool, bool]]] = {}
    for dynamics, dtype, record, param_grads in variants:
        by_dtype.setdefault(dtype, []).append((dynamics, dtype, bool(record), bool(param_grads)))
    for dtype, keys in by_dtype.items():
        sources: dict[str, str] = {}
        kernels: dict[str, cuda_source.Kernel] = {}
        for key in keys:
            for kernel, text in cuda_source.kernel_sources(*key):
                sources[kernel.name], kernels[kernel.name] = text, kernel
        code = cuda_source.prelude(dtype) + "\n".join(sources.values())
        lib = compile_library(host_source(code, list(kernels.values())))
        for key in keys:
            _LOADED[key] = _Loaded(lib, cuda_source.kernels(*key), dtype)


def _dtype_name(t: torch.Tensor) -> str:
    if t.device.type != "cpu":
        raise ValueError(f"HostCudaRunner runs on CPU tensors, got a tensor on {t.device}")
    if t.dtype not in DTYPE_NAMES:
        raise TypeError(f"HostCudaRunner supports {sorted(map(str, DTYPE_NAMES))}, got {t.dtype}")
    return DTYPE_NAMES[t.dtype]


def _pointers(tensors: Sequence[torch.Tensor]) -> list[int]:
    for t in tensors:
        if not t.is_contiguous() or t.dtype != tensors[0].dtype or t.device.type != "cpu":
            raise ValueError(f"HostCudaRunner: every tensor must be a contiguous CPU tensor of dtype {tensors[0].dtype}")
    return [t.data_ptr() for t in tensors]


class HostCudaRunner(FusedRunner):
    """Runs the generated CUDA kernels on CPU tensors ``[T, L]`` / ``[L]`` through the host shim.

    ``block`` is the emulated block size (the grid is ``ceil(L / block)``), so lanes past ``L`` in the last
    block exercise the kernels' bounds check.
    """

    name = "cuda-host"

    def __init__(self, block: int = BLOCK):
        if not isinstance(block, int) or block < 1:
            raise ValueError(f"block: expected a positive int, got {block!r}")
        self.block = block

    def dtype_key(self, t: torch.Tensor) -> str:
        return _dtype_name(t)

    def launch(self, kind, dynamics, dtype, record, param_grads, tensors, scalars, T, L) -> None:
        loaded = _load(dynamics, dtype, record, param_grads)
        grid = (L + self.block - 1) // self.block
        getattr(loaded, kind)(grid, self.block, *_pointers(tensors), *map(float, scalars), T, L)


@lru_cache(maxsize=None)
def converters(dtype: str) -> ctypes.CDLL:
    """A library exporting ``snn_shim_load`` / ``snn_shim_store`` (storage ↔ float arrays) for ``dtype``: the
    conversions the kernels use on the host, exposed so tests can compare them with torch's casts."""
    source = host_source(cuda_source.prelude(dtype), [], converters=True)
    lib = compile_library(source)
    for name in ("snn_shim_load", "snn_shim_store"):
        getattr(lib, name).argtypes = [ctypes.c_void_p, ctypes.c_void_p, ctypes.c_long]
        getattr(lib, name).restype = None
    return lib
