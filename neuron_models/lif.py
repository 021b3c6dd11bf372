r"""Leaky integrate-and-fire neurons: ``LIF``, ``ParametricLIF``, ``IF`` and the non-spiking readout ``LI``.

Per time step ``t``, with membrane ``V``, input ``X``, time constant ``τ`` (in time steps):

.. math::

    \text{charge (decay\_input=True):}\quad  H[t] &= V[t-1] + (X[t] - (V[t-1] - V_{reset})) / \tau \\
    \text{charge (decay\_input=False):}\quad H[t] &= V[t-1] - (V[t-1] - V_{reset}) / \tau + X[t] \\
    \text{fire:}\quad S[t] &= \Theta(H[t] - V_{th}),\qquad \Theta(0) = 1 \\
    \text{hard reset:}\quad V[t] &= H[t]\,(1 - S[t]) + V_{reset}\,S[t] \\
    \text{soft reset } (v\_reset=None)\text{:}\quad V[t] &= H[t] - V_{th}\,S[t]

With soft reset ``V_reset`` is 0 in the leak. The backward pass uses the surrogate σ' in place of Θ';
``detach_reset=True`` stops the gradient through ``S`` in the reset term. These are SpikingJelly's ``LIFNode``
equations with its operation order: ``LIF`` divides by ``τ`` as ``LIFNode`` does, so float32 spikes are
bit-identical to SpikingJelly's for any ``τ``; ``ParametricLIF`` multiplies by ``1/τ = k = sigmoid(w)`` as
``ParametricLIFNode`` does. Models and hyper-parameters transfer. ``IF`` has no leak: ``H[t] = V[t-1] + X[t]``. ``V[-1] = V_reset`` (0 with soft reset).

Parameters are in time steps: a time constant of 20 ms at ``dt = 1 ms`` is ``tau=20``.
"""
from __future__ import annotations

import math

import torch
from torch import nn

from snn import surrogate as surrogates
from snn.kernels.dynamics import Dynamics
from snn.kernels.memo import memoize
from snn.neuron_models.base import SpikingNeuron, finite_float, positive_float
from snn.neuron_models.charge import charge


def _reset_lines(hard: bool, detach_reset: bool) -> str:
    sr = "detach(s)" if detach_reset else "s"
    if hard:
        return f"sr = {sr}\nv = h * (1.0 - sr) + v_reset * sr"
    return f"sr = {sr}\nv = h - v_threshold * sr"


def lif_dynamics(hard_reset: bool, decay_input: bool, detach_reset: bool, leak: str,
                 surrogate: surrogates.Surrogate | str | None = None) -> Dynamics:
    """The LIF family's dynamics for one combination of options.

    ``leak``: ``"divide"`` (LIF: lane parameter ``tau``, divided by as SpikingJelly's ``LIFNode`` does),
    ``"multiply"`` (ParametricLIF: lane parameter ``decay = 1/τ``) or ``"none"`` (IF); see
    :mod:`snn.neuron_models.charge`. ``surrogate``: a surrogate object or name (default ``ATan``).
    """
    return _lif_dynamics(bool(hard_reset), bool(decay_input), bool(detach_reset), leak, surrogates.resolve(surrogate).form)


@memoize
def _lif_dynamics(hard_reset: bool, decay_input: bool, detach_reset: bool, leak: str, form: surrogates.SurrogateForm) -> Dynamics:
    ch = charge(hard_reset, decay_input, leak)
    if hard_reset:
        through_h = "g_v * (1.0 - s)"
        through_s = "gs" if detach_reset else "gs + g_v * (v_reset - h)"
    else:
        through_h = "g_v"
        through_s = "gs" if detach_reset else "gs - g_v * v_threshold"
    backward = f"sgv = sg(h - v_threshold)\ngh = {through_h} + ({through_s}) * sgv\n{ch.adjoint}"
    key = f"lif[{'hard' if hard_reset else 'soft'},{'decay_input' if decay_input else 'decay_v'},{'detach' if detach_reset else 'attach'},{leak},{form.key}]"
    return Dynamics(
        key=key,
        states=("v",),
        lane_params=(ch.lane_param,) if ch.lane_param else (),
        scalars=("v_threshold", "v_reset") if hard_reset else ("v_threshold",),
        saved=("h",),
        forward=f"{ch.forward}\ns = spike(h - v_threshold)\n{_reset_lines(hard_reset, detach_reset)}",
        restore=_reset_lines(hard_reset, False),
        backward=backward,
        fire="s = spike(h - v_threshold)",
        surrogate=form.program,
        surrogate_scalars=form.parameter_names,
        surrogate_function=form.function,
    )


def _tau_tensor(tau) -> torch.Tensor:
    if isinstance(tau, bool) or not isinstance(tau, (int, float, torch.Tensor)):
        raise TypeError(f"tau: expected a number or a tensor, got {type(tau).__name__}")
    # a number is kept in float64, so float64 inputs divide by the very value SpikingJelly divides by; a float32
    # input divides by float32(τ), which is what torch does with SpikingJelly's Python-float τ
    tau_t = torch.as_tensor(tau, dtype=tau.dtype if isinstance(tau, torch.Tensor) and tau.is_floating_point()
                            else torch.float64).detach().clone()
    if not torch.isfinite(tau_t).all() or (tau_t <= 0).any():
        raise ValueError(f"tau: expected finite values > 0, got {tau!r}")
    return tau_t


class _LIFBase(SpikingNeuron):
    """Options shared by the LIF family."""

    _leak = "multiply"  # the LIF family's charge (snn.neuron_models.charge); LIF divides, IF has no leak

    def __init__(self, *, v_threshold: float, v_reset: float | None, decay_input: bool, detach_reset: bool,
                 surrogate, backend: str, check_finite: bool):
        super().__init__(surrogate=surrogate, backend=backend, check_finite=check_finite)
        self.v_threshold = finite_float("v_threshold", v_threshold)
        self.v_reset = None if v_reset is None else finite_float("v_reset", v_reset)
        self.decay_input = bool(decay_input)
        self.detach_reset = bool(detach_reset)

    def dynamics(self) -> Dynamics:
        return lif_dynamics(self.v_reset is not None, self.decay_input, self.detach_reset, self._leak, self.surrogate)

    def scalar_values(self) -> dict[str, float]:
        values = {"v_threshold": self.v_threshold}
        if self.v_reset is not None:
            values["v_reset"] = self.v_reset
        return values

    def initial_values(self) -> dict[str, float]:
        return {"v": self.v_reset if self.v_reset is not None else 0.0}

    def _options_repr(self) -> str:
        reset = "soft" if self.v_reset is None else f"v_reset={self.v_reset}"
        return (f"v_threshold={self.v_threshold}, {reset}, decay_input={self.decay_input}, "
                f"detach_reset={self.detach_reset}, surrogate={self.surrogate}, backend={self.backend!r}")


class LIF(_LIFBase):
    r"""Leaky integrate-and-fire neuron with a fixed time constant (see the module docstring for the equations).

    Args:
        tau: membrane time constant in time steps (> 0; 1 means no memory with ``decay_input=True``). A float, or
            a tensor broadcastable to one step's feature shape for per-neuron constants.
        v_threshold: firing threshold ``V_th``.
        v_reset: reset potential for a hard reset; ``None`` selects the soft (subtractive) reset.
        decay_input: whether the input is scaled by ``1/τ`` (SpikingJelly's ``decay_input``).
        detach_reset: stop the gradient through the reset term.
        surrogate: a :mod:`snn.surrogate` object or name; default ``ATan(alpha=2)``.
        backend: ``"auto"``, ``"torch"``, ``"numba"`` or ``"cupy"`` (see :mod:`snn.kernels.backends`).
        check_finite: raise if the input holds NaN/inf (costs one pass over the input).

    Shape: ``x`` ``[T, B, ...]`` → spikes ``[T, B, ...]`` (same dtype, values in {0, 1}).
    """

    def __init__(self, tau: float | torch.Tensor = 2.0, v_threshold: float = 1.0, v_reset: float | None = 0.0,
                 decay_input: bool = True, detach_reset: bool = False, surrogate=None, backend: str = "auto",
                 check_finite: bool = False):
        super().__init__(v_threshold=v_threshold, v_reset=v_reset, decay_input=decay_input,
                         detach_reset=detach_reset, surrogate=surrogate, backend=backend, check_finite=check_finite)
        self.register_buffer("tau", _tau_tensor(tau))
        self._prepare()

    _leak = "divide"

    def __setattr__(self, name: str, value) -> None:
        # `lif.tau = 3.0` works as in SpikingJelly: numbers (and tensors) are checked and kept in the `tau` buffer
        if name == "tau" and "tau" in self._buffers:
            tau = _tau_tensor(value)
            old = self._buffers["tau"]
            value = tau.to(old.device) if old is not None else tau
        super().__setattr__(name, value)

    def lane_parameters(self, dtype: torch.dtype) -> dict[str, torch.Tensor]:
        return {"tau": self.tau.to(dtype)}

    def extra_repr(self) -> str:
        tau = self.tau.item() if self.tau.dim() == 0 else f"tensor{tuple(self.tau.shape)}"
        return f"tau={tau}, {self._options_repr()}"


class ParametricLIF(_LIFBase):
    r"""LIF with a learnable time constant, ``k = 1/τ = sigmoid(w)`` (Fang et al. 2021; SpikingJelly
    ``ParametricLIFNode``). ``w`` starts at ``-log(init_tau - 1)`` so that ``τ = init_tau``.

    Args:
        init_tau: initial time constant in steps (> 1).
        shape: shape of ``w``: ``()`` for one τ per layer (default), or a per-neuron shape broadcastable to one
            step's feature shape, e.g. ``(N,)`` or ``(C, 1, 1)``.
        other arguments: as :class:`LIF`.
    """

    def __init__(self, init_tau: float = 2.0, v_threshold: float = 1.0, v_reset: float | None = 0.0,
                 decay_input: bool = True, detach_reset: bool = False, surrogate=None, backend: str = "auto",
                 shape: tuple[int, ...] = (), check_finite: bool = False):
        super().__init__(v_threshold=v_threshold, v_reset=v_reset, decay_input=decay_input,
                         detach_reset=detach_reset, surrogate=surrogate, backend=backend, check_finite=check_finite)
        init_tau = positive_float("init_tau", init_tau)
        if init_tau <= 1.0:
            raise ValueError(f"init_tau: expected a value > 1 (k = sigmoid(w) < 1), got {init_tau!r}")
        self.w = nn.Parameter(torch.full(tuple(shape), -math.log(init_tau - 1.0)))
        self._prepare()

    @property
    def tau(self) -> torch.Tensor:
        return 1.0 / torch.sigmoid(self.w.detach())

    def lane_parameters(self, dtype: torch.dtype) -> dict[str, torch.Tensor]:
        return {"decay": torch.sigmoid(self.w.to(dtype))}

    def extra_repr(self) -> str:
        tau = f"{self.tau.item():.4g}" if self.w.dim() == 0 else f"per-neuron{tuple(self.w.shape)}"
        return f"tau={tau} (learnable), {self._options_repr()}"


class IF(_LIFBase):
    r"""Integrate-and-fire neuron without leak: ``H[t] = V[t-1] + X[t]``, then fire and reset as LIF."""

    _leak = "none"

    def __init__(self, v_threshold: float = 1.0, v_reset: float | None = 0.0, detach_reset: bool = False,
                 surrogate=None, backend: str = "auto", check_finite: bool = False):
        super().__init__(v_threshold=v_threshold, v_reset=v_reset, decay_input=False, detach_reset=detach_reset,
                         surrogate=surrogate, backend=backend, check_finite=check_finite)
        self._prepare()

    def extra_repr(self) -> str:
        return self._options_repr().replace("decay_input=False, ", "")


class LI(LIF):
    r"""Leaky integrator readout: the LIF membrane with no threshold (it never fires).

    Returns the membrane sequence ``V`` ``[T, B, ...]`` instead of spikes: the usual readout of SNN classifiers
    (e.g. the delay network's output layer, a LIF with ``V_th = 1e9``).
    """

    def __init__(self, tau: float | torch.Tensor = 2.0, v_reset: float = 0.0, decay_input: bool = True,
                 backend: str = "auto", check_finite: bool = False):
        super().__init__(tau=tau, v_threshold=math.inf, v_reset=v_reset, decay_input=decay_input,
                         backend=backend, check_finite=check_finite)

    def forward(self, x: torch.Tensor, state=None):
        out = self.run(x, state, record=True)
        assert out.recorded is not None
        return out.recorded["v"] if state is None else (out.recorded["v"], out.state)

    def extra_repr(self) -> str:
        tau = self.tau.item() if self.tau.dim() == 0 else f"tensor{tuple(self.tau.shape)}"
        return f"tau={tau}, v_reset={self.v_reset}, decay_input={self.decay_input}, backend={self.backend!r}"
