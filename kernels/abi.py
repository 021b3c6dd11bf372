"""The argument order of every generated kernel (numba, CUDA, and CUDA compiled for the host), defined once.

forward
    ``x, s, saved..., [recorded states...], lane params..., states (in: initial, out: final)``
backward
    ``gs, g_final states..., [g_recorded...], s, saved..., lane params..., initial states...,
    gx, g_params..., g_initial states...``

followed by the scalars (``Dynamics.all_scalars`` order), then ``T, L`` (numba adds its chunking arguments
``CH, c_lo, c_hi``). Arrays are named ``a_<role>`` in the generated sources. Pure Python: no torch.
"""
from __future__ import annotations

from typing import NamedTuple

from snn.kernels.dynamics import Dynamics


class Array(NamedTuple):
    name: str  # the generated sources' parameter name, e.g. "a_sv_h"
    output: bool  # written by the kernel


def forward_arrays(d: Dynamics, record: bool) -> list[Array]:
    arrays = [Array("a_x", False), Array("a_s", True)] + [Array(f"a_sv_{n}", True) for n in d.saved]
    arrays += [Array(f"a_rec_{n}", True) for n in d.states] if record else []
    arrays += [Array(f"a_p_{n}", False) for n in d.lane_params] + [Array(f"a_st_{n}", True) for n in d.states]
    return arrays


def backward_arrays(d: Dynamics, record: bool) -> list[Array]:
    arrays = [Array("a_gs", False)] + [Array(f"a_gfinal_{n}", False) for n in d.states]
    arrays += [Array(f"a_grec_{n}", False) for n in d.states] if record else []
    arrays += [Array("a_s", False)] + [Array(f"a_sv_{n}", False) for n in d.saved]
    arrays += [Array(f"a_p_{n}", False) for n in d.lane_params] + [Array(f"a_init_{n}", False) for n in d.states]
    arrays += [Array("a_gx", True)] + [Array(f"a_{d.grad_name(n)}", True) for n in (*d.lane_params, *d.states)]
    return arrays


def arrays(kind: str, d: Dynamics, record: bool) -> list[Array]:
    """``forward_arrays`` or ``backward_arrays`` by name (``kind``: "forward" or "backward")."""
    if kind not in ("forward", "backward"):
        raise ValueError(f"kind: expected 'forward' or 'backward', got {kind!r}")
    return forward_arrays(d, record) if kind == "forward" else backward_arrays(d, record)
