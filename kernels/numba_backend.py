"""Fused CPU backend: numba kernels generated from a :class:`Dynamics`, forward and backward over all ``T`` steps.

Layout: the input is viewed as ``[T, L]`` (``L`` = batch × neurons, contiguous). Lanes are split into chunks;
the chunks are shared among ``torch.get_num_threads()`` Python threads, each calling the serial ``nogil`` kernel
on its range (serial kernels compile about 4× faster than ``parallel=True`` ones, and run as fast). Inside a chunk the kernel walks time and, at each step, sweeps the chunk's
lanes in a contiguous inner loop that LLVM vectorises. State lives in ``[L]`` arrays updated in place, which stay
in cache for the chunk. The forward stores the spikes and the ``saved`` variables (one float per neuron-step for
LIF); the backward walks time in reverse and rebuilds each step's input state with the ``restore`` program.

No ``fastmath``: the arithmetic is the same IEEE sequence as the torch reference, so float32 spikes are
bit-identical to it for dynamics whose forward uses only ``+ - * /``, ``abs`` and ``relu`` (every LIF-family
neuron and AdaptiveLIF). A forward that calls ``exp`` uses :func:`snn.kernels.numba_math.exp32` in float32, which
may differ from torch's ``exp`` by one ulp: spikes then agree except where a membrane lies within that rounding of
the threshold. ``error_model="numpy"``: a float division never raises, so numba adds no zero check per
division — that check alone kept the ATan backward from vectorising (3.7× slower).
"""
from __future__ import annotations

import importlib.util
import sys
from concurrent.futures import ThreadPoolExecutor
from functools import lru_cache
from pathlib import Path
from types import ModuleType

import numpy as np
import torch

from snn.atomic import write_atomic
from snn.kernels import abi, codecache, ir, numba_math
from snn.kernels.dynamics import Dynamics
from snn.kernels.runner import DTYPE_NAMES, FusedRunner

SUPPORTED_DTYPES = (torch.float32, torch.float64)
_MATH_DIGEST = codecache.digest(Path(numba_math.__file__).read_text())
CHUNK = 2048


class _Constants:
    """Collects float literals as module-level typed constants (``_k0 = np.float32(1.0)``)."""

    def __init__(self, numpy_type: str):
        self.numpy_type = numpy_type
        self.names: dict[float, str] = {}

    def __call__(self, value: float) -> str:
        if value not in self.names:
            self.names[value] = f"_k{len(self.names)}"
        return self.names[value]

    def source(self) -> str:
        return "\n".join(f"{name} = np.{self.numpy_type}({value!r})" for value, name in self.names.items())


def generate_source(dynamics: Dynamics, dtype: torch.dtype, record: bool, param_grads: bool = True) -> str:
    """Python source of a module with ``forward`` and ``backward`` numba kernels for ``dynamics``.

    With ``param_grads=False`` the backward skips the lane-parameter gradients (fixed time constants) and its
    ``a_g_<param>`` arguments are left untouched.
    """
    numpy_type = DTYPE_NAMES[dtype]  # the numpy type has the same name
    consts = _Constants(numpy_type)
    zero = consts(0.0)
    printer = ir.PythonPrinter(
        {
            # float32: the vectorisable exp of snn.kernels.numba_math; float64: libm
            "exp": (lambda a: f"exp32({a})") if numpy_type == "float32" else (lambda a: f"math.exp({a})"),
            "abs": lambda a: f"abs({a})",
            "relu": lambda a: f"max({a}, {zero})",
            "spike": lambda a: f"np.{numpy_type}({a} >= {zero})",  # a bool->float conversion vectorises; a branch may not
            "detach": lambda a: a,
        },
        literal=consts,
    )
    d = dynamics
    scal = list(d.all_scalars)
    states, params, saved = d.states, d.lane_params, d.saved
    i8 = " " * 16

    # ---- forward
    chunking = ["T", "L", "CH", "c_lo", "c_hi"]
    fwd_args = [a.name for a in abi.forward_arrays(d, record)] + scal + chunking
    i6 = " " * 12
    # State and parameters of a chunk live in private buffers: they cannot alias the row views, which lets LLVM
    # vectorise the lane loop without runtime alias checks (measured: about 3x faster than working in place).
    buffers = [f"    c_st_{n} = np.empty(CH, np.{numpy_type})" for n in states]
    buffers += [f"    c_p_{n} = np.empty(CH, np.{numpy_type})" for n in params]
    chunk_in = [f"            c_st_{n}[i] = a_st_{n}[lo + i]" for n in states] + [f"            c_p_{n}[i] = a_p_{n}[lo + i]" for n in params]
    chunk_out = [f"            a_st_{n}[lo + i] = c_st_{n}[i]" for n in states]
    row_arrays = ["x", "s"] + [f"sv_{n}" for n in saved] + ([f"rec_{n}" for n in states] if record else [])
    row_views = [f"{i6}r_{a} = a_{a}[t, lo:hi]" for a in row_arrays]
    loads = [f"{i8}x = r_x[i]"] + [f"{i8}{n} = c_st_{n}[i]" for n in states] + [f"{i8}{n} = c_p_{n}[i]" for n in params]
    stores = [f"{i8}r_s[i] = s"] + [f"{i8}r_sv_{n}[i] = {n}" for n in saved]
    stores += [f"{i8}c_st_{n}[i] = {n}" for n in states]
    if record:
        stores += [f"{i8}r_rec_{n}[i] = {n}" for n in states]
    forward = "\n".join(
        [
            "@nb.njit(nogil=True, cache=True, error_model=\"numpy\")",
            f"def forward({', '.join(fwd_args)}):",
            *buffers,
            "    for c in range(c_lo, c_hi):",
            "        lo = c * CH",
            "        hi = min(lo + CH, L)",
            "        nl = hi - lo",
            "        for i in range(nl):",
            *chunk_in,
            "        for t in range(T):",
            *row_views,
            "            for i in range(nl):",
            *loads,
            printer.program(d.forward_program, indent=i8),
            *stores,
            "        for i in range(nl):",
            *(chunk_out or ["            pass"]),
        ]
    )

    # ---- backward
    grad_states = [d.grad_name(n) for n in states]
    grad_params = [d.grad_name(n) for n in params]
    backward_program = d.backward_program if param_grads else [st for st in d.backward_program if st.target not in grad_params]
    bwd_args = [a.name for a in abi.backward_arrays(d, record)] + scal + chunking
    restore = ir.rename(d.restore_program, {**{n: f"p_{n}" for n in saved}, "s": "p_s"})
    # With a `fire` program the backward recomputes spikes from the saved variables instead of reading them.
    fire = d.fire_program
    if fire is not None:
        fire_prev = ir.rename(fire, {**{n: f"p_{n}" for n in saved}, "s": "p_s"})

    def body(first_step: bool) -> list[str]:
        lines = [f"{i8}{n} = c_p_{n}[i]" for n in params]
        if first_step:
            lines += [f"{i8}{n} = c_init_{n}[i]" for n in states]
        else:
            lines += [f"{i8}p_{n} = q_sv_{n}[i]" for n in saved]
            lines.append(printer.program(fire_prev, indent=i8) if fire is not None else f"{i8}p_s = q_s[i]")
            lines.append(printer.program(restore, indent=i8))
        lines += [f"{i8}{n} = r_sv_{n}[i]" for n in saved]
        lines.append(printer.program(fire, indent=i8) if fire is not None else f"{i8}s = r_s[i]")
        lines.append(f"{i8}gs = r_gs[i]")
        for n, g in zip(states, grad_states):
            extra = f" + r_grec_{n}[i]" if record else ""
            lines.append(f"{i8}{g} = c_{g}[i]{extra}")
        used_params = grad_params if param_grads else []
        lines += [f"{i8}{g} = c_{g}[i]" for g in used_params]
        lines.append(printer.program(backward_program, indent=i8))
        lines += [f"{i8}r_gx[i] = gx"] + [f"{i8}c_{g}[i] = {g}" for g in grad_states + used_params]
        return lines

    def step_views(first_step: bool) -> list[str]:
        spikes = [] if fire is not None else ["s"]
        rows = ["gs", "gx"] + spikes + [f"sv_{n}" for n in saved] + ([f"grec_{n}" for n in states] if record else [])
        views = [f"{i6}r_{a} = a_{a}[t, lo:hi]" for a in rows]
        if not first_step:
            views += [f"{i6}q_{a} = a_{a}[t - 1, lo:hi]" for a in spikes + [f"sv_{n}" for n in saved]]
        return views

    used_grad_params = grad_params if param_grads else []
    bwd_buffers = [f"    c_p_{n} = np.empty(CH, np.{numpy_type})" for n in params]
    bwd_buffers += [f"    c_{g} = np.empty(CH, np.{numpy_type})" for g in grad_states + used_grad_params]
    chunk = [f"        c_init_{n} = a_init_{n}[lo:hi]" for n in states]
    init = [f"            c_p_{n}[i] = a_p_{n}[lo + i]" for n in params]
    init += [f"            c_{g}[i] = a_gfinal_{n}[lo + i]" for n, g in zip(states, grad_states)]
    init += [f"            c_{g}[i] = {zero}" for g in used_grad_params]
    finish = [f"            a_{g}[lo + i] = c_{g}[i]" for g in grad_states + used_grad_params]
    backward = "\n".join(
        [
            "@nb.njit(nogil=True, cache=True, error_model=\"numpy\")",
            f"def backward({', '.join(bwd_args)}):",
            *bwd_buffers,
            "    for c in range(c_lo, c_hi):",
            "        lo = c * CH",
            "        hi = min(lo + CH, L)",
            "        nl = hi - lo",
            *chunk,
            "        for i in range(nl):",
            *init,
            "        for t in range(T - 1, 0, -1):",
            *step_views(first_step=False),
            "            for i in range(nl):",
            *body(first_step=False),
            "        if T > 0:",
            "            t = 0",
            *step_views(first_step=True),
            "            for i in range(nl):",
            *body(first_step=True),
            "        for i in range(nl):",
            *finish,
        ]
    )
    header = f'"""Generated by snn.kernels.numba_backend for dynamics {d.key!r} ({numpy_type}, record={record}, param_grads={param_grads})."""'
    # the helpers' digest is part of the source, so a change to them gives a new module (and a fresh numba cache)
    helpers = f"from snn.kernels.numba_math import exp32  # numba_math {_MATH_DIGEST}"
    return "\n".join([header, "import math", "import numba as nb", "import numpy as np", helpers, "", consts.source(), "", forward, "", backward, ""])


@lru_cache(maxsize=None)
def _load(dynamics: Dynamics, dtype: torch.dtype, record: bool, param_grads: bool = True) -> ModuleType:
    source = generate_source(dynamics, dtype, record, param_grads)
    name = f"snn_numba_{codecache.digest(source)}"
    path = codecache.cache_dir("numba") / f"{name}.py"
    if not path.exists() or path.read_text() != source:
        write_atomic(path, source)
    spec = importlib.util.spec_from_file_location(name, path)
    assert spec is not None and spec.loader is not None
    module = importlib.util.module_from_spec(spec)
    sys.modules[name] = module
    spec.loader.exec_module(module)
    return module


def _np(t: torch.Tensor) -> np.ndarray:
    return t.detach().numpy()


_POOL: ThreadPoolExecutor | None = None


def split_across_threads(kernel, args: tuple, n: int) -> None:
    """Run ``kernel(*args, lo, hi)`` over ``range(n)`` split into contiguous ranges, one per thread (the kernels
    are ``nogil``); ``torch.get_num_threads()`` threads at most."""
    n_threads = max(1, min(torch.get_num_threads(), n))
    if n_threads == 1:
        kernel(*args, 0, n)
        return
    global _POOL
    if _POOL is None or _POOL._max_workers < n_threads:
        _POOL = ThreadPoolExecutor(max_workers=n_threads, thread_name_prefix="snn-numba")
    bounds = [n * k // n_threads for k in range(n_threads + 1)]
    futures = [_POOL.submit(kernel, *args, lo, hi) for lo, hi in zip(bounds[:-1], bounds[1:]) if hi > lo]
    for future in futures:
        future.result()


def _launch(kernel, args: tuple, L: int) -> None:
    """Run ``kernel(*args, CH, c_lo, c_hi)`` over all chunks of ``L`` lanes, split across threads."""
    split_across_threads(kernel, (*args, CHUNK), (L + CHUNK - 1) // CHUNK)


class NumbaRunner(FusedRunner):
    """Runs a :class:`Dynamics` on CPU tensors of shape ``[T, L]`` / ``[L]`` (contiguous, float32/float64)."""

    name = "numba"
    strided_lanes = True  # numba compiles the kernels for the arrays' layouts; a stride-0 lane array costs nothing

    def dtype_key(self, t: torch.Tensor) -> str:
        if t.device.type != "cpu" or t.dtype not in SUPPORTED_DTYPES:
            raise ValueError(f"the numba backend runs float32/float64 CPU tensors, got {t.dtype} on {t.device}")
        return DTYPE_NAMES[t.dtype]

    def launch(self, kind, dynamics, dtype, record, param_grads, tensors, scalars, T, L) -> None:
        module = _load(dynamics, tensors[0].dtype, record, param_grads)
        cast = np.float32 if dtype == "float32" else np.float64
        args = (*map(_np, tensors), *(cast(v) for v in scalars), T, L)
        _launch(getattr(module, kind), args, L)
