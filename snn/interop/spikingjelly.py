"""SpikingJelly interop: run existing SpikingJelly models on this package's neuron kernels.

:func:`from_spikingjelly` walks any ``nn.Module`` and replaces SpikingJelly 2.0's
``activation_based.neuron.LIFNode`` / ``ParametricLIFNode`` / ``IFNode`` with :class:`snn.LIF` /
:class:`snn.ParametricLIF` / :class:`snn.IF` carrying the same numerics:

==============================  ==================================================================
SpikingJelly                    here
==============================  ==================================================================
``tau``                         ``tau`` (LIF divides by ``τ`` in SpikingJelly's operation order, so float32
                                spikes are bit-identical for every ``τ``)
``w`` (PLIF)                    ``w`` copied (value, shape, dtype, device, ``requires_grad``)
``v_threshold``, ``v_reset``    same (numbers, or one-element tensors; so is ``tau``); ``v_reset=None`` is
                                the soft (subtractive) reset; per-neuron tensors are an error naming the
                                module
``decay_input``, ``detach_reset`` same
``surrogate_function``          ``ATan(α)``, ``Sigmoid(α)``, ``PiecewiseQuadratic(α)`` → ``Triangle(α)``,
                                ``SuperSpike(α)``; any other surrogate is an error
``step_mode='m'``               the neuron itself: ``[T, B, ...]`` in and out, each call from rest
``step_mode='s'``               :class:`SingleStepNeuron` around it (keeps the membrane between calls
                                until ``reset()``, like SpikingJelly's single-step nodes)
==============================  ==================================================================

A multi-step SpikingJelly node keeps its membrane between forward calls until ``functional.reset_net``;
the converted neuron starts every call from rest, which is what SpikingJelly computes when the model is
reset before each batch (the usual training loop).

Step mode. Convert the model in the step mode you will run it in. A node in ``step_mode='s'`` becomes a
:class:`SingleStepNeuron` (stateful, one step ``[B, ...]`` per call, cleared by ``reset_net``). Calling
``functional.set_step_mode(net, 's')`` *after* converting reaches the plain neurons too (they have a ``step_mode``
attribute for this reason): their ``forward`` then refuses to run, with a message, instead of reading ``[B, N]``
as ``T = B`` steps; wrap them in :class:`SingleStepNeuron` or convert the model after setting its step mode. Options without an equivalent here (``store_v_seq``,
explicit neuron precision, non-SpikingJelly or non-spiking surrogates, forward hooks such as monitors,
subclasses that may change the equations) raise :class:`UnsupportedModule` naming the module's path.

SpikingJelly is imported lazily, inside the function: ``import snn`` never imports it.
"""
from __future__ import annotations

from typing import Any

import torch
from torch import nn

from snn import surrogate as surrogates
from snn.neuron_models import IF, LIF, ParametricLIF, SpikingNeuron

_SURROGATES = {
    "ATan": surrogates.ATan,
    "Sigmoid": surrogates.Sigmoid,
    "PiecewiseQuadratic": surrogates.Triangle,
    "SuperSpike": surrogates.SuperSpike,
}
_NODE_NAMES = ("LIFNode", "ParametricLIFNode", "IFNode")


class UnsupportedModule(ValueError):
    """A SpikingJelly neuron uses an option that has no exact equivalent here; the message names its path."""


def _spikingjelly() -> tuple[Any, Any]:
    try:
        from spikingjelly.activation_based import neuron as sj_neuron
        from spikingjelly.activation_based import surrogate as sj_surrogate
    except ImportError as err:
        raise ImportError(
            f"from_spikingjelly needs SpikingJelly 2.x (`spikingjelly.activation_based`), which failed to import: {err}. "
            "Install it with `pip install spikingjelly==2.0.0` (use --no-deps on CPU-only torch builds)."
        ) from err
    return sj_neuron, sj_surrogate


def _convert_surrogate(path: str, function: Any, sj_surrogate: Any) -> surrogates.Surrogate:
    name = type(function).__name__
    if type(function).__module__ != sj_surrogate.__name__ or name not in _SURROGATES:
        raise UnsupportedModule(
            f"{path}: surrogate_function {type(function).__module__}.{name} has no equivalent; expected one of "
            f"spikingjelly.activation_based.surrogate.{{{', '.join(_SURROGATES)}}}"
        )
    if not getattr(function, "spiking", True):
        raise UnsupportedModule(f"{path}: surrogate_function {name} is in non-spiking (primitive) mode; expected spiking=True")
    alpha = function.alpha
    if isinstance(alpha, torch.Tensor):
        if alpha.numel() != 1 or alpha.requires_grad:
            raise UnsupportedModule(f"{path}: surrogate {name}.alpha must be a constant scalar, got a tensor of shape {tuple(alpha.shape)}")
        alpha = alpha.item()
    return _SURROGATES[name](float(alpha))


def _check_node(path: str, node: Any) -> None:
    if getattr(node, "store_v_seq", False):
        raise UnsupportedModule(f"{path}: store_v_seq=True is not supported; read the membrane with snn neurons' run(x, record=True)")
    if getattr(node, "_neuron_precision", None) is not None:
        raise UnsupportedModule(f"{path}: explicit neuron precision {node._neuron_precision!r} is not supported; expected None")
    if node._forward_hooks or node._forward_pre_hooks:
        raise UnsupportedModule(
            f"{path}: has forward hooks (e.g. a SpikingJelly monitor); remove them, convert, then attach them to the new module"
        )
    if node.step_mode not in ("s", "m"):
        raise UnsupportedModule(f"{path}: step_mode must be 's' or 'm', got {node.step_mode!r}")


def _scalar(path: str, name: str, value: Any) -> float:
    """A number, or a one-element tensor, as a float; anything else is an error naming the module."""
    if isinstance(value, torch.Tensor):
        if value.numel() != 1:
            raise UnsupportedModule(
                f"{path}: {name} is a tensor of shape {tuple(value.shape)}; expected a number or a one-element tensor "
                "(SpikingJelly's LIFNode/IFNode compute with one value per layer; for per-neuron time constants build "
                "snn.LIF(tau=tensor) or snn.ParametricLIF(shape=...) by hand)"
            )
        if value.requires_grad:
            raise UnsupportedModule(f"{path}: {name} is a learnable tensor; expected a constant")
        return float(value.item())
    try:
        return float(value)
    except (TypeError, ValueError):
        raise UnsupportedModule(f"{path}: {name} must be a number, got {type(value).__name__}") from None


def _convert_node(path: str, node: Any, kind: str, backend: str, device: torch.device | None, sj_surrogate: Any) -> nn.Module:
    _check_node(path, node)
    options = dict(
        v_threshold=_scalar(path, "v_threshold", node.v_threshold),
        v_reset=None if node.v_reset is None else _scalar(path, "v_reset", node.v_reset),
        detach_reset=bool(node.detach_reset),
        surrogate=_convert_surrogate(path, node.surrogate_function, sj_surrogate),
        backend=backend,
    )
    if kind == "LIFNode":
        ours: SpikingNeuron = LIF(tau=_scalar(path, "tau", node.tau), decay_input=bool(node.decay_input), **options)
        if device is not None:
            ours = ours.to(device)
    elif kind == "ParametricLIFNode":
        w = node.w
        ours = ParametricLIF(init_tau=2.0, decay_input=bool(node.decay_input), shape=tuple(w.shape), **options)
        ours.w = nn.Parameter(w.detach().clone(), requires_grad=w.requires_grad)
    else:
        ours = IF(**options)
    ours.train(node.training)
    return SingleStepNeuron(ours) if node.step_mode == "s" else ours


def from_spikingjelly(model: nn.Module, backend: str = "auto") -> nn.Module:
    """Replace SpikingJelly ``LIFNode`` / ``ParametricLIFNode`` / ``IFNode`` modules inside ``model`` with ours.

    Args:
        model: any module; it is modified in place (children replaced) and returned. When ``model`` itself is a
            SpikingJelly neuron, the converted neuron is returned.
        backend: the backend of the new neurons (``"auto"``, ``"torch"``, ``"numba"``, ``"cupy"``).

    Returns:
        ``model`` with every supported SpikingJelly neuron replaced (see the module docstring for the mapping).
        A module shared at several places is converted once and stays shared.

    Raises:
        UnsupportedModule: a neuron uses an option without an exact equivalent (the message names its path);
            nothing in ``model`` has been changed then.
        ImportError: SpikingJelly is not installed.
    """
    if not isinstance(model, nn.Module):
        raise TypeError(f"model: expected a torch.nn.Module, got {type(model).__name__}")
    from snn.kernels import backends

    backends.check_name(backend)
    sj_neuron, sj_surrogate = _spikingjelly()
    classes = {getattr(sj_neuron, name): name for name in _NODE_NAMES}
    first = next(iter(model.parameters()), None)
    first = first if first is not None else next(iter(model.buffers()), None)
    device = first.device if first is not None else None

    # Decide every replacement before changing anything, so an error leaves the model untouched.
    converted: dict[int, nn.Module] = {}
    for path, module in model.named_modules(remove_duplicate=True):
        kind = classes.get(type(module))
        if kind is None:
            for cls, cls_name in classes.items():
                if isinstance(module, cls):
                    raise UnsupportedModule(
                        f"{path or '<model>'}: {type(module).__qualname__} subclasses SpikingJelly's {cls_name} and may change "
                        "its equations; convert it by hand"
                    )
            continue
        converted[id(module)] = _convert_node(path or "<model>", module, kind, backend, device, sj_surrogate)

    if id(model) in converted:
        return converted[id(model)]
    for parent in list(model.modules()):
        for name, child in list(parent._modules.items()):  # named_children() would skip repeated children
            if child is not None and id(child) in converted:
                setattr(parent, name, converted[id(child)])
    return model


class SingleStepNeuron(nn.Module):
    """A neuron that keeps its state between calls, for SpikingJelly-style single-step code.

    ``step_mode='s'``: ``forward(x_t)`` takes one step ``[B, ...]`` and returns its spikes ``[B, ...]``;
    ``step_mode='m'``: ``forward(x_seq)`` takes ``[T, B, ...]`` and returns ``[T, B, ...]``. In both modes the
    state carries over to the next call until :meth:`reset` (``spikingjelly...functional.reset_net`` calls it),
    which is how SpikingJelly's nodes behave. This lets our neurons sit inside
    ``spikingjelly.activation_based.layer.MultiStepContainer`` (which calls its children once per step).

    Args:
        neuron: the wrapped :class:`snn.SpikingNeuron` (its numerics and backend are used unchanged).
        step_mode: ``"s"`` (default) or ``"m"``.

    Attributes:
        state: the current state dict (e.g. ``{"v": [B, ...]}``) or ``None`` after a reset.
    """

    def __init__(self, neuron: SpikingNeuron, step_mode: str = "s"):
        super().__init__()
        if not isinstance(neuron, SpikingNeuron):
            raise TypeError(f"neuron: expected a snn.SpikingNeuron, got {type(neuron).__name__}")
        self.neuron = neuron
        self.step_mode = step_mode
        self.state: dict[str, torch.Tensor] | None = None

    @property
    def step_mode(self) -> str:
        return self._step_mode

    @step_mode.setter
    def step_mode(self, value: str) -> None:
        if value not in ("s", "m"):
            raise ValueError(f"step_mode: expected 's' or 'm', got {value!r}")
        self._step_mode = value

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        if not isinstance(x, torch.Tensor):
            raise TypeError(f"SingleStepNeuron: x must be a torch.Tensor, got {type(x).__name__}")
        step_shape = tuple(x.shape) if self.step_mode == "s" else tuple(x.shape[1:])
        if self.state is not None:
            kept = tuple(next(iter(self.state.values())).shape)
            if kept != step_shape:
                raise ValueError(
                    f"SingleStepNeuron: the input step shape {step_shape} differs from the kept state's {kept}; "
                    "call reset() between sequences"
                )
        if self.step_mode == "s":
            spikes, self.state = self.neuron.step(x, self.state)
            return spikes
        spikes, self.state = self.neuron(x, self.state if self.state is not None else self.neuron.initial_state(x[0]))
        return spikes

    def reset(self) -> None:
        """Forget the state: the next call starts from rest."""
        self.state = None

    def detach(self) -> None:
        """Cut the autograd graph at the current state (truncated BPTT), keeping its values."""
        if self.state is not None:
            self.state = {k: v.detach() for k, v in self.state.items()}

    def extra_repr(self) -> str:
        return f"step_mode={self.step_mode!r}"

