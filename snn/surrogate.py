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
from typing import Callable, NamedTuple

import torch


class SurrogateForm(NamedTuple):
    """What a neuron's kernels need of a surrogate: its *form*, without parameter values (those are runtime
    arguments). Hashable, so the declarations built from it are cached once per form."""

    key: str
    program: str | None  # the declaration every backend is generated from; None for a torch-only surrogate
    parameter_names: tuple[str, ...]  # the program's parameters, passed to the kernels as scalars
    function: Callable[[torch.Tensor], torch.Tensor] | None  # torch-only surrogates: x -> σ'(x)


class Surrogate:
    """Base class of surrogates. A subclass does one of two things:

    * sets ``program`` (a statement-language program reading ``x`` and its parameters, assigning ``sg``) and
      ``parameter_names``, and stores those parameters as floats: it then runs on every backend (torch, numba,
      CUDA), exactly like the built-in surrogates;
    * or overrides :meth:`torch_derivative` (any torch code): it then runs on the torch reference backend only
      (``backend="auto"`` falls back to it; asking for ``"numba"``/``"cupy"`` raises an error saying why).

    Example (every backend)::

        class Gauss(snn.surrogate.Surrogate):
            program = "sg = alpha * 0.3989422804014327 * exp(-0.5 * (alpha * x) * (alpha * x))"
            parameter_names = ("alpha",)

            def __init__(self, alpha: float = 2.0):
                self.alpha = float(alpha)

        lif = snn.LIF(tau=2.0, surrogate=Gauss(3.0))

    ``snn.surrogate.Custom(fn)`` wraps a plain torch function ``x -> σ'(x)`` (torch backend only).
    """

    program: str | None = None
    parameter_names: tuple[str, ...] = ()

    @property
    def parameters(self) -> tuple[float, ...]:
        return tuple(float(getattr(self, name)) for name in self.parameter_names)

    @property
    def key(self) -> str:
        """Identifies the derivative's *form* in kernel names and messages (the class name)."""
        return type(self).__name__

    @property
    def declared(self) -> bool:
        """Whether the surrogate is a declaration, which the fused backends (numba, CUDA) can compile."""
        return bool(self.program)

    @property
    def form(self) -> SurrogateForm:
        if self.declared:
            return SurrogateForm(self.key, self.program, tuple(self.parameter_names), None)
        if type(self).torch_derivative is Surrogate.torch_derivative:
            raise TypeError(f"surrogate {self.key}: a Surrogate subclass must set `program` (every backend) or "
                            "override `torch_derivative(self, x)` (torch backend only)")
        return SurrogateForm(self.key, None, (), self.torch_derivative)

    @property
    def kernel_parameters(self) -> tuple[float, ...]:
        """The values the kernels receive, in ``form.parameter_names`` order."""
        return self.parameters if self.declared else ()

    def torch_derivative(self, x: torch.Tensor) -> torch.Tensor:
        """σ'(x) in torch; override this (instead of setting ``program``) for a torch-only surrogate."""
        from snn.kernels.reference import surrogate_function

        return surrogate_function(self.program, self.parameter_names)(x, *self.parameters)

    def derivative(self, x: torch.Tensor) -> torch.Tensor:
        """σ'(x), evaluated with the same program (or function) the neurons use."""
        return self.torch_derivative(x)

    def __call__(self, x: torch.Tensor) -> torch.Tensor:
        """``Θ(x)`` (``Θ(0) = 1``) with σ' as its gradient: a spike function usable on its own."""
        from snn.kernels.reference import HeavisideWithSurrogate

        return HeavisideWithSurrogate.apply(x, self.torch_derivative)

    def __repr__(self) -> str:
        args = ", ".join(f"{n}={getattr(self, n)!r}" for n in self.parameter_names)
        return f"{type(self).__name__}({args})"

    def __eq__(self, other: object) -> bool:
        return type(self) is type(other) and self.parameters == other.parameters  # type: ignore[union-attr]

    def __hash__(self) -> int:
        return hash((type(self).__name__, self.parameters))


class Custom(Surrogate):
    """A surrogate from a plain torch function ``derivative(x) -> σ'(x)`` (snnTorch's ``custom_surrogate``).

    Runs on the torch reference backend only: a function cannot be compiled into the fused kernels. For numba and
    CUDA, subclass :class:`Surrogate` with a ``program`` instead.

    Args:
        derivative: elementwise torch function of the membrane minus threshold.
        name: shown in ``repr`` and error messages (default: the function's name).
    """

    def __init__(self, derivative: Callable[[torch.Tensor], torch.Tensor], name: str | None = None):
        if not callable(derivative):
            raise TypeError(f"derivative: expected a callable x -> σ'(x), got {type(derivative).__name__}")
        self.function = derivative
        self.name = name or getattr(derivative, "__name__", "custom")

    @property
    def key(self) -> str:
        return f"Custom[{self.name}]"

    def torch_derivative(self, x: torch.Tensor) -> torch.Tensor:
        return self.function(x)

    def __repr__(self) -> str:
        return f"Custom({self.name})"

    def __eq__(self, other: object) -> bool:
        return isinstance(other, Custom) and self.function is other.function

    def __hash__(self) -> int:
        return hash(("Custom", id(self.function)))


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
