r"""Which rule an input gets: events (accumulates) or real values (multiply-accumulates).

A neuromorphic chip receives an input of integer count ``k ≥ 0`` as ``k`` spikes, each delivered to its fan-out as
an accumulate; spikes of either sign (``±1``) likewise. Only inputs with non-integer (or negative non-spike) values
need multipliers:

.. math::

    \text{events} \iff x \in \{-1, 0, 1\}^n \;\lor\; x \in \mathbb{N}^n, \qquad \text{units of } x_i = |x_i|

``integer_inputs="macs"`` restores the stricter rule (only ``{-1, 0, 1}`` are events), e.g. for raw 8-bit pixel
values that a chip would not turn into up to 255 spikes.
"""
from __future__ import annotations

from dataclasses import dataclass

import torch

__all__ = ["InputClass", "classify_input", "is_binary", "nonzero_indicator", "INTEGER_INPUTS"]

INTEGER_INPUTS = ("events", "macs")


@dataclass(frozen=True)
class InputClass:
    """The rule an input gets: ``events`` (True: accumulates) and why, in words."""

    events: bool
    reason: str
    max_count: float = 1.0


BINARY = InputClass(True, "binary spikes")


def is_binary(x: torch.Tensor) -> bool:
    """True when every value of ``x`` is in ``{-1, 0, 1}`` (spikes, signed spikes).

    Float arithmetic only (boolean reductions are slow on CPU): with ``a = |x| ∈ [0, 1]``, ``a - a²`` is ``0`` at
    ``0`` and ``1`` and strictly positive in between (also after float rounding), so the sum is zero iff binary.
    """
    if x.numel() == 0:
        return True
    if not x.is_floating_point():
        x = x.double()
    lo, hi = torch.aminmax(x)
    if lo < -1 or hi > 1:
        return False
    a = x.abs()
    return bool((a - a * a).sum() == 0)


def nonzero_indicator(x: torch.Tensor) -> torch.Tensor:
    """``1.0`` where ``x != 0`` else ``0.0``, in float arithmetic (faster than boolean reductions on CPU)."""
    return x.sign().abs_() if x.is_floating_point() else (x != 0).to(torch.float32)


def classify_input(x: torch.Tensor, integer_inputs: str = "events") -> InputClass:
    """Events or real values for the input ``x`` of one operation (see the module docstring)."""
    if x.numel() == 0:
        return BINARY
    xf = x if x.is_floating_point() else x.double()
    lo, hi = (float(v) for v in torch.aminmax(xf))
    if lo >= -1 and hi <= 1 and is_binary(xf):
        return BINARY
    if not (lo == lo and hi == hi) or abs(lo) == float("inf") or abs(hi) == float("inf"):
        return InputClass(False, "real values (non-finite)", hi)
    integral = not x.is_floating_point() or not bool(torch.frac(xf).any())
    if not integral:
        return InputClass(False, "real values (not integer counts)", hi)
    if lo < 0:
        return InputClass(False, f"real values (negative integers down to {lo:g})", hi)
    if integer_inputs == "macs":
        return InputClass(False, f"integer counts 0..{hi:g}, charged as MACs (integer_inputs='macs')", hi)
    return InputClass(True, f"integer spike counts 0..{hi:g} (a count k is k events)", hi)
