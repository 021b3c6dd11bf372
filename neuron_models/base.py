"""Shared machinery of the spiking neuron modules: input checks, state handling, backend dispatch.

A neuron module declares its dynamics once (a :class:`snn.kernels.dynamics.Dynamics`); this base class turns it
into a multi-step layer over time-major tensors ``[T, B, ...]``:

* ``neuron(x)`` runs all ``T`` steps from rest and returns the spikes ``[T, B, ...]``; no state is left behind.
* ``neuron(x, state)`` continues from ``state`` and returns ``(spikes, new_state)`` (streaming, Norse style).
* ``neuron.run(x, state=None, record=True)`` also returns the state sequences (e.g. the membrane ``[T, B, ...]``).
* ``neuron.step(x_t, state)`` is the single-step form over ``[B, ...]``.
* ``reset()`` exists (and does nothing, there is no hidden state) so ``spikingjelly...functional.reset_net``
  keeps working on models that contain these modules.
"""
from __future__ import annotations

import math
from typing import Any, NamedTuple

import torch
from torch import nn

from snn import surrogate as surrogates
from snn.kernels import backends, fused, reference
from snn.kernels.dynamics import Dynamics

NeuronState = dict  # state variable name -> tensor shaped like one time step of the input, e.g. {"v": [B, N]}


class NeuronOutput(NamedTuple):
    spikes: torch.Tensor
    state: NeuronState
    recorded: NeuronState | None  # state after every step, [T, ...] each, when asked for


def positive_float(name: str, value: Any) -> float:
    try:
        value = float(value)
    except (TypeError, ValueError):
        raise TypeError(f"{name}: expected a number, got {type(value).__name__}") from None
    if not math.isfinite(value) or value <= 0:
        raise ValueError(f"{name}: expected a finite number > 0, got {value!r}")
    return value


def finite_float(name: str, value: Any) -> float:
    try:
        value = float(value)
    except (TypeError, ValueError):
        raise TypeError(f"{name}: expected a number, got {type(value).__name__}") from None
    if math.isnan(value):
        raise ValueError(f"{name}: expected a number, got NaN")
    return value


@torch._dynamo.disable
def _run_fused(dynamics, runner, x2d, lane_params, states, scalars, record):
    # Fused kernels are opaque to torch.compile: the compiled graph breaks here and calls them eagerly.
    return fused.run(dynamics, runner, x2d, lane_params, states, scalars, record)


class SpikingNeuron(nn.Module):
    """Base class of neuron modules. Subclasses implement :meth:`dynamics`, :meth:`lane_parameters`,
    :meth:`scalar_values` and :meth:`initial_values`."""

    def __init__(self, *, surrogate: surrogates.Surrogate | str | None, backend: str, check_finite: bool):
        super().__init__()
        self.surrogate = surrogates.resolve(surrogate)
        self.backend = backends.check_name(backend)
        self.check_finite = bool(check_finite)
        self._check_surrogate_backend()

    # -- to be provided by each neuron -------------------------------------------------------------------------
    def dynamics(self) -> Dynamics:
        raise NotImplementedError

    def lane_parameters(self, dtype: torch.dtype) -> dict[str, torch.Tensor]:
        """Per-neuron tensors (broadcastable to one step's feature shape), in ``dynamics().lane_params`` order,
        computed in ``dtype`` (the input's), so a float64 input never sees a float32-rounded decay."""
        return {}

    def scalar_values(self) -> dict[str, float]:
        """Runtime constants, in ``dynamics().scalars`` order."""
        return {}

    def initial_values(self) -> dict[str, float]:
        """The resting value of each state variable."""
        raise NotImplementedError

    def _prepare(self) -> None:
        """Build the declaration and its reference step now (subclasses call this at the end of ``__init__``),
        so that ``torch.compile`` finds them cached and traces the forward as one graph."""
        reference.step_function(self.dynamics())

    # -- public API -------------------------------------------------------------------------------------------
    def initial_state(self, like: torch.Tensor) -> NeuronState:
        """The resting state for one time step shaped like ``like`` (``[B, ...]``)."""
        return {name: torch.full_like(like, value) for name, value in self.initial_values().items()}

    def forward(self, x: torch.Tensor, state: NeuronState | None = None):
        if state is None and self.step_mode == "s":
            raise RuntimeError(
                f"{type(self).__name__}: step_mode was set to 's' (e.g. by spikingjelly's functional.set_step_mode), "
                "but snn neurons are multi-step: forward(x) reads x as [T, B, ...] and starts from rest. For "
                "single-step use wrap the neuron in snn.interop.SingleStepNeuron(neuron) (it keeps the state between "
                "calls until reset()), or call neuron.step(x_t, state); set step_mode back to 'm' otherwise."
            )
        out = self.run(x, state)
        return out.spikes if state is None else (out.spikes, out.state)

    def step(self, x: torch.Tensor, state: NeuronState | None = None) -> tuple[torch.Tensor, NeuronState]:
        """One time step: ``x`` ``[B, ...]`` → ``(spikes [B, ...], state)``."""
        if not isinstance(x, torch.Tensor):
            raise TypeError(f"x: expected a torch.Tensor, got {type(x).__name__}")
        out = self.run(x.unsqueeze(0), state)
        return out.spikes[0], out.state

    def run(self, x: torch.Tensor, state: NeuronState | None = None, record: bool = False) -> NeuronOutput:
        """Run all steps of ``x`` ``[T, B, ...]`` from ``state`` (rest when ``None``)."""
        self._check_input(x)
        dynamics = self.dynamics()
        step_shape = x.shape[1:]
        if state is not None:
            init = [self._check_state(state, x)[name] for name in dynamics.states]
        else:  # from rest: each state a constant, a stride-0 view of one value (no per-neuron tensor to fill)
            rest = self.initial_values()
            init = [x.new_full((), rest[name]).expand(step_shape) for name in dynamics.states]
        params = list(self.lane_parameters(x.dtype).values())
        scalars = list(self.scalar_values().values()) + list(self.surrogate.kernel_parameters)
        for name, p in zip(dynamics.lane_params, params):
            self._check_param(name, p, x)
        self._check_surrogate_backend()
        # a torch-only surrogate runs on the reference (backend="auto" falls back to it; explicit choices raised above)
        fusable = x.shape[0] > 0 and dynamics.declared_surrogate
        runner = backends.select(self.backend, x) if fusable else None
        if runner is None:
            if state is None:
                init = [t.contiguous() for t in init]
            params = [p.to(x.dtype) for p in params]
            spikes, finals, rec = reference.run(dynamics, x, init, params, scalars, record)
        else:
            T, L = x.shape[0], math.prod(step_shape)
            lanes = [p.to(x.dtype).expand(step_shape).reshape(L) for p in params]
            flat_init = [s.reshape(L) for s in init]
            spikes, finals, rec = _run_fused(dynamics, runner, x.reshape(T, L), lanes, flat_init, scalars, record)
            spikes = spikes.view(x.shape)
            finals = tuple(f.view(step_shape) for f in finals)
            rec = tuple(r.view(x.shape) for r in rec) if rec is not None else None
        new_state = dict(zip(dynamics.states, finals))
        recorded = dict(zip(dynamics.states, rec)) if record and rec is not None else None
        return NeuronOutput(spikes, new_state, recorded)

    def reset(self) -> None:
        """No hidden state to clear: every forward starts from rest unless a state is passed."""

    @property
    def step_mode(self) -> str:
        """Always ``"m"``: ``forward`` takes a whole sequence ``[T, B, ...]``.

        SpikingJelly's ``functional.set_step_mode(net, "s")`` sets this attribute on every module that has one; a
        plain neuron cannot honour it (it would read ``[B, N]`` as ``T = B`` steps), so forward then raises. Wrap the
        neuron in :class:`snn.interop.SingleStepNeuron` (which keeps the state between calls) or call
        :meth:`step` with an explicit state.
        """
        return self.__dict__.get("_step_mode", "m")

    @step_mode.setter
    def step_mode(self, value: str) -> None:
        if value not in ("s", "m"):
            raise ValueError(f"step_mode: expected 's' or 'm', got {value!r}")
        self.__dict__["_step_mode"] = value

    # -- checks -----------------------------------------------------------------------------------------------
    def _check_surrogate_backend(self) -> None:
        if not self.surrogate.declared and self.backend in ("numba", "cupy"):
            raise ValueError(
                f"{type(self).__name__}: surrogate {self.surrogate!r} is a torch function, which only the torch "
                f"reference backend can run, but backend={self.backend!r}. Use backend='torch' (or 'auto', which "
                "falls back to it), or give the surrogate a `program` (see snn.surrogate.Surrogate) so the fused "
                "kernels can be generated from it."
            )

    def _check_input(self, x: torch.Tensor) -> None:
        name = type(self).__name__
        if not isinstance(x, torch.Tensor):
            raise TypeError(f"{name}: x must be a torch.Tensor, got {type(x).__name__}")
        if not x.is_floating_point():
            raise TypeError(f"{name}: x must be a floating-point tensor, got dtype {x.dtype}")
        if x.dim() < 2:
            raise ValueError(f"{name}: x must be time-major [T, B, ...] with at least 2 dimensions, got shape {tuple(x.shape)}")
        if self.check_finite and not torch.isfinite(x).all():
            raise ValueError(f"{name}: x contains NaN or infinite values (check_finite=True)")

    def _check_state(self, state: NeuronState, x: torch.Tensor) -> NeuronState:
        name = type(self).__name__
        expected = self.dynamics().states
        if not isinstance(state, dict) or set(state) != set(expected):
            got = sorted(state) if isinstance(state, dict) else type(state).__name__
            raise ValueError(f"{name}: state must be a dict with keys {list(expected)}, got {got}")
        for key in expected:
            value = state[key]
            if not isinstance(value, torch.Tensor):
                raise TypeError(f"{name}: state[{key!r}] must be a tensor, got {type(value).__name__}")
            if value.shape != x.shape[1:]:
                raise ValueError(f"{name}: state[{key!r}] must have shape {tuple(x.shape[1:])} (one step of x), got {tuple(value.shape)}")
            if value.device != x.device:
                raise ValueError(f"{name}: state[{key!r}] is on {value.device} but x is on {x.device}")
            if value.dtype != x.dtype:
                raise TypeError(f"{name}: state[{key!r}] has dtype {value.dtype} but x has {x.dtype}")
        return state

    def _check_param(self, pname: str, p: torch.Tensor, x: torch.Tensor) -> None:
        try:
            shape = torch.broadcast_shapes(p.shape, x.shape[1:])
        except RuntimeError:
            raise ValueError(
                f"{type(self).__name__}: parameter {pname} of shape {tuple(p.shape)} does not broadcast to one step "
                f"of the input {tuple(x.shape[1:])}"
            ) from None
        if shape != x.shape[1:]:
            raise ValueError(
                f"{type(self).__name__}: parameter {pname} of shape {tuple(p.shape)} would enlarge the input step shape {tuple(x.shape[1:])}"
            )
        if p.device != x.device:
            raise ValueError(f"{type(self).__name__}: parameter {pname} is on {p.device} but x is on {x.device}; move the module with .to()")
