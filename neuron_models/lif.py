r"""Leaky integrate-and-fire neurons: ``LIF``, ``ParametricLIF``, ``IF`` and the non-spiking readout ``LI``.

Per time step ``t``, with membrane ``V``, input ``X``, decay ``k = 1/τ`` (τ in time steps):

.. math::

    \text{charge (decay\_input=True):}\quad  H[t] &= V[t-1] + k\,(X[t] - (V[t-1] - V_{reset})) \\
    \text{charge (decay\_input=False):}\quad H[t] &= V[t-1] - k\,(V[t-1] - V_{reset}) + X[t] \\
    \text{fire:}\quad S[t] &= \Theta(H[t] - V_{th}),\qquad \Theta(0) = 1 \\
    \text{hard reset:}\quad V[t] &= H[t]\,(1 - S[t]) + V_{reset}\,S[t] \\
    \text{soft reset } (v\_reset=None)\text{:}\quad V[t] &= H[t] - V_{th}\,S[t]

With soft reset ``V_reset`` is 0 in the leak. The backward pass uses the surrogate σ' in place of Θ';
``detach_reset=True`` stops the gradient through ``S`` in the reset term. These are SpikingJelly's ``LIFNode``
equations (``ParametricLIF``: ``ParametricLIFNode``, with ``k = sigmoid(w)``), so models and hyper-parameters
transfer. ``IF`` has no leak: ``H[t] = V[t-1] + X[t]``. ``V[-1] = V_reset`` (0 with soft reset).

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


def _reset_lines(hard: bool, detach_reset: bool) -> str:
    sr = "detach(s)" if detach_reset else "s"
    if hard:
        return f"sr = {sr}\nv = h * (1.0 - sr) + v_reset * sr"
    return f"sr = {sr}\nv = h - v_threshold * sr"


@memoize
def lif_dynamics(hard_reset: bool, decay_input: bool, detach_reset: bool, leak: bool, surrogate_key: str) -> Dynamics:
    """The LIF family's dynamics for one combination of options (``leak=False`` gives IF)."""
    surrogate_cls = {cls.__name__: cls for cls in surrogates.ALL}[surrogate_key]
    rest = "v_reset" if hard_reset else "0.0"
    if not leak:
        charge = "h = v + x"
        charge_adjoint = "gx = gh\ng_v = gh"
    elif decay_input:
        charge = f"h = v + (x - (v - {rest})) * decay" if hard_reset else "h = v + (x - v) * decay"
        # dH/dk = X - (V - V_reset) = (H - V) / k: recovered from H, so X need not be kept for the backward.
        charge_adjoint = "gx = gh * decay\ng_decay += gh * (h - v) / decay\ng_v = gh * (1.0 - decay)"
    else:
        charge = f"h = v - (v - {rest}) * decay + x" if hard_reset else "h = v - v * decay + x"
        charge_adjoint = f"gx = gh\ng_decay += -(gh * (v - {rest}))\ng_v = gh * (1.0 - decay)"
    if hard_reset:
        through_h = "g_v * (1.0 - s)"
        through_s = "gs" if detach_reset else "gs + g_v * (v_reset - h)"
    else:
        through_h = "g_v"
        through_s = "gs" if detach_reset else "gs - g_v * v_threshold"
    backward = f"sgv = sg(h - v_threshold)\ngh = {through_h} + ({through_s}) * sgv\n{charge_adjoint}"
    key = f"lif[{'hard' if hard_reset else 'soft'},{'decay_input' if decay_input else 'decay_v'},{'detach' if detach_reset else 'attach'},{'leak' if leak else 'noleak'},{surrogate_key}]"
    return Dynamics(
        key=key,
        states=("v",),
        lane_params=("decay",) if leak else (),
        scalars=("v_threshold", "v_reset") if hard_reset else ("v_threshold",),
        saved=("h",),
        forward=f"{charge}\ns = spike(h - v_threshold)\n{_reset_lines(hard_reset, detach_reset)}",
        restore=_reset_lines(hard_reset, False),
        backward=backward,
        fire="s = spike(h - v_threshold)",
        surrogate=surrogate_cls.program,
        surrogate_scalars=surrogate_cls.parameter_names,
    )


class _LIFBase(SpikingNeuron):
    """Options shared by the LIF family."""

    _leak = True

    def __init__(self, *, v_threshold: float, v_reset: float | None, decay_input: bool, detach_reset: bool,
                 surrogate, backend: str, check_finite: bool):
        super().__init__(surrogate=surrogate, backend=backend, check_finite=check_finite)
        self.v_threshold = finite_float("v_threshold", v_threshold)
        self.v_reset = None if v_reset is None else finite_float("v_reset", v_reset)
        self.decay_input = bool(decay_input)
        self.detach_reset = bool(detach_reset)

    def dynamics(self) -> Dynamics:
        return lif_dynamics(self.v_reset is not None, self.decay_input, self.detach_reset, self._leak, self.surrogate.key)

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
        tau_t = torch.as_tensor(tau, dtype=torch.get_default_dtype()).clone()
        if not torch.isfinite(tau_t).all() or (tau_t <= 0).any():
            raise ValueError(f"tau: expected finite values > 0, got {tau!r}")
        self.register_buffer("tau", tau_t)
        self._prepare()

    def lane_parameters(self, dtype: torch.dtype) -> dict[str, torch.Tensor]:
        return {"decay": 1.0 / self.tau.to(dtype)}

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

    _leak = False

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
