r"""The LIF charge step and its adjoint, written once for every neuron that charges like SpikingJelly's ``LIFNode``.

With membrane ``V``, input ``X`` and rest ``V_rest`` (``V_reset`` for a hard reset, 0 for a soft one):

.. math::

    \text{decay\_input=True:}\quad  H[t] &= V[t-1] + (X[t] - (V[t-1] - V_{rest})) / \tau \\
    \text{decay\_input=False:}\quad H[t] &= V[t-1] - (V[t-1] - V_{rest}) / \tau + X[t]

Three forms of the leak, chosen by ``leak``:

``"divide"``
    lane parameter ``tau``; divides by ``τ`` in exactly SpikingJelly's operation order (``LIFNode``), so float32
    spikes are bit-identical to SpikingJelly's for every ``τ``, not only powers of two (multiplying by a rounded
    ``1/τ`` flips a spike whenever the membrane lands within one rounding of the threshold).
``"multiply"``
    lane parameter ``decay`` ``= k = 1/τ``, multiplied (SpikingJelly's ``ParametricLIFNode``, ``k = sigmoid(w)``).
``"none"``
    no leak, no lane parameter: ``H[t] = V[t-1] + X[t]`` (``IFNode``).

The adjoints give ``gx = ∂L/∂X``, ``g_v = ∂L/∂V[t-1]`` through the charge, and accumulate the lane parameter's
gradient, from ``gh = ∂L/∂H``. ``∂H/∂k = (H - V)/k`` (decay_input) is recovered from ``H``, so ``X`` need not be
kept for the backward.
"""
from __future__ import annotations

from typing import NamedTuple

LEAKS = ("divide", "multiply", "none")


class Charge(NamedTuple):
    forward: str  # assigns h from v, x and the lane parameter
    adjoint: str  # assigns gx, g_v and accumulates g_<lane_param>, from gh
    lane_param: str | None


def charge(hard_reset: bool, decay_input: bool, leak: str) -> Charge:
    """The charge program and its adjoint for one combination of options."""
    if leak not in LEAKS:
        raise ValueError(f"leak: expected one of {LEAKS}, got {leak!r}")
    if leak == "none":
        return Charge("h = v + x", "gx = gh\ng_v = gh", None)
    # "(v - 0.0)" is v exactly, so the soft reset drops it without changing a bit
    dv = "(v - v_reset)" if hard_reset else "v"
    rest = "v_reset" if hard_reset else "0.0"
    if leak == "divide":
        if decay_input:
            return Charge(f"h = v + (x - {dv}) / tau",
                          "gx = gh / tau\ng_tau += -(gh * (h - v)) / tau\ng_v = gh - gh / tau", "tau")
        return Charge(f"h = v - {dv} / tau + x",
                      f"gx = gh\ng_tau += gh * (v - {rest}) / (tau * tau)\ng_v = gh - gh / tau", "tau")
    if decay_input:
        return Charge(f"h = v + (x - {dv}) * decay",
                      "gx = gh * decay\ng_decay += gh * (h - v) / decay\ng_v = gh * (1.0 - decay)", "decay")
    return Charge(f"h = v - {dv} * decay + x",
                  f"gx = gh\ng_decay += -(gh * (v - {rest}))\ng_v = gh * (1.0 - decay)", "decay")
