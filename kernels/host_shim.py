r"""Run the CUDA kernels on the CPU: the very same source, compiled for the host with g++.

The shim prepends a small prelude that turns the CUDA dialect into C++ (``__global__`` / ``__device__`` vanish,
``threadIdx``, ``blockIdx``, ``blockDim`` become thread-local structs, float16 conversions are done in software
with round-to-nearest-even) and appends, per kernel, an ``extern "C"`` launcher. Two kinds of launcher:

* per-lane kernels (:mod:`snn.kernels.cuda_source`: one thread per lane, no shared memory, no barrier): a grid
  launch is equivalent to calling the kernel body once per ``(blockIdx, threadIdx)`` in any order, so the launcher
  loops over the grid;
* cooperative kernels (``Kernel.cooperative``: ``__syncthreads()`` and dynamic shared memory declared with
  ``SNN_DYNAMIC_SHARED(name)``, e.g. :mod:`snn.kernels.elm_cuda_source`): the blocks run one after another, and
  each block's threads run as real ``std::thread`` s sharing one buffer of shared memory, with ``__syncthreads()``
  a ``std::barrier`` (C++20). The buffer is filled with ``0xff`` bytes (NaN) before each block, as uninitialised
  shared memory would hold garbage. The *schedule* decides how the threads interleave:

  ``"concurrent"``     the operating system's (a missing barrier shows up as a wrong answer *sometimes*);
  ``"lowest-first"``   one thread at a time between barriers, in increasing ``threadIdx`` (deterministic);
  ``"highest-first"``  the same in decreasing ``threadIdx``.

  Under a serial schedule a thread runs until its next ``__syncthreads()`` (or its end) before the next one starts,
  so a thread that reads shared memory another thread writes in the same barrier interval reads the old value
  under one of the two orders: a missing barrier is a wrong answer every time.

The library is built with ``g++ -O2 -shared -fPIC -std=c++20 -pthread -ffp-contract=off`` (no fused multiply-add,
like ``--fmad=false`` on the device), cached by source digest under ``$SNN_CACHE_DIR/cuda_host`` and loaded with
:mod:`ctypes`.

:class:`HostCudaRunner` has the runner interface of :class:`snn.kernels.numba_backend.NumbaRunner`, so
``snn.kernels.fused.run(dynamics, HostCudaRunner(), ...)`` checks the CUDA kernels' numerics (forward and
backward) against the torch reference on machines without a GPU, and :meth:`HostCudaRunner.launch_source` runs
any source's kernels (the ELM kernels use it, as they use :meth:`snn.kernels.cupy_backend.CupyRunner.launch_source`
on a GPU). It accepts float32, float64, float16 and bfloat16 CPU tensors (half types use the same float
arithmetic as on the device). It is a test instrument, not a fast backend.
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
COMPILE_FLAGS = ("-O2", "-shared", "-fPIC", "-std=c++20", "-pthread", "-ffp-contract=off", "-fno-fast-math")
SCHEDULES = {"concurrent": 0, "lowest-first": 1, "highest-first": 2}


SHIM_PRELUDE = r"""
/* snn.kernels.host_shim: the CUDA dialect used by snn.kernels.cuda_source, for the host. */
#define SNN_HOST_SHIM 1
#include <math.h>
#include <stddef.h>
#include <string.h>
#include <barrier>
#include <condition_variable>
#include <mutex>
#include <thread>
#include <vector>
#define __global__
#define __device__
#define __forceinline__ inline
#define SNN_DEVICE static inline
struct snn_dim3 { unsigned int x, y, z; };
static thread_local snn_dim3 threadIdx, blockIdx, blockDim, gridDim;

/* Cooperative kernels: one block's threads, their shared memory and their barrier. */
struct snn_shim_block {
    int schedule;  /* 0: concurrent (std::barrier); 1: one thread at a time, lowest threadIdx first; 2: highest first */
    unsigned int n;
    std::barrier<> barrier;
    std::mutex mu;
    std::condition_variable cv;
    unsigned int turn = 0;  /* serial schedules: position (in the schedule's order) of the thread that runs */
    std::vector<char> done;
    snn_shim_block(int s, unsigned int threads) : schedule(s), n(threads), barrier((std::ptrdiff_t)threads), done(threads, 0) {}
    unsigned int position(unsigned int tid) const { return schedule == 2 ? n - 1 - tid : tid; }
    unsigned int thread_at(unsigned int pos) const { return schedule == 2 ? n - 1 - pos : pos; }
    void wait_turn(unsigned int tid, std::unique_lock<std::mutex>& lock) {
        cv.wait(lock, [&] { return turn == position(tid); });
    }
    void pass_turn() {  /* to the next thread in order that has not finished, wrapping around (a new interval) */
        for (unsigned int step = 1; step <= n; ++step) {
            unsigned int pos = (turn + step) % n;
            if (!done[thread_at(pos)]) { turn = pos; break; }
        }
        cv.notify_all();
    }
};
static thread_local snn_shim_block* snn_shim_current;
static thread_local unsigned char* snn_shim_smem;
#define SNN_DYNAMIC_SHARED(name) unsigned char* name = snn_shim_smem

static inline void __syncthreads() {
    snn_shim_block* blk = snn_shim_current;
    if (blk->schedule == 0) { blk->barrier.arrive_and_wait(); return; }
    std::unique_lock<std::mutex> lock(blk->mu);
    blk->pass_turn();
    blk->wait_turn(threadIdx.x, lock);
}

static inline void snn_shim_thread_start(snn_shim_block* blk) {
    snn_shim_current = blk;
    if (blk->schedule == 0) return;
    std::unique_lock<std::mutex> lock(blk->mu);
    blk->wait_turn(threadIdx.x, lock);
}

static inline void snn_shim_thread_end(snn_shim_block* blk) {  /* a finished thread no longer takes part in barriers */
    if (blk->schedule == 0) { blk->barrier.arrive_and_drop(); return; }
    std::unique_lock<std::mutex> lock(blk->mu);
    blk->done[threadIdx.x] = 1;
    blk->pass_turn();
}

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
    if kernel.cooperative:
        return _cooperative_launcher(kernel, params, args)
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


def _cooperative_launcher(kernel: cuda_source.Kernel, params: str, args: str) -> str:
    """Blocks one after another; each block's threads as ``std::thread`` s with their shared memory and barrier."""
    return "\n".join([
        f'extern "C" void launch_{kernel.name}(unsigned int snn_grid, unsigned int snn_block, '
        f"unsigned int snn_shared_bytes, int snn_schedule, {params}) {{",
        "    std::vector<unsigned char> snn_smem_buffer((size_t)snn_shared_bytes + 16);",
        "    for (unsigned int b = 0; b < snn_grid; ++b) {",
        "        memset(snn_smem_buffer.data(), 0xff, snn_smem_buffer.size());",
        "        snn_shim_block blk(snn_schedule, snn_block);",
        "        std::vector<std::thread> workers;",
        "        for (unsigned int t = 0; t < snn_block; ++t) {",
        "            workers.emplace_back([&, t]() {",
        "                blockDim = {snn_block, 1, 1}; gridDim = {snn_grid, 1, 1};",
        "                blockIdx = {b, 0, 0}; threadIdx = {t, 0, 0};",
        "                snn_shim_smem = snn_smem_buffer.data();",
        "                snn_shim_thread_start(&blk);",
        f"                {kernel.name}({args});",
        "                snn_shim_thread_end(&blk);",
        "            });",
        "        }",
        "        for (std::thread& w : workers) w.join();",
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
    block exercise the kernels' bounds check; for cooperative kernels it caps the threads per block (each is an OS
    thread). ``schedule`` is how a cooperative block's threads interleave (module docstring). ``shared_memory``
    is the emulated per-block limit of dynamic shared memory in bytes (default: an H100's 227 KiB).
    """

    name = "cuda-host"

    def __init__(self, block: int = BLOCK, schedule: str = "concurrent", shared_memory: int = 227 * 1024):
        if not isinstance(block, int) or block < 1:
            raise ValueError(f"block: expected a positive int, got {block!r}")
        if schedule not in SCHEDULES:
            raise ValueError(f"schedule: expected one of {tuple(SCHEDULES)}, got {schedule!r}")
        if not isinstance(shared_memory, int) or shared_memory < 0:
            raise ValueError(f"shared_memory: expected a non-negative int (bytes), got {shared_memory!r}")
        self.block = block
        self.schedule = schedule
        self.shared_memory = shared_memory

    def dtype_key(self, t: torch.Tensor) -> str:
        return _dtype_name(t)

    def launch(self, kind, dynamics, dtype, record, param_grads, tensors, scalars, T, L) -> None:
        loaded = _load(dynamics, dtype, record, param_grads)
        grid = (L + self.block - 1) // self.block
        getattr(loaded, kind)(grid, self.block, *_pointers(tensors), *map(float, scalars), T, L)

    def threads(self, wanted: int) -> int:
        """Threads per block for a cooperative kernel with work for ``wanted`` threads (at most ``block``)."""
        return max(1, min(int(wanted), self.block))

    def shared_memory_limit(self, device: torch.device) -> int:
        """Dynamic shared memory one block may use, in bytes (the emulated limit)."""
        return self.shared_memory

    def launch_source(self, source: cuda_source.Source, name: str, grid: int, block: int, args: Sequence,
                      shared_bytes: int = 0) -> None:
        """Launch kernel ``name`` of ``source`` on ``grid`` blocks of ``block`` threads; ``args`` in the kernel's
        parameter order (CPU tensors for pointers, Python numbers otherwise)."""
        kernel = source.kernel(name)
        fn = _source_function(source, name)
        values = _arguments(kernel, source.dtype, args)
        if kernel.cooperative:
            fn(grid, block, shared_bytes, SCHEDULES[self.schedule], *values)
        else:
            fn(grid, block, *values)


def _arguments(kernel: cuda_source.Kernel, dtype: str, args: Sequence) -> list:
    if len(args) != len(kernel.params):
        raise ValueError(f"{kernel.name}: expected {len(kernel.params)} arguments, got {len(args)}")
    values = []
    for (ctype, pname), value in zip(kernel.params, args):
        if "*" in ctype:
            if not isinstance(value, torch.Tensor) or value.device.type != "cpu" or not value.is_contiguous():
                raise ValueError(f"{kernel.name}: argument {pname} must be a contiguous CPU tensor")
            values.append(value.data_ptr())
        else:
            values.append(int(value) if ctype == "int" else float(value))
    return values


@lru_cache(maxsize=None)
def _source_function(source: cuda_source.Source, name: str):
    # launchers in name order: sources listing the same kernels in another order share one library
    lib = compile_library(host_source(source.code, sorted(source.kernels, key=lambda k: k.name)))
    kernel = source.kernel(name)
    fn = getattr(lib, f"launch_{name}")
    head = [ctypes.c_uint, ctypes.c_uint] + ([ctypes.c_uint, ctypes.c_int] if kernel.cooperative else [])
    fn.argtypes = head + [_ctype(c, source.dtype) for c, _ in kernel.params]
    fn.restype = None
    return fn


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
