r"""The Expressive Leaky Memory neuron (Spieler et al., ICLR 2024) and Branch-ELM.

Per time step ``t`` (``Δt`` in the same unit as the time constants; decays ``κ = exp(-Δt / max(τ, 10⁻⁶))``):

.. math::

    s_t &= \kappa_s \odot s_{t-1} + w_s \odot x^{syn}_t
        && \text{synapse traces, } w_s = \mathrm{relu}(\tilde w_s) \ge 0 \\
    b_t &= \textstyle\sum_{j \in \text{branch}} s_{t,j}
        && \text{branch sums (synapse } j \text{ in branch } j \,/\!/\, \text{synapses\_per\_branch)} \\
    \Delta m_t &= 1.7159 \tanh\!\big(\tfrac23\,\mathrm{MLP}([\,b_t,\ \kappa_m \odot m_{t-1}\,])\big) \\
    m_t &= \kappa_m \odot m_{t-1} + \lambda\,(1 - \kappa_m) \odot \Delta m_t
        && \text{leaky memory, } d_m \text{ units} \\
    y_t &= W_y\, m_t + b_y && \text{linear readout of the same step's memory}

``x^{syn}_t`` is the input routed to the synapses (:mod:`snn.neuron_models.elm_routing`); plain ELM has one
synapse per input and per branch. The MLP has ``mlp_layers`` hidden layers of width ``mlp_hidden`` (default
``2 d_m``) with ReLU (or SiLU) and a linear output layer of ``d_m`` units. ``τ_m`` is log-spaced over
``[tau_m_min, tau_m_max]`` and parametrised as ``τ_m = (τ_max - τ_min)·sigmoid(θ) + τ_min`` (learnable with
``learn_tau_m``); ``τ_s`` is fixed. States start at 0. These are the equations and initialisation of the authors'
code (AaronSpieler/elmneuron, ``ELM``), including its easy-to-miss details: ``w_s`` multiplies the input before
the leak, the memory enters the MLP already multiplied by ``κ_m``, and the readout has a bias and no nonlinearity.

Learnable parameters: ``w_s_raw`` ``[n_syn]`` (init 0.5), the MLP's ``Linear`` layers, ``tau_m_raw`` ``[d_m]`` (only
with ``learn_tau_m``), the readout ``readout`` (``Linear(d_m, out_features)``). Buffers: ``tau_s`` ``[n_syn]``,
``synapse_index`` / ``synapse_mask`` ``[n_syn]`` (the routing).

Backends: ``"torch"`` is the reference loop (:mod:`snn.kernels.elm_reference`); ``"numba"`` the fused CPU kernels
(:mod:`snn.kernels.elm_numba`); ``"cupy"`` the fused CUDA kernels (:mod:`snn.kernels.elm_cuda`: one persistent
block per sample, float32/float16/bfloat16); ``"auto"`` picks cupy for CUDA inputs when CuPy imports, numba for
CPU float32/float64 inputs, else torch.
"""
from __future__ import annotations

import functools
import math
from typing import NamedTuple

import torch
from torch import nn

from snn.kernels import backends, elm_reference
from snn.kernels.elm_reference import ACTIVATIONS, ELMTensors
from snn.neuron_models.base import positive_float
from snn.neuron_models.elm_routing import ROUTINGS, make_routing

ELMState = dict  # {"s": [B, n_syn] synapse traces, "m": [B, d_m] memory}

__all__ = ["ELM", "ELMOutput", "ELMState"]


class ELMOutput(NamedTuple):
    output: torch.Tensor  # y [T, B, C_out]
    state: ELMState  # after the last step
    memory: torch.Tensor | None  # m [T, B, d_m], when asked for


def _positive_int(name: str, value) -> int:
    if not isinstance(value, int) or isinstance(value, bool) or value < 1:
        raise ValueError(f"{name}: expected a positive int, got {value!r}")
    return value


class ELM(nn.Module):
    r"""Expressive Leaky Memory neuron, multi-step over time-major input (equations: module docstring).

    Args:
        in_features: input channels ``C_in``.
        out_features: readout channels ``C_out``.
        memory: memory units ``d_m``.
        mlp_layers: hidden layers of the MLP (≥ 1).
        mlp_hidden: width of each hidden layer (default ``2 · memory``).
        activation: ``"relu"`` or ``"silu"``.
        lambda_value: scale λ of the memory update.
        tau_s: synapse time constant (same unit as ``dt``).
        w_s_init: initial (pre-ReLU) synaptic weight.
        tau_m_min, tau_m_max: range of the log-spaced memory time constants (``min < max``, both > 0).
        learn_tau_m: learn ``τ_m`` through the scaled sigmoid.
        dt: time step ``Δt`` (e.g. 10 with 10 ms bins and time constants in ms).
        branches: branches (default ``in_features``: plain ELM).
        synapses_per_branch: synapses per branch.
        routing: ``"identity"`` (plain ELM), ``"random"`` or ``"window"`` (Branch-ELM); see
            :mod:`snn.neuron_models.elm_routing`. ``None``: ``"identity"`` when ``branches × synapses_per_branch
            == in_features``, otherwise an error.
        allow_unrouted: accept inputs that reach no synapse (``"random"`` then draws like the reference code).
        backend: ``"auto"``, ``"torch"``, ``"numba"`` or ``"cupy"``.
        generator: random generator for the random routing (default: torch's global one).

    Shapes: ``forward(x [T, B, C_in]) -> y [T, B, C_out]``; ``forward(x, state) -> (y, state)``;
    ``run(x, state=None, record=True)`` also returns the memory ``[T, B, d_m]``.

    Example::

        elm = snn.neuron_models.ELM(140, 20, memory=20, dt=10.0, tau_m_max=500.0)
        y = elm(torch.rand(100, 8, 140))           # [100, 8, 20]
    """

    def __init__(self, in_features: int, out_features: int, memory: int = 100, mlp_layers: int = 1,
                 mlp_hidden: int | None = None, activation: str = "relu", lambda_value: float = 5.0,
                 tau_s: float = 5.0, w_s_init: float = 0.5, tau_m_min: float = 1.0, tau_m_max: float = 1000.0,
                 learn_tau_m: bool = False, dt: float = 1.0, branches: int | None = None,
                 synapses_per_branch: int = 1, routing: str | None = None, allow_unrouted: bool = False,
                 backend: str = "auto", generator: torch.Generator | None = None) -> None:
        super().__init__()
        self.in_features = _positive_int("in_features", in_features)
        self.out_features = _positive_int("out_features", out_features)
        self.memory = _positive_int("memory", memory)
        self.mlp_layers = _positive_int("mlp_layers", mlp_layers)
        self.mlp_hidden = _positive_int("mlp_hidden", 2 * memory if mlp_hidden is None else mlp_hidden)
        if activation not in ACTIVATIONS:
            raise ValueError(f"activation: expected one of {ACTIVATIONS}, got {activation!r}")
        self.activation = activation
        self.lambda_value = positive_float("lambda_value", lambda_value)
        self.dt = positive_float("dt", dt)
        self.tau_m_min = positive_float("tau_m_min", tau_m_min)
        self.tau_m_max = positive_float("tau_m_max", tau_m_max)
        if self.tau_m_min >= self.tau_m_max:
            raise ValueError(f"tau_m_min, tau_m_max: expected tau_m_min < tau_m_max, got {tau_m_min!r} >= {tau_m_max!r}")
        self.branches = _positive_int("branches", in_features if branches is None else branches)
        self.synapses_per_branch = _positive_int("synapses_per_branch", synapses_per_branch)
        self.n_synapses = self.branches * self.synapses_per_branch
        if routing is None:
            if self.n_synapses != self.in_features:
                raise ValueError(
                    f"routing: branches × synapses_per_branch = {self.n_synapses} differs from in_features = "
                    f"{self.in_features}; pass routing='random' or 'window' for Branch-ELM")
            routing = "identity"
        if routing not in ROUTINGS:
            raise ValueError(f"routing: expected one of {ROUTINGS} or None, got {routing!r}")
        self.routing = routing
        self.backend = backends.check_name(backend)
        self.learn_tau_m = bool(learn_tau_m)

        index, mask = make_routing(routing, self.in_features, self.branches, self.synapses_per_branch,
                                   allow_unrouted, generator)
        self.register_buffer("synapse_index", index)
        self.register_buffer("synapse_mask", mask)
        self.w_s_raw = nn.Parameter(torch.full((self.n_synapses,), float(w_s_init)))
        self.register_buffer("tau_s", torch.full((self.n_synapses,), positive_float("tau_s", tau_s)))
        sizes = [self.branches + self.memory] + [self.mlp_hidden] * self.mlp_layers + [self.memory]
        self.mlp = nn.ModuleList(nn.Linear(a, b) for a, b in zip(sizes[:-1], sizes[1:]))
        self.readout = nn.Linear(self.memory, self.out_features)
        # τ_m log-spaced just inside (min, max), stored through the inverse of the scaled sigmoid (reference init)
        lo, hi = self.tau_m_min, self.tau_m_max
        tau_m = torch.logspace(math.log10(lo + 1e-6), math.log10(hi - 1e-6), self.memory, dtype=torch.float64)
        tau_m = tau_m.clamp(lo + 1e-6, hi - 1e-6)
        theta = torch.log((tau_m - lo) / (hi - tau_m)).to(torch.get_default_dtype())
        self.tau_m_raw = nn.Parameter(theta, requires_grad=self.learn_tau_m)

    # -- derived quantities -----------------------------------------------------------------------------------
    def tau_m(self, dtype: torch.dtype | None = None) -> torch.Tensor:
        """Memory time constants ``[d_m]`` (the scaled sigmoid of ``tau_m_raw``)."""
        theta = self.tau_m_raw if dtype is None else self.tau_m_raw.to(dtype)
        return (self.tau_m_max - self.tau_m_min) * torch.sigmoid(theta) + self.tau_m_min

    def tensors(self, dtype: torch.dtype) -> ELMTensors:
        """The run's parameters in ``dtype`` (differentiable with respect to the module's parameters)."""
        kappa_m = torch.exp(-self.dt / self.tau_m(dtype).clamp_min(1e-6))
        kappa_s = torch.exp(-self.dt / self.tau_s.to(dtype).clamp_min(1e-6))
        return ELMTensors(
            w_s=torch.relu(self.w_s_raw.to(dtype)), kappa_s=kappa_s, kappa_m=kappa_m, lam=self.lambda_value,
            weights=tuple(layer.weight.to(dtype) for layer in self.mlp),
            biases=tuple(layer.bias.to(dtype) for layer in self.mlp), activation=self.activation,
            w_y=self.readout.weight.to(dtype), b_y=self.readout.bias.to(dtype), n_branch=self.branches)

    def route(self, x: torch.Tensor) -> torch.Tensor:
        """The synaptic input ``[T, B, n_syn]`` from ``x`` ``[T, B, C_in]``."""
        if self.routing == "identity":
            return x
        return x.index_select(-1, self.synapse_index) * self.synapse_mask.to(x.dtype)

    def initial_state(self, batch: int, like: torch.Tensor) -> ELMState:
        """Zero traces and memory for ``batch`` samples, on ``like``'s device and dtype."""
        return {"s": like.new_zeros(batch, self.n_synapses), "m": like.new_zeros(batch, self.memory)}

    # -- running ----------------------------------------------------------------------------------------------
    def forward(self, x: torch.Tensor, state: ELMState | None = None):
        out = self.run(x, state)
        return out.output if state is None else (out.output, out.state)

    def step(self, x: torch.Tensor, state: ELMState | None = None) -> tuple[torch.Tensor, ELMState]:
        """One time step: ``x`` ``[B, C_in]`` → ``(y [B, C_out], state)``."""
        if not isinstance(x, torch.Tensor) or x.dim() != 2:
            raise ValueError(f"x: expected a [B, C_in] tensor, got {getattr(x, 'shape', type(x).__name__)}")
        out = self.run(x.unsqueeze(0), state)
        return out.output[0], out.state

    def run(self, x: torch.Tensor, state: ELMState | None = None, record: bool = False) -> ELMOutput:
        """All steps of ``x`` ``[T, B, C_in]`` from ``state`` (zeros when ``None``)."""
        self._check_input(x)
        B = x.shape[1]
        state = self.initial_state(B, x) if state is None else self._check_state(state, x)
        p = self.tensors(x.dtype)
        x_syn = self.route(x)
        runner = None if self.backend == "torch" else self._fused_runner(x)
        if runner is None:
            y, memory, s, m = elm_reference.run(x_syn, state["s"], state["m"], p)
        else:
            y, memory, s, m = runner(x_syn, state["s"], state["m"], p)
        return ELMOutput(y, {"s": s, "m": m}, memory if record else None)

    def _fused_runner(self, x: torch.Tensor):
        if self.backend == "cupy" or (self.backend == "auto" and x.device.type == "cuda"):
            runner = backends.select(self.backend, x)  # raises with the reason and the fix when cupy cannot run
            if runner is None:
                return None
            from snn.kernels import elm_cuda

            return functools.partial(elm_cuda.run, runner=runner)
        return self._cpu_runner(x)

    def _cpu_runner(self, x: torch.Tensor):
        fused = x.device.type == "cpu" and x.dtype in (torch.float32, torch.float64)
        if self.backend == "numba" and not fused:
            raise backends.BackendUnavailable(
                f"backend='numba' runs float32/float64 CPU tensors; the input is {x.dtype} on {x.device}. Use 'torch'.")
        if not fused:
            return None
        try:
            from snn.kernels import elm_numba
        except Exception as err:
            if self.backend == "numba":
                raise backends.BackendUnavailable(f"the numba backend failed to import: {err}. Use backend='torch'.") from err
            return None
        return elm_numba.run

    def mlp_macs_per_step(self) -> int:
        """Multiply-accumulates per sample and step of everything after the synapses: the MLP on
        ``[b_t, κ_m ⊙ m_{t-1}]`` and the readout ``W_y m_t`` (elementwise decays and the tanh not included)."""
        sizes = [self.branches + self.memory] + [self.mlp_hidden] * self.mlp_layers + [self.memory]
        return sum(a * b for a, b in zip(sizes[:-1], sizes[1:])) + self.memory * self.out_features

    def count_operations(self, inputs: tuple, output, ctx) -> list:
        """Energy counting protocol (:mod:`snn.energy.protocol`), per real step: the synapses (each input element
        × the number of connected synapses reading it: synaptic operations for event input, MACs otherwise), and
        the dense MACs of the MLP and readout (:meth:`mlp_macs_per_step`), charged on the real-valued output."""
        from snn.energy.protocol import OpCount

        x = inputs[0]
        y = output[0] if isinstance(output, tuple) else output
        fanout = torch.zeros(self.in_features, dtype=x.dtype, device=x.device)
        fanout.index_add_(0, self.synapse_index, (self.synapse_mask != 0).to(x.dtype))
        mlp_params = sum(p.numel() for p in self.mlp.parameters()) + sum(p.numel() for p in self.readout.parameters())
        return [
            OpCount(x=x, fanout=fanout, kind="elm_synapse", params=self.n_synapses,
                    output_elements=float(self.branches), label="synapses"),
            OpCount(x=y, fanout=0.0, kind="elm_mlp", dense_macs=float(self.mlp_macs_per_step()), params=mlp_params,
                    output_elements=float(self.memory + self.out_features), label="mlp"),
        ]

    def reset(self) -> None:
        """No hidden state to clear: every forward starts from rest unless a state is passed."""

    # -- checks -----------------------------------------------------------------------------------------------
    def _check_input(self, x: torch.Tensor) -> None:
        if not isinstance(x, torch.Tensor):
            raise TypeError(f"ELM: x must be a torch.Tensor, got {type(x).__name__}")
        if not x.is_floating_point():
            raise TypeError(f"ELM: x must be a floating-point tensor, got dtype {x.dtype}")
        if x.dim() != 3 or x.shape[-1] != self.in_features:
            raise ValueError(f"ELM: x must be [T, B, in_features={self.in_features}], got shape {tuple(x.shape)}")
        if self.w_s_raw.device != x.device:
            raise ValueError(f"ELM: the module is on {self.w_s_raw.device} but x is on {x.device}; move it with .to()")

    def _check_state(self, state: ELMState, x: torch.Tensor) -> ELMState:
        if not isinstance(state, dict) or set(state) != {"s", "m"}:
            got = sorted(state) if isinstance(state, dict) else type(state).__name__
            raise ValueError(f"ELM: state must be a dict with keys ['m', 's'], got {got}")
        B = x.shape[1]
        for key, width in (("s", self.n_synapses), ("m", self.memory)):
            value = state[key]
            if not isinstance(value, torch.Tensor) or value.shape != (B, width):
                raise ValueError(f"ELM: state[{key!r}] must be a tensor of shape ({B}, {width}), got "
                                 f"{tuple(value.shape) if isinstance(value, torch.Tensor) else type(value).__name__}")
            if value.dtype != x.dtype or value.device != x.device:
                raise TypeError(f"ELM: state[{key!r}] is {value.dtype} on {value.device}, x is {x.dtype} on {x.device}")
        return state

    def extra_repr(self) -> str:
        return (f"in_features={self.in_features}, out_features={self.out_features}, memory={self.memory}, "
                f"mlp={self.mlp_layers}x{self.mlp_hidden} {self.activation}, lambda={self.lambda_value}, "
                f"tau_m=[{self.tau_m_min}, {self.tau_m_max}]{' learnable' if self.learn_tau_m else ''}, dt={self.dt}, "
                f"branches={self.branches}x{self.synapses_per_branch} ({self.routing}), backend={self.backend!r}")
