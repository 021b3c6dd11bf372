r"""Adaptive LIF: a LIF neuron whose threshold rises after each spike and relaxes back (Bellec et al. 2018).

Per time step, with membrane ``V``, adaptation ``A``, time constants ``τ`` and ``τ_a`` (steps):

.. math::

    H[t] &= \text{charge}(V[t-1], X[t]) \quad\text{(as LIF, with or without decay\_input)} \\
    \Theta[t] &= V_{th} + \beta\,A[t-1] \\
    S[t] &= \Theta_{step}(H[t] - \Theta[t]) \\
    V[t] &= H[t](1 - S[t]) + V_{reset} S[t] \ \text{(hard)} \quad\text{or}\quad H[t] - \Theta[t] S[t] \ \text{(soft)} \\
    A[t] &= A[t-1] + (S[t] - A[t-1]) / \tau_a

``A`` is a low-pass filter of the neuron's own spikes (it starts at 0), so ``β`` sets how much one recent spike
raises the threshold and ``τ_a`` how long it lasts. The gradient flows through the threshold and through ``A``
(only the reset term obeys ``detach_reset``). Forward state saved for the backward: ``H`` and ``A[t-1]``, two
floats per neuron-step. Fixed time constants are divided by (as SpikingJelly's ``LIFNode`` divides by ``τ``);
learnable ones (``learn_tau=True``, ``1/τ = sigmoid(w)``) are multiplied by (as its ``ParametricLIFNode``). The
charge is the LIF family's (:mod:`snn.neuron_models.charge`).
"""
from __future__ import annotations


import torch
from torch import nn

from snn import surrogate as surrogates
from snn.kernels.dynamics import Dynamics
from snn.kernels.memo import memoize
from snn.neuron_models.base import SpikingNeuron, finite_float, positive_float
from snn.neuron_models.charge import charge


def adaptive_lif_dynamics(hard_reset: bool, decay_input: bool, detach_reset: bool,
                          surrogate: surrogates.Surrogate | str | None = None, learn_tau: bool = False) -> Dynamics:
    """The adaptive LIF's dynamics for one combination of options. Fixed time constants (``learn_tau=False``) are
    lane parameters ``tau``, ``tau_adapt`` and divided by (as SpikingJelly's LIFNode divides by τ); learnable ones
    are ``decay = 1/τ``, ``decay_adapt = 1/τ_a`` and multiplied (as its ParametricLIFNode)."""
    return _adaptive_lif_dynamics(bool(hard_reset), bool(decay_input), bool(detach_reset),
                                  surrogates.resolve(surrogate).form, bool(learn_tau))


@memoize
def _adaptive_lif_dynamics(hard_reset: bool, decay_input: bool, detach_reset: bool, form: surrogates.SurrogateForm,
                           learn_tau: bool) -> Dynamics:
    ch = charge(hard_reset, decay_input, "multiply" if learn_tau else "divide")
    if learn_tau:  # a[t] = a + (s - a) * k_a
        adapt_param, adapt = "decay_adapt", "a = {a} + (s - {a}) * decay_adapt"
        adapt_adjoint = ["g_decay_adapt += g_a * (s - a)", "g_a = g_a * (1.0 - decay_adapt) + gtheta * beta"]
        through_a = "g_a * decay_adapt"
    else:  # a[t] = a + (s - a) / τ_a
        adapt_param, adapt = "tau_adapt", "a = {a} + (s - {a}) / tau_adapt"
        adapt_adjoint = ["g_tau_adapt += -(g_a * (s - a)) / (tau_adapt * tau_adapt)",
                         "g_a = g_a - g_a / tau_adapt + gtheta * beta"]
        through_a = "g_a / tau_adapt"
    sr = "detach(s)" if detach_reset else "s"
    reset = "v = h * (1.0 - sr) + v_reset * sr" if hard_reset else "v = h - theta * sr"
    forward = (f"adapt_old = a\n{ch.forward}\ntheta = v_threshold + beta * a\ns = spike(h - theta)\nsr = {sr}\n"
               f"{reset}\n{adapt.format(a='a')}")
    restore = f"theta = v_threshold + beta * adapt_old\n{reset.replace('sr', 's')}\n{adapt.format(a='adapt_old')}"
    if hard_reset:
        gs_reset = "" if detach_reset else " + g_v * (v_reset - h)"
        gh_direct, gtheta_reset = "g_v * (1.0 - s)", ""
    else:
        gs_reset = "" if detach_reset else " - g_v * theta"
        gh_direct, gtheta_reset = "g_v", " - g_v * s"
    backward = "\n".join([
        "theta = v_threshold + beta * a",
        "sgv = sg(h - theta)",
        f"gsum = gs + {through_a}{gs_reset}",
        f"gh = {gh_direct} + gsum * sgv",
        f"gtheta = -(gsum * sgv){gtheta_reset}",
        *adapt_adjoint,
        ch.adjoint,
    ])
    return Dynamics(
        key=f"alif[{'hard' if hard_reset else 'soft'},{'decay_input' if decay_input else 'decay_v'},{'detach' if detach_reset else 'attach'},{'multiply' if learn_tau else 'divide'},{form.key}]",
        states=("v", "a"),
        lane_params=(ch.lane_param, adapt_param),
        scalars=("v_threshold", "beta", "v_reset") if hard_reset else ("v_threshold", "beta"),
        saved=("h", "adapt_old"),
        forward=forward,
        restore=restore,
        backward=backward,
        fire="theta = v_threshold + beta * adapt_old\ns = spike(h - theta)",
        surrogate=form.program,
        surrogate_scalars=form.parameter_names,
        surrogate_function=form.function,
    )


class AdaptiveLIF(SpikingNeuron):
    r"""LIF with an adaptive threshold (see the module docstring for the equations).

    Args:
        tau: membrane time constant in steps (float or per-neuron tensor).
        tau_adapt: adaptation time constant in steps (float or per-neuron tensor), typically ≫ ``tau``.
        beta: threshold increase per unit of adaptation (≥ 0; 0 gives a plain LIF).
        learn_tau: make ``tau`` and ``tau_adapt`` learnable (through ``k = sigmoid(w)``), per neuron when
            ``shape`` is given.
        other arguments: as :class:`snn.neuron_models.LIF`.
    """

    def __init__(self, tau: float = 20.0, tau_adapt: float = 200.0, beta: float = 1.8, v_threshold: float = 1.0,
                 v_reset: float | None = None, decay_input: bool = True, detach_reset: bool = False,
                 learn_tau: bool = False, shape: tuple[int, ...] = (), surrogate=None, backend: str = "auto",
                 check_finite: bool = False):
        super().__init__(surrogate=surrogate, backend=backend, check_finite=check_finite)
        tau, tau_adapt = positive_float("tau", tau), positive_float("tau_adapt", tau_adapt)
        self.beta = finite_float("beta", beta)
        if self.beta < 0:
            raise ValueError(f"beta: expected a value >= 0, got {beta!r}")
        self.v_threshold = finite_float("v_threshold", v_threshold)
        self.v_reset = None if v_reset is None else finite_float("v_reset", v_reset)
        self.decay_input, self.detach_reset, self.learn_tau = bool(decay_input), bool(detach_reset), bool(learn_tau)
        if learn_tau:
            for name, value in (("tau", tau), ("tau_adapt", tau_adapt)):
                if value <= 1.0:
                    raise ValueError(f"{name}: learnable time constants must be > 1, got {value!r}")
            self.w = nn.Parameter(torch.full(tuple(shape), -torch.log(torch.tensor(tau - 1.0)).item()))
            self.w_adapt = nn.Parameter(torch.full(tuple(shape), -torch.log(torch.tensor(tau_adapt - 1.0)).item()))
        else:
            self.register_buffer("tau", torch.full(tuple(shape), tau))
            self.register_buffer("tau_adapt", torch.full(tuple(shape), tau_adapt))
        self._prepare()

    def dynamics(self) -> Dynamics:
        return adaptive_lif_dynamics(self.v_reset is not None, self.decay_input, self.detach_reset, self.surrogate, self.learn_tau)

    def lane_parameters(self, dtype: torch.dtype) -> dict[str, torch.Tensor]:
        if self.learn_tau:
            return {"decay": torch.sigmoid(self.w.to(dtype)), "decay_adapt": torch.sigmoid(self.w_adapt.to(dtype))}
        return {"tau": self.tau.to(dtype), "tau_adapt": self.tau_adapt.to(dtype)}

    def scalar_values(self) -> dict[str, float]:
        values = {"v_threshold": self.v_threshold, "beta": self.beta}
        if self.v_reset is not None:
            values["v_reset"] = self.v_reset
        return values

    def initial_values(self) -> dict[str, float]:
        return {"v": self.v_reset if self.v_reset is not None else 0.0, "a": 0.0}

    def extra_repr(self) -> str:
        reset = "soft" if self.v_reset is None else f"v_reset={self.v_reset}"
        return (f"beta={self.beta}, v_threshold={self.v_threshold}, {reset}, decay_input={self.decay_input}, "
                f"detach_reset={self.detach_reset}, learn_tau={self.learn_tau}, surrogate={self.surrogate}, "
                f"backend={self.backend!r}")
