"""Surrogate gradients: the Heaviside step forward, a smooth derivative backward.

Each surrogate is declared once as a small program in the statement language of :mod:`snn.kernels.ir`
(reading ``x`` = membrane minus threshold, assigning ``sg`` = σ'(x)); the torch reference, the numba kernels and
the CUDA kernels are all generated from that one program. Definitions follow SpikingJelly's where SpikingJelly
has the surrogate (same names, same defaults), so hyper-parameters transfer.

==========================  =========================================================  =================
class                       σ'(x)                                                      peer definition
==========================  =========================================================  =================
``ATan(alpha=2)``           ``(α/2) / (1 + (π/2 · α · x)²)``                           SpikingJelly ATan
``Sigmoid(alpha=4)``        ``α · σ(αx) · (1 − σ(αx))``                                SpikingJelly Sigmoid
``SuperSpike(alpha=1)``     ``α / (1 + |x|)²``                                         SpikingJelly SuperSpike
``FastSigmoid(slope=25)``   ``1 / (1 + slope · |x|)²``                                 snnTorch fast_sigmoid
``Triangle(alpha=1)``       ``max(0, α − α² · |x|)``                                   SpikingJelly PiecewiseQuadratic
==========================  =========================================================  =================
"""
from __future__ import annotations

import math

import torch


class Surrogate:
    """Base class. Subclasses set ``program`` and ``parameter_names`` and store those parameters as floats."""

    program: str = ""
    parameter_names: tuple[str, ...] = ()

    @property
    def parameters(self) -> tuple[float, ...]:
        return tuple(float(getattr(self, name)) for name in self.parameter_names)

    @property
    def key(self) -> str:
        """Identifies the derivative's *form*; parameter values are runtime arguments of the kernels."""
        return type(self).__name__

    def derivative(self, x: torch.Tensor) -> torch.Tensor:
        """σ'(x), evaluated with the same program the kernels use."""
        from snn.kernels.reference import surrogate_function

        return surrogate_function(self.program, self.parameter_names)(x, *self.parameters)

    def __call__(self, x: torch.Tensor) -> torch.Tensor:
        """``Θ(x)`` (``Θ(0) = 1``) with σ' as its gradient: a spike function usable on its own."""
        from snn.kernels.reference import _HeavisideWithSurrogate, surrogate_function

        return _HeavisideWithSurrogate.apply(x, surrogate_function(self.program, self.parameter_names), *self.parameters)

    def __repr__(self) -> str:
        args = ", ".join(f"{n}={getattr(self, n)!r}" for n in self.parameter_names)
        return f"{type(self).__name__}({args})"

    def __eq__(self, other: object) -> bool:
        return type(self) is type(other) and self.parameters == other.parameters  # type: ignore[union-attr]

    def __hash__(self) -> int:
        return hash((type(self).__name__, self.parameters))


def _positive(name: str, value: float) -> float:
    value = float(value)
    if not math.isfinite(value) or value <= 0:
        raise ValueError(f"surrogate parameter {name!r} must be a finite number > 0, got {value!r}")
    return value


class ATan(Surrogate):
    """Arctangent surrogate: ``σ'(x) = (α/2) / (1 + (π/2 · α · x)²)`` (SpikingJelly ``ATan``)."""

    program = """
        a = alpha * 0.5
        ax = 3.141592653589793 * a * x
        sg = a / (1.0 + ax * ax)
    """
    parameter_names = ("alpha",)

    def __init__(self, alpha: float = 2.0):
        self.alpha = _positive("alpha", alpha)


class Sigmoid(Surrogate):
    """Logistic surrogate: ``σ'(x) = α · σ(αx) · (1 − σ(αx))`` (SpikingJelly ``Sigmoid``)."""

    program = """
        e = 1.0 / (1.0 + exp(-(alpha * x)))
        sg = alpha * (1.0 - e) * e
    """
    parameter_names = ("alpha",)

    def __init__(self, alpha: float = 4.0):
        self.alpha = _positive("alpha", alpha)


class SuperSpike(Surrogate):
    """SuperSpike surrogate as SpikingJelly defines it: ``σ'(x) = α / (1 + |x|)²``."""

    program = """
        d = abs(x) + 1.0
        sg = alpha / (d * d)
    """
    parameter_names = ("alpha",)

    def __init__(self, alpha: float = 1.0):
        self.alpha = _positive("alpha", alpha)


class FastSigmoid(Surrogate):
    """Fast-sigmoid surrogate (Zenke & Ganguli's SuperSpike, snnTorch ``fast_sigmoid``): ``σ'(x) = 1/(1 + slope·|x|)²``."""

    program = """
        d = slope * abs(x) + 1.0
        sg = 1.0 / (d * d)
    """
    parameter_names = ("slope",)

    def __init__(self, slope: float = 25.0):
        self.slope = _positive("slope", slope)


class Triangle(Surrogate):
    """Triangular surrogate: ``σ'(x) = max(0, α − α²|x|)`` (SpikingJelly ``PiecewiseQuadratic``; area 1)."""

    program = """
        sg = relu(alpha - alpha * alpha * abs(x))
    """
    parameter_names = ("alpha",)

    def __init__(self, alpha: float = 1.0):
        self.alpha = _positive("alpha", alpha)


PiecewiseQuadratic = Triangle

ALL = (ATan, Sigmoid, SuperSpike, FastSigmoid, Triangle)


def resolve(surrogate: "Surrogate | str | None") -> Surrogate:
    """Accept a surrogate object, a class name (``"atan"``) or ``None`` (``ATan()``)."""
    if surrogate is None:
        return ATan()
    if isinstance(surrogate, Surrogate):
        return surrogate
    if isinstance(surrogate, str):
        by_name = {cls.__name__.lower(): cls for cls in ALL}
        if surrogate.lower() in by_name:
            return by_name[surrogate.lower()]()
        raise ValueError(f"surrogate: unknown name {surrogate!r}; expected one of {sorted(by_name)}")
    raise TypeError(f"surrogate: expected a snn.surrogate.Surrogate, a name or None, got {type(surrogate).__name__}")
