r"""CUDA C++ source generated from a :class:`Dynamics`: a fused forward and a fused backward kernel.

One thread owns one lane (one neuron of one batch element) and walks all ``T`` steps with the state in registers.
The input is viewed as ``[T, L]``: at step ``t`` thread ``l`` loads ``x[t*L + l]``, so a warp reads 32 consecutive
values (coalesced). The forward stores the spikes and the dynamics' ``saved`` variables; the backward walks time
in reverse and rebuilds each step's input state with the ``restore`` program, exactly as the numba backend does
(:mod:`snn.kernels.numba_backend`), with the argument order of :mod:`snn.kernels.abi` (there are no chunks).

Types. ``scalar_t`` is the storage type of every tensor (the input's dtype); ``acc_t`` is the arithmetic type:
``float`` for float32, float16 and bfloat16, ``double`` for float64. Values are converted on load and store with
``SNN_LOAD`` / ``SNN_STORE``; the state and the parameter-gradient accumulators stay in ``acc_t`` registers for
the whole sequence, so half-precision runs round only what they store (spikes, saved variables, recordings,
gradients). Half types are raw 16-bit patterns (``unsigned short``) converted by small inline functions (PTX
``cvt`` on the device for float16, bit arithmetic for bfloat16), so no CUDA header is needed: the source
compiles under NVRTC without an include path, and the same conversions run on the host.

Host shim. Everything CUDA-specific is behind the prelude's ``#ifdef SNN_HOST_SHIM``: the host shim
(:mod:`snn.kernels.host_shim`) defines ``SNN_HOST_SHIM`` and the CUDA keywords and built-ins, and compiles this
very source with g++ to test its numerics on the CPU.

Floating-point contraction must be off (``--fmad=false`` for NVRTC/nvcc, ``-ffp-contract=off`` for g++) and
division IEEE (NVRTC's default ``-prec-div=true``; never ``--use_fast_math``): each operation is then rounded as in
the torch reference, so float32 spikes are identical to it (and, for LIF, to SpikingJelly's).

Spikes in the backward. With a ``fire`` program, float32/float64 backward kernels recompute each step's spike from
its saved variables (bit-identical: the same operations on the same stored values) instead of reading the spike
sequence back: one memory stream fewer. Half-precision kernels read the spikes: their saved variables are rounded
when stored, and a membrane rounded onto the threshold would fire where the float32 forward did not.
"""
from __future__ import annotations

from dataclasses import dataclass
from functools import lru_cache
from typing import Sequence

from snn.kernels import abi, codecache, ir
from snn.kernels.dynamics import Dynamics

DTYPES = ("float32", "float16", "bfloat16", "float64")
GENERATOR_VERSION = "1"

_TYPES = {  # dtype -> (scalar_t, acc_t)
    "float32": ("float", "float"),
    "float64": ("double", "double"),
    "float16": ("unsigned short", "float"),
    "bfloat16": ("unsigned short", "float"),
}

_PRELUDE_COMMON = r"""
#ifndef SNN_PRELUDE_DEFINED
#define SNN_PRELUDE_DEFINED
#ifndef SNN_HOST_SHIM
#define SNN_DEVICE __device__ __forceinline__
#endif
"""

_PRELUDE_FLOAT = r"""
typedef float scalar_t;
typedef float acc_t;
#define SNN_LOAD(v) (v)
#define SNN_STORE(v) (v)
"""

_PRELUDE_DOUBLE = r"""
typedef double scalar_t;
typedef double acc_t;
#define SNN_LOAD(v) (v)
#define SNN_STORE(v) (v)
"""

_PRELUDE_HALF = r"""
typedef unsigned short scalar_t;  /* IEEE binary16 bit pattern */
typedef float acc_t;
#ifndef SNN_HOST_SHIM
SNN_DEVICE float snn_half_to_float(unsigned short h) {
    float f;
    asm("cvt.f32.f16 %0, %1;" : "=f"(f) : "h"(h));
    return f;
}
SNN_DEVICE unsigned short snn_float_to_half(float f) {
    unsigned short h;
    asm("cvt.rn.f16.f32 %0, %1;" : "=h"(h) : "f"(f));
    return h;
}
#endif
#define SNN_LOAD(v) snn_half_to_float(v)
#define SNN_STORE(v) snn_float_to_half(v)
"""

_PRELUDE_BFLOAT = r"""
typedef unsigned short scalar_t;  /* bfloat16 bit pattern: the high half of a float32 */
typedef float acc_t;
union snn_bits { float f; unsigned int u; };
SNN_DEVICE float snn_bf16_to_float(unsigned short b) {
    snn_bits v;
    v.u = ((unsigned int)b) << 16;
    return v.f;
}
SNN_DEVICE unsigned short snn_float_to_bf16(float f) {  /* round to nearest even; NaN stays NaN */
    snn_bits v;
    v.f = f;
    unsigned int bits = v.u;
    if ((bits & 0x7fffffffu) > 0x7f800000u) return (unsigned short)((bits >> 16) | 0x40u);
    bits += 0x7fffu + ((bits >> 16) & 1u);
    return (unsigned short)(bits >> 16);
}
#define SNN_LOAD(v) snn_bf16_to_float(v)
#define SNN_STORE(v) snn_float_to_bf16(v)
"""

_PRELUDE_FUNCTIONS = r"""
SNN_DEVICE acc_t snn_relu(acc_t u) { return u > (acc_t)0 ? u : (acc_t)0; }
SNN_DEVICE acc_t snn_heaviside(acc_t u) { return u >= (acc_t)0 ? (acc_t)1 : (acc_t)0; }
#define SNN_EXP(u) {exp}(u)
#define SNN_ABS(u) {abs}(u)
#define SNN_RELU(u) snn_relu(u)
#define SNN_HEAVISIDE(u) snn_heaviside(u)
#endif  /* SNN_PRELUDE_DEFINED */
"""


def prelude(dtype: str) -> str:
    """Type definitions and the ``SNN_*`` macros for ``dtype``; guarded so that several kernels can share a file."""
    body = {"float32": _PRELUDE_FLOAT, "float64": _PRELUDE_DOUBLE, "float16": _PRELUDE_HALF, "bfloat16": _PRELUDE_BFLOAT}
    functions = _PRELUDE_FUNCTIONS.replace("{exp}", "exp" if dtype == "float64" else "expf")
    functions = functions.replace("{abs}", "fabs" if dtype == "float64" else "fabsf")
    return _PRELUDE_COMMON + body[dtype] + functions


@dataclass(frozen=True)
class Kernel:
    """A kernel's name and parameters ``(C type, name)``, in order (the host shim's launchers use it).

    ``cooperative``: the block's threads work together through dynamic shared memory and ``__syncthreads()`` (the
    host shim then runs them concurrently); the per-lane kernels generated here never do.
    """

    name: str
    params: tuple[tuple[str, str], ...]
    cooperative: bool = False


@dataclass(frozen=True)
class Source:
    """A complete CUDA translation unit (prelude included) for one storage ``dtype`` and the kernels it defines;
    what :meth:`snn.kernels.cupy_backend.CupyRunner.launch_source` and the host shim's runner compile and launch."""

    code: str
    dtype: str
    kernels: tuple[Kernel, ...]

    def kernel(self, name: str) -> Kernel:
        for k in self.kernels:
            if k.name == name:
                return k
        raise KeyError(f"no kernel {name!r} in this source; it defines {[k.name for k in self.kernels]}")


@dataclass(frozen=True)
class KernelPair:
    forward: Kernel
    backward: Kernel


def _check(dtype: str) -> None:
    if dtype not in DTYPES:
        raise ValueError(f"dtype: expected one of {DTYPES}, got {dtype!r}")


def _signature(name: str, params: Sequence[tuple[str, str]]) -> str:
    joined = ",\n    ".join(f"{ctype} {pname}" for ctype, pname in params)
    return f'extern "C" __global__ void {name}(\n    {joined})'


def _live(program: list[ir.Statement], outputs: set[str]) -> list[ir.Statement]:
    """``program`` without the assignments that neither a later statement nor ``outputs`` reads (dead temporaries)."""
    needed = set(outputs)
    kept: list[ir.Statement] = []
    for st in reversed(program):
        if st.target in needed:
            kept.append(st)
            needed |= ir.names_read([st])
    return kept[::-1]


_I1, _I2, _I3 = " " * 4, " " * 8, " " * 12
_OUT, _IN = "scalar_t* __restrict__", "const scalar_t* __restrict__"
_LANE = [
    f"{_I1}const int snn_l = (int)(blockIdx.x * blockDim.x + threadIdx.x);",
    f"{_I1}if (snn_l >= L) return;",
]


def _scalar_params(d: Dynamics) -> list[tuple[str, str]]:
    return [("acc_t", n) for n in d.all_scalars] + [("int", "T"), ("int", "L")]


def _named(prefix: str, dtype: str, params: list[tuple[str, str]], body: list[str]) -> tuple[Kernel, str]:
    """Name a kernel after a digest of its own text, so identical kernels (e.g. the forward of two surrogates)
    get the same name and different ones never collide."""
    text = "\n".join(body)
    name = f"{prefix}_{codecache.digest(repr((GENERATOR_VERSION, dtype, params)) + text)}"
    return Kernel(name, tuple(params)), _signature(name, params) + " {\n" + text + "\n}"


def _array_params(kind: str, d: Dynamics, record: bool) -> list[tuple[str, str]]:
    return [(_OUT if a.output else _IN, a.name) for a in abi.arrays(kind, d, record)] + _scalar_params(d)


def _forward(d: Dynamics, dtype: str, record: bool) -> tuple[Kernel, str]:
    params = _array_params("forward", d, record)
    reads = ir.names_read(d.forward_program)
    known = set(d.states) | set(d.lane_params) | set(d.all_scalars) | {"x"}
    body = [
        *_LANE,
        *(f"{_I1}const acc_t {n} = SNN_LOAD(a_p_{n}[snn_l]);" for n in d.lane_params if n in reads),
        *(f"{_I1}acc_t {n} = SNN_LOAD(a_st_{n}[snn_l]);" for n in d.states),
        f"{_I1}for (int snn_t = 0; snn_t < T; ++snn_t) {{",
        f"{_I2}const size_t snn_i = (size_t)snn_t * (size_t)L + (size_t)snn_l;",
        f"{_I2}const acc_t x = SNN_LOAD(a_x[snn_i]);",
        ir.CPrinter().program(d.forward_program, indent=_I2, declared=known),
        f"{_I2}a_s[snn_i] = SNN_STORE(s);",
        *(f"{_I2}a_sv_{n}[snn_i] = SNN_STORE({n});" for n in d.saved),
        *((f"{_I2}a_rec_{n}[snn_i] = SNN_STORE({n});" for n in d.states) if record else ()),
        f"{_I1}}}",
        *(f"{_I1}a_st_{n}[snn_l] = SNN_STORE({n});" for n in d.states),
    ]
    return _named("snn_fwd", dtype, params, body)


def _backward(d: Dynamics, dtype: str, record: bool, param_grads: bool) -> tuple[Kernel, str]:
    states, saved = d.states, d.saved
    params = _array_params("backward", d, record)

    grad_states = [d.grad_name(n) for n in states]
    grad_params = [d.grad_name(n) for n in d.lane_params] if param_grads else []
    program = _live(d.backward_program, {"gx", *grad_states, *grad_params})
    reads = ir.names_read(program)
    needed_states = [n for n in states if n in reads]  # pre-step states the adjoint reads
    to_prev = {**{n: f"p_{n}" for n in saved}, "s": "p_s"}
    restore = ir.rename(_live(d.restore_program, set(needed_states)), to_prev)
    restore_reads = ir.names_read(restore)
    # With a `fire` program, float32/float64 kernels recompute each spike from the saved variables (bit-identical:
    # the same operations on the same stored values) instead of reading the spike sequence: one memory stream
    # fewer. Half-precision kernels read the spikes: their saved variables are rounded on store, and a membrane
    # rounded onto the threshold would fire where the float32 forward did not.
    use_fire = d.fire_program is not None and dtype in ("float32", "float64")
    fire_now = d.fire_program if use_fire and "s" in reads else []
    fire_prev = ir.rename(d.fire_program, to_prev) if use_fire and "p_s" in restore_reads else []
    prev_reads = restore_reads | ir.names_read(fire_prev)
    now_reads = reads | ir.names_read(fire_now)
    scalars = set(d.all_scalars)
    restore_known = set(needed_states) | set(d.lane_params) | scalars | prev_reads
    fire_targets = {st.target for st in fire_now}
    known = (set(states) | set(d.lane_params) | scalars | set(saved) | {"gs"} | set(grad_states) | set(grad_params)
             | fire_targets | ({"s"} if not use_fire else set()))
    printer = ir.CPrinter()
    rebuild = []
    if needed_states:
        rebuild = [
            f"{_I2}acc_t {', '.join(needed_states)};",
            f"{_I2}if (snn_t > 0) {{",
            f"{_I3}const size_t snn_p = snn_i - (size_t)L;",
            *(f"{_I3}const acc_t p_{n} = SNN_LOAD(a_sv_{n}[snn_p]);" for n in saved if f"p_{n}" in prev_reads),
            *([f"{_I3}const acc_t p_s = SNN_LOAD(a_s[snn_p]);"] if "p_s" in restore_reads and not fire_prev else []),
            *([printer.program(fire_prev, indent=_I3, declared=restore_known - {"p_s"})] if fire_prev else []),
            printer.program(restore, indent=_I3, declared=restore_known | {st.target for st in fire_prev}),
            f"{_I2}}} else {{",
            *(f"{_I3}{n} = SNN_LOAD(a_init_{n}[snn_l]);" for n in needed_states),
            f"{_I2}}}",
        ]
    body = [
        *_LANE,
        *(f"{_I1}const acc_t {n} = SNN_LOAD(a_p_{n}[snn_l]);" for n in d.lane_params if n in now_reads | prev_reads),
        *(f"{_I1}acc_t {g} = SNN_LOAD(a_gfinal_{n}[snn_l]);" for n, g in zip(states, grad_states)),
        *(f"{_I1}acc_t {g} = (acc_t)0;" for g in grad_params),
        f"{_I1}for (int snn_t = T - 1; snn_t >= 0; --snn_t) {{",
        f"{_I2}const size_t snn_i = (size_t)snn_t * (size_t)L + (size_t)snn_l;",
        *rebuild,
        *(f"{_I2}const acc_t {n} = SNN_LOAD(a_sv_{n}[snn_i]);" for n in saved if n in now_reads),
        *([printer.program(fire_now, indent=_I2, declared=known - fire_targets)] if fire_now else []),
        *([f"{_I2}const acc_t s = SNN_LOAD(a_s[snn_i]);"] if "s" in reads and not fire_now else []),
        *([f"{_I2}const acc_t gs = SNN_LOAD(a_gs[snn_i]);"] if "gs" in reads else []),
        *((f"{_I2}{g} += SNN_LOAD(a_grec_{n}[snn_i]);" for n, g in zip(states, grad_states)) if record else ()),
        printer.program(program, indent=_I2, declared=known),
        f"{_I2}a_gx[snn_i] = SNN_STORE(gx);",
        f"{_I1}}}",
        *(f"{_I1}a_{g}[snn_l] = SNN_STORE({g});" for g in grad_params + grad_states),
    ]
    return _named("snn_bwd", dtype, params, body)


@lru_cache(maxsize=None)
def kernel_sources(dynamics: Dynamics, dtype: str, record: bool, param_grads: bool = True) -> tuple[tuple[Kernel, str], ...]:
    """``((forward kernel, its source), (backward kernel, its source))`` without the prelude."""
    _check(dtype)
    return (_forward(dynamics, dtype, bool(record)), _backward(dynamics, dtype, bool(record), bool(param_grads)))


def kernels(dynamics: Dynamics, dtype: str, record: bool, param_grads: bool = True) -> KernelPair:
    """Names and signatures of the two kernels :func:`generate_source` emits for these arguments."""
    (fwd, _), (bwd, _) = kernel_sources(dynamics, dtype, record, param_grads)
    return KernelPair(fwd, bwd)


def generate_source(dynamics: Dynamics, dtype: str, record: bool, param_grads: bool = True) -> str:
    """CUDA C++ source (prelude included) of the forward and backward kernels of ``dynamics``.

    Forward ``snn_fwd_<digest>(x, s, saved..., [rec...], lane_params..., states..., scalars..., T, L)``: reads
    ``x`` ``[T, L]`` and the lane parameters ``[L]``, reads the initial state from ``states`` ``[L]`` and
    overwrites it with the final state; writes spikes, saved variables and (``record``) the state after each step,
    all ``[T, L]``. Backward ``snn_bwd_<digest>(gs, gfinal..., [grec...], s, saved..., lane_params..., init...,
    gx, g_lane_params..., g_init..., scalars..., T, L)``. Launch with one thread per lane (any block size).
    With ``param_grads=False`` the backward skips the lane-parameter gradients (fixed time constants): its
    ``g_lane_params`` arguments are left untouched and the work that only feeds them is removed.
    Kernel names carry a digest of the kernel's own text (see :func:`kernels`).
    """
    (_, fwd), (_, bwd) = kernel_sources(dynamics, dtype, record, param_grads)
    header = (f"/* Generated by snn.kernels.cuda_source for dynamics {dynamics.key!r} "
              f"({dtype}, record={bool(record)}, param_grads={bool(param_grads)}). */")
    return "\n".join([header, prelude(dtype), fwd, "", bwd, ""])
