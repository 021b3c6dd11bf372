r"""How this package's discrete neurons and NIR's continuous-time neurons map onto each other.

NIR describes neurons as differential equations in seconds; this package's neurons step in units of one time step
(:mod:`snn.neuron_models.lif`). With a simulation step ``dt`` (seconds) and **forward Euler**, NIR's LIF

.. math::

    \tau\,\dot v = (v_{leak} - v) + R\,I, \qquad z = \Theta(v - v_{th}), \qquad v \leftarrow v_{reset} \text{ where } z = 1

becomes, with ``k = dt/τ`` (our ``1/tau`` with ``tau`` in steps ``= τ/dt``),

.. math::

    H[t] = V[t-1] + k\,(v_{leak} - V[t-1] + R\,I[t]).

Our LIF (hard reset to ``V_r``) is exactly this with

=================  ====================  ============================================  ==================
our option          NIR ``tau``           NIR ``r``                                      NIR ``v_leak``
=================  ====================  ============================================  ==================
``decay_input``     ``tau · dt``          ``1``  (``H = V + k(X - (V - V_r))``)           ``V_r``
no ``decay_input``  ``tau · dt``          ``tau`` (``H = V - k(V - V_r) + X``: ``k·R = 1``)  ``V_r``
=================  ====================  ============================================  ==================

and ``v_threshold``, ``v_reset`` carried over. ``LI`` is the same without threshold (``v_leak`` = its resting
potential). NIR's ``IF`` (``v̇ = R·I``) steps ``H = V + dt·R·I``, so our ``IF`` (``H = V + X``) exports with
``R = 1/dt`` — SpikingJelly's convention; Norse's ``IAFCell`` ignores ``R`` and adds its input, which gives the same
numbers, and Norse exports its ``IAFCell`` with ``R = 1``, the same again at ``dt = 1``.

Importing, a NIR neuron becomes our neuron with ``tau = τ/dt`` steps and:

* ``R = τ/dt`` (relative tolerance 1e-5) and ``v_leak = v_reset`` → ``decay_input=False`` (snnTorch's export);
* ``R = 1`` and ``v_leak = v_reset`` → ``decay_input=True`` (Norse's export);
* anything else → ``decay_input=True`` after an :class:`~snn.interop.nir_network.ElementwiseAffine` on the input,
  ``X = R·I + (v_leak - v_reset)`` — the same Euler step, one extra multiply-add per neuron and step.

``CubaLIF`` (``τ_syn İ = -I + w_in S``, then the LIF driven by ``R·I``) imports as the synaptic current as an ``LI``
(``tau = τ_syn/dt``, input ``w_in·S``, ``decay_input``) feeding the LIF: the current of step ``t`` drives the membrane
of step ``t``, as in Norse and snnTorch (``CubaLI``: the same with an ``LI`` membrane). Per-neuron ``τ``, ``R``,
``v_leak`` and ``w_in`` are kept; ``v_threshold`` and ``v_reset`` must be one value per population (our neurons take
scalars). An ``LI`` whose ``v_leak`` differs between neurons runs ``u = v - v_leak`` (resting at 0) and adds
``v_leak`` to its output.

**What differs, and by how much.** (1) NIR fires at ``v > v_th``; our neurons (SpikingJelly's convention) at
``v ≥ v_th``: a spike differs only when the membrane equals the threshold exactly. (2) Our spiking neurons start
from ``V_r`` (the reset potential), imported ``LI`` membranes from ``v_leak``; Norse starts from ``v_leak``,
snnTorch from 0 — the same when ``v_leak = v_reset = 0``, as every exporter here writes. (3) Soft (subtractive) reset has no NIR form (NIR resets to ``v_reset``): exporting
it is an error. (4) Rounding: ``k`` and ``R`` round-trip through ``τ`` in float64; a peer that evaluates
``β·V + X`` where we evaluate ``V - k·V + X`` agrees to float rounding, so a spike can flip only when a membrane lies
within a rounding error of the threshold.
"""
from __future__ import annotations

import numpy as np
import torch
from torch import nn

from snn.interop.nir_network import Chain, ElementwiseAffine
from snn.neuron_models import IF, LI, LIF, ParametricLIF, SpikingNeuron

__all__ = ["neuron_to_nir", "neuron_from_nir", "NEURON_NODE_TYPES", "R_RTOL", "NIRConversionError"]

#: relative tolerance for recognising ``R = τ/dt`` (snnTorch writes R in float32) and ``R = 1``
R_RTOL = 1e-5

#: NIR node types handled by :func:`neuron_from_nir`
NEURON_NODE_TYPES = ("LIF", "LI", "IF", "CubaLIF", "CubaLI")


class NIRConversionError(ValueError):
    """A module or node that has no equivalent on the other side; the message names it and says why."""


def _np(t: torch.Tensor | float, shape: tuple[int, ...]) -> np.ndarray:
    a = t.detach().cpu().double().numpy() if isinstance(t, torch.Tensor) else np.asarray(t, dtype=np.float64)
    return np.broadcast_to(a, shape).astype(np.float64).copy()


def neuron_to_nir(path: str, neuron: nn.Module, dt: float, shape: tuple[int, ...],
                  pre: ElementwiseAffine | None = None):
    """The NIR node of one of our neurons (``shape``: one sample's feature shape; ``pre``: an input scale/shift folded in).

    ``X = scale·I + shift`` in front of a neuron whose input gain is ``g`` (``1`` with ``decay_input``, ``tau``
    without) gives ``R = g·scale`` and ``v_leak = V_r + g·shift``; for IF ``R = scale/dt``.
    """
    import nir

    if not isinstance(neuron, SpikingNeuron) or not isinstance(neuron, (LIF, ParametricLIF, IF)):
        raise NIRConversionError(f"{path}: {type(neuron).__name__} has no NIR neuron (NIR has LIF, LI, IF, CubaLIF, "
                                 "CubaLI; adaptive thresholds and other dynamics are not representable)")
    if neuron.v_reset is None:
        raise NIRConversionError(f"{path}: {type(neuron).__name__} uses the soft (subtractive) reset, which NIR cannot "
                                 "express (NIR neurons reset to v_reset); use a hard reset (v_reset=0.0) to export")
    scale = _np(pre.scale, shape) if pre is not None else np.ones(shape)
    shift = _np(pre.shift, shape) if pre is not None and pre.shift is not None else np.zeros(shape)
    v_reset = np.full(shape, float(neuron.v_reset))
    if isinstance(neuron, IF):
        if np.any(shift != 0):
            raise NIRConversionError(f"{path}: an input offset before IF has no NIR form (NIR's IF has no leak)")
        return nir.IF(r=scale / dt, v_threshold=np.full(shape, neuron.v_threshold), v_reset=v_reset)
    tau = _np(neuron.tau, shape)
    gain = np.ones(shape) if neuron.decay_input else tau
    common = {"tau": tau * dt, "r": gain * scale, "v_leak": v_reset + gain * shift}
    if isinstance(neuron, LI):
        return nir.LI(**common)
    return nir.LIF(**common, v_threshold=np.full(shape, neuron.v_threshold), v_reset=v_reset)


def _uniform(path: str, name: str, values) -> float:
    a = np.asarray(values, dtype=np.float64)
    if a.size == 0 or not np.all(a == a.flat[0]):
        raise NIRConversionError(f"{path}: {name} must be one value for the whole population (our neurons take a "
                                 f"scalar), got values from {a.min() if a.size else '-'} to {a.max() if a.size else '-'}")
    if not np.isfinite(a.flat[0]):
        raise NIRConversionError(f"{path}: {name} must be finite, got {a.flat[0]}")
    return float(a.flat[0])


def _tau_steps(path: str, name: str, tau, dt: float) -> np.ndarray:
    t = np.asarray(tau, dtype=np.float64) / dt
    if t.size == 0 or not np.all(np.isfinite(t)) or np.any(t <= 0):
        raise NIRConversionError(f"{path}: {name} must be finite and > 0 seconds, got {np.asarray(tau)}")
    return t


def _leaky(cls: type, tau: np.ndarray, dtype: torch.dtype, **kw) -> nn.Module:
    """``cls(tau=…, **kw)`` with the time constant kept in ``dtype`` (0-d when uniform): the constructors cast it
    to the default dtype, which would round a float64 ``τ/dt``."""
    uniform = bool(np.all(tau == tau.flat[0]))
    module = cls(tau=float(tau.flat[0]) if uniform else torch.as_tensor(tau), **kw)
    module.tau = torch.tensor(float(tau.flat[0]), dtype=dtype) if uniform else torch.as_tensor(tau, dtype=dtype)
    return module


def _leaky_input(tau: np.ndarray, r, v_leak, rest: float, dtype: torch.dtype):
    """``(decay_input, pre)`` so that our leaky neuron with resting/reset potential ``rest`` runs NIR's Euler step."""
    r = np.broadcast_to(np.asarray(r, dtype=np.float64), np.broadcast(tau, np.asarray(r)).shape)
    offset = np.asarray(v_leak, dtype=np.float64) - rest
    if not np.any(offset):
        if np.allclose(r, tau, rtol=R_RTOL, atol=0.0):
            return False, None
        if np.allclose(r, 1.0, rtol=R_RTOL, atol=0.0):
            return True, None
    shift = torch.as_tensor(offset, dtype=dtype) if np.any(offset) else None
    return True, ElementwiseAffine(torch.as_tensor(np.array(r), dtype=dtype), shift)


def _with_pre(pre: nn.Module | None, neuron: nn.Module) -> nn.Module:
    return neuron if pre is None else Chain(pre, neuron)


def neuron_from_nir(path: str, node, dt: float, dtype: torch.dtype = torch.float32) -> nn.Module:
    """Our module for a NIR ``LIF``, ``LI``, ``IF``, ``CubaLIF`` or ``CubaLI`` node (see the module docstring)."""
    kind = type(node).__name__
    if kind == "IF":
        v_reset = _uniform(path, "v_reset", node.v_reset)
        neuron = IF(v_threshold=_uniform(path, "v_threshold", node.v_threshold), v_reset=v_reset)
        gain = np.asarray(node.r, dtype=np.float64) * dt  # Euler: H = V + dt·R·I
        pre = None if np.allclose(gain, 1.0, rtol=R_RTOL, atol=0.0) else ElementwiseAffine(torch.as_tensor(gain, dtype=dtype))
        return _with_pre(pre, neuron)
    if kind in ("LIF", "LI"):
        tau = _tau_steps(path, "tau", node.tau, dt)
        if kind == "LI":
            parts = _li_parts(tau, node.r, node.v_leak, dtype)
            return parts[0] if len(parts) == 1 else Chain(*parts)
        rest = _uniform(path, "v_reset", node.v_reset)
        decay_input, pre = _leaky_input(tau, node.r, node.v_leak, rest, dtype)
        return _with_pre(pre, _leaky(LIF, tau, dtype, v_threshold=_uniform(path, "v_threshold", node.v_threshold),
                                  v_reset=rest, decay_input=decay_input))
    if kind in ("CubaLIF", "CubaLI"):
        tau_syn = _tau_steps(path, "tau_syn", node.tau_syn, dt)
        tau_mem = _tau_steps(path, "tau_mem", node.tau_mem, dt)
        w_in = np.asarray(node.w_in, dtype=np.float64)
        parts: list[nn.Module] = []
        if not np.allclose(w_in, 1.0, rtol=R_RTOL, atol=0.0):
            parts.append(ElementwiseAffine(torch.as_tensor(w_in, dtype=dtype)))
        parts.append(_leaky(LI, tau_syn, dtype, v_reset=0.0, decay_input=True))
        if kind == "CubaLI":
            return Chain(*parts, *_li_parts(tau_mem, node.r, node.v_leak, dtype))
        rest = _uniform(path, "v_reset", node.v_reset)
        decay_input, pre = _leaky_input(tau_mem, node.r, node.v_leak, rest, dtype)
        if pre is not None:
            parts.append(pre)
        parts.append(_leaky(LIF, tau_mem, dtype, v_threshold=_uniform(path, "v_threshold", node.v_threshold),
                         v_reset=rest, decay_input=decay_input))
        return Chain(*parts)
    raise NIRConversionError(f"{path}: NIR node type {kind} is not a neuron this package imports ({NEURON_NODE_TYPES})")


def _li_parts(tau: np.ndarray, r, v_leak, dtype: torch.dtype) -> list[nn.Module]:
    """A NIR LI membrane: our ``LI`` resting at ``v_leak`` when it is one value; else ``u = v - v_leak`` runs in an
    ``LI`` resting at 0 and ``v_leak`` is added to its output (so the membrane starts at ``v_leak``, as in Norse)."""
    v_leak = np.asarray(v_leak, dtype=np.float64)
    uniform = v_leak.size > 0 and bool(np.all(v_leak == v_leak.flat[0]))
    rest = float(v_leak.flat[0]) if uniform else 0.0
    decay_input, pre = _leaky_input(tau, r, rest, rest, dtype)
    parts = [pre] if pre is not None else []
    parts.append(_leaky(LI, tau, dtype, v_reset=rest, decay_input=decay_input))
    if not uniform:
        shape = np.broadcast(tau, v_leak).shape
        parts.append(ElementwiseAffine(torch.ones(shape, dtype=dtype), torch.as_tensor(v_leak, dtype=dtype)))
    return parts
