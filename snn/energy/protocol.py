r"""The counting protocol: how a layer declares operations the energy counter cannot see through torch.

The counter (:mod:`snn.energy.counter`) sees every torch operation at the dispatcher (``F.linear``, ``@``, convs,
whatever module or function issued them). A layer whose work happens elsewhere (a fused numba/CUDA kernel, an
integer-delay scatter) or whose real cost differs from the torch ops it happens to run (a delay layer evaluated as
a dense convolution but executed as one tap per spike) declares its operations with one method::

    class MyLayer(nn.Module):
        def count_operations(self, inputs: tuple, output: Any, ctx: CountContext) -> list[OpCount]:
            x = inputs[0]                                   # [T, B, C_in], time-major
            return [OpCount(x=x, fanout=float(self.out_features), kind="mylayer")]

The counter calls it from a forward hook after every call of the module (under ``torch.no_grad``) and stops counting
torch operations inside the module, so nothing is counted twice. The method is pure: it reads its arguments and the
layer's parameters and returns the records; it must not change the layer.

Each :class:`OpCount` describes one synaptic operation group as *input elements × fan-out*. For input ``x``
``[S, B, F...]`` (``S`` steps, ``B`` samples) and fan-out ``f`` (broadcastable to ``x``), the counter computes, per
step ``t`` and sample ``b`` and only on the sample's real steps (see :meth:`CountContext.valid_steps`):

.. math::

    \mathrm{SOPs}_{t,b} = \sum_i |x_{t,b,i}| \, f_{t,b,i}
        \quad\text{(event input: non-negative integer counts } k \text{ or } \pm 1\text{; } k \text{ events)}

    \mathrm{MACs}_{t,b} = \mathrm{dense}_{t,b} \quad\text{(real-valued input: every connection of every element)}

with ``dense = dense_macs`` when given (e.g. a convolution's ``FLOPs / 2``, padded borders included), else
``Σ_i f_{t,b,i}``. ``dense`` is also the per-frame cost of the ANN with the same architecture.

A fan-out that depends on the step and the sample (``[S, B, F...]``) expresses costs that end at the output window:
the delay layer (:meth:`snn.layers.LearnableDelay.count_operations`) gives each input spike only the taps that land
inside its sample's output, ``f_{t,b,i} = #\{(o, k): t + d_{oik} < V_b\}`` with ``V_b = ctx.valid_steps(T_out)[b]``.

Layers that record several operation groups (e.g. an attention block with a fused kernel) return several records;
``label`` names each (the report's row becomes ``<module>.<label>``).

A layer that runs neurons outside :class:`snn.neuron_models.SpikingNeuron` modules (a recurrent population stepping
its own kernel, an ELM neuron) returns :class:`NeuronCount` records: one update per neuron per real step, the
spikes it emitted (``N_{t,b} = Σ_i s_{t,b,i}``) and its state variables. A layer whose remaining work *is* visible
to torch (its matrix products) sets the class attribute ``count_torch_ops_inside = True``: the counter then keeps
counting the torch operations inside it and adds the declared records.

A layer that makes its own time steps from its input (a Poisson encoder presenting one frame of intensities for
``S`` steps) returns an :class:`OwnTimeAxis` record: from its output on, a time axis of ``S`` steps holds ``S`` real
steps of every sample, whatever the input's length (:meth:`CountContext.valid_steps`), and the ANN equivalent of
the forward reads ``ann_frames`` frames per sample (the encoder's input: one frame) instead of the input's real
steps.

**Passes.** An inference that runs the model several times per sample (spiking forward-forward: once per label)
calls it once per pass, each call on the whole batch ``[T, B, ...]``; the counter adds the calls up, so every
per-sample figure is the cost of classifying one sample (all passes), and the ANN equivalent runs as many passes.
"""
from __future__ import annotations

from dataclasses import dataclass
from typing import Any, Protocol, runtime_checkable

import torch

__all__ = ["OpCount", "NeuronCount", "OwnTimeAxis", "CountContext", "DeclaresOperations", "declares_operations"]


@dataclass
class OpCount:
    """One group of synaptic operations of a forward call: ``x`` (time-major) × ``fanout``.

    Attributes:
        x: input ``[S, B, *features]`` (time-major; ``S`` steps, ``B`` the batch of :meth:`CountContext`).
        fanout: operations triggered by one unit of each input element: a number, or a tensor broadcastable to
            ``x`` (``[*features]`` for a fixed map, ``[S, B, *features]`` when it depends on step and sample).
        kind: the row's kind in the report (``"delay"``, ``"attention"``, …).
        dense_macs: MACs of the dense equivalent per sample and step (``None``: ``Σ fanout`` over the features).
        params: parameters the operation reads (memory model).
        output_elements: output elements per sample and step (memory model; ``None``: unknown, 0).
        label: suffix naming this record when a layer returns several.
    """

    x: torch.Tensor
    fanout: float | torch.Tensor
    kind: str = "synaptic"
    dense_macs: float | None = None
    params: int = 0
    output_elements: float | None = None
    label: str = ""


@dataclass
class NeuronCount:
    """Neuron updates of one forward call.

    Attributes:
        output: the neurons' output, time-major ``[S, B, *neurons]``: spikes (``spiking=True``) or, for a
            non-spiking readout, its membrane (only its shape is used).
        state_vars: state variables per neuron (memory model).
        spiking: the neurons emit spikes.
        label: suffix naming this record when a layer returns several.
    """

    output: torch.Tensor
    state_vars: int = 1
    spiking: bool = True
    label: str = ""


@dataclass
class OwnTimeAxis:
    """A layer's output starts a time axis of its own: ``steps`` real steps for every sample.

    Attributes:
        steps: length of the new time axis.
        ann_frames: frames per sample the ANN equivalent reads in place of the input's real steps (an encoder of
            one frame of intensities: 1).
    """

    steps: int
    ann_frames: float = 1.0


class CountContext:
    """What a declaring layer may ask the counter about the current forward pass.

    Attributes:
        time_steps: ``T`` of the model's input (the padded length of the batch).
        batch_size: ``B``.
        lengths: real steps of each sample ``[B]`` (``int64``) or ``None`` when every sample has ``T`` steps.
    """

    def __init__(self, time_steps: int, batch_size: int, lengths: torch.Tensor | None = None) -> None:
        self.time_steps = int(time_steps)
        self.batch_size = int(batch_size)
        self.lengths = lengths
        self.own_axes: set[int] = set()  # time axes a layer made (OwnTimeAxis): every step real

    def valid_steps(self, steps: int, device: torch.device | str | None = None) -> torch.Tensor:
        """Real steps of each sample on a time axis of ``steps`` steps, ``[B]`` (``int64``).

        A layer that lengthens (or shortens) the time axis does it for every sample alike, so sample ``b`` run alone
        would have ``L_b + (steps - T)`` steps there (clamped to ``[0, steps]``); without lengths, and on a time axis
        a layer made (:class:`OwnTimeAxis`), every sample has ``steps``.
        """
        if self.lengths is None or int(steps) in self.own_axes:
            return torch.full((self.batch_size,), int(steps), dtype=torch.int64, device=device)
        v = self.lengths.to(device=device, dtype=torch.int64) + (int(steps) - self.time_steps)
        return v.clamp(0, int(steps))

    def valid_mask(self, steps: int, device: torch.device | str | None = None) -> torch.Tensor | None:
        """``[steps, B]`` boolean mask of the real steps (``None`` without lengths: every step is real)."""
        if self.lengths is None or int(steps) in self.own_axes:
            return None
        t = torch.arange(int(steps), device=device)[:, None]
        return t < self.valid_steps(steps, device)[None, :]


@runtime_checkable
class DeclaresOperations(Protocol):
    """A module that declares its own operations (see the module docstring)."""

    def count_operations(self, inputs: tuple[Any, ...], output: Any,
                         ctx: CountContext) -> list[OpCount | NeuronCount | OwnTimeAxis]: ...


def declares_operations(module: Any) -> bool:
    """True when ``module`` implements :class:`DeclaresOperations` (a callable ``count_operations``)."""
    return callable(getattr(module, "count_operations", None))
