r"""Operation counting from a real forward pass (no assumed firing rates).

Three sources feed one :class:`OperationCounter`:

* **the dispatcher** (:mod:`snn.energy.dispatch`): every matrix product and convolution torch runs — ``nn.Linear``,
  ``F.linear`` with a layer's weight, ``lin(input=s)``, ``torch.matmul``/``@`` of two spike tensors, convs — with
  the row named after the module that owns the weight (``fc``; ``block.w_rec`` for a weight not called ``weight``)
  or, for a product of two activations, after the module that ran it (``attn.matmul0``, ``attn.matmul1``);
* **declared layers** (:mod:`snn.energy.protocol`): a module with ``count_operations(inputs, output, ctx)``
  returns its own :class:`~snn.energy.protocol.OpCount` records (e.g. :class:`snn.layers.LearnableDelay`); torch
  operations inside it are not counted again;
* **neurons** (:class:`snn.neuron_models.SpikingNeuron`, fused kernels): one update per neuron per step, output
  spikes, state variables (``LI`` returns its membrane: it updates but does not spike).

For every row the counter records, per time step (summed over the samples' *real* steps only):

* **synaptic operations** of event inputs: ``Σ |x| · fanout`` — binary spikes, signed spikes and non-negative
  integer counts (a count ``k`` is ``k`` events; see :mod:`snn.energy.inputs`);
* **MACs** of real-valued inputs (dense: every connection of every input element, ``FLOPs / 2``) and *effective*
  MACs (non-zero inputs × fan-out, NeuroBench's);
* the **dense MACs** whatever the input (the ANN with the same architecture) and the **rate-scaled** synaptic
  operations ``fr · dense MACs`` of the spike-driven transformer papers;
* input / output elements, non-zero inputs and input events, for the memory model.

**Real steps.** ``begin(T, B, lengths)`` gives each sample's unpadded length ``L_b``. A time axis of ``S`` steps
(``S = T + R`` after a layer that appends ``R`` steps) holds ``L_b + S - T`` real steps of sample ``b``: every count
on a later step is dropped, so a padded batch counts exactly what its samples count alone.

**Passes.** An inference may call the model several times per batch (spiking forward-forward runs every sample
once per label): the counter adds up every call between ``begin`` and ``end``, so per-sample figures are the cost of
classifying one sample, and it counts the calls (``passes``) and the frames the ANN equivalent reads (``ann_frames``:
the real input steps of every call, or what a layer that makes its own time axis declares —
:class:`~snn.energy.protocol.OwnTimeAxis`, e.g. a Poisson encoder of one frame).

Layouts: time-major ``[T, B, ...]``, flattened ``[T*B, ...]`` (time-major), and step-by-step calls on ``[B, ...]``
(an operation called exactly ``T`` times per forward). Operations whose steps cannot be told apart are counted in
total only (``steps = 0``; padded steps then cannot be dropped and ``unmasked`` is set). BatchNorm is 0 operations
(it folds into the preceding layer at inference). An operation that reads a parameter and that the counter cannot
price is named in a warning (``skipped``): its operations are missing, so totals are lower bounds.
"""
from __future__ import annotations

import warnings
import weakref
from dataclasses import dataclass, field
from typing import Any, Callable, Iterable

import numpy as np
import torch
from torch import nn
from torch.utils._python_dispatch import _disable_current_modes  # private, but the only way to step outside a mode

from snn.energy.dispatch import DispatchCounter, RowCounts
from snn.energy.inputs import BINARY, INTEGER_INPUTS, InputClass, classify_input
from snn.energy.protocol import CountContext, NeuronCount, OpCount, OwnTimeAxis, declares_operations
from snn.neuron_models import LI, SpikingNeuron

__all__ = ["LayerCounts", "OperationCounter", "count_operations"]

_SERIES = ("synops", "macs", "macs_dense", "macs_effective", "synops_rate_scaled", "input_events", "input_nonzero",
           "input_elements", "output_elements", "updates", "spikes")


def _empty() -> np.ndarray:
    return np.zeros(0)


@dataclass
class LayerCounts:
    """Counts of one row (layer or operation), summed over samples and their real steps.

    Attributes:
        name: row name (module name; ``module.param`` or ``module.matmulN`` for operations; ``""``: the model).
        kind: ``linear``, ``conv1d``/``conv2d``/``conv3d``, ``conv_transpose*``, ``matmul``, a declared kind
            (``delay``), ``neuron`` or ``norm``.
        steps: length of the per-step arrays (``0``: totals only); may exceed the input's ``T`` after delays.
        binary_input: every call of the row got event input (spikes or integer counts).
        rules: ``{reason: "events" or "MACs"}``: the rule each call got and why
            (:func:`snn.energy.inputs.classify_input`).
        synops: synaptic operations of event inputs per step ``[steps]`` (``[1]`` when unresolved); likewise
            ``macs`` (real-valued inputs), ``macs_dense``, ``macs_effective``, ``synops_rate_scaled``,
            ``input_events``, ``input_nonzero``, ``input_elements``, ``output_elements``, ``updates``, ``spikes``.
        sample_steps: Σ over samples of the real steps the row ran (the per-sample ``T`` of the row × samples).
        neurons: neurons per sample (neuron rows); ``state_vars`` and ``spiking`` likewise.
        params: parameters the row reads.
        calls: forward calls seen.
        unmasked: some calls' steps could not be told apart, so their padded steps could not be dropped.
    """

    name: str
    kind: str
    steps: int = 0
    binary_input: bool = True
    rules: dict[str, str] = field(default_factory=dict)
    synops: np.ndarray = field(default_factory=_empty)
    macs: np.ndarray = field(default_factory=_empty)
    macs_dense: np.ndarray = field(default_factory=_empty)
    macs_effective: np.ndarray = field(default_factory=_empty)
    synops_rate_scaled: np.ndarray = field(default_factory=_empty)
    input_events: np.ndarray = field(default_factory=_empty)
    input_nonzero: np.ndarray = field(default_factory=_empty)
    input_elements: np.ndarray = field(default_factory=_empty)
    output_elements: np.ndarray = field(default_factory=_empty)
    updates: np.ndarray = field(default_factory=_empty)
    spikes: np.ndarray = field(default_factory=_empty)
    sample_steps: float = 0.0
    neurons: int = 0
    state_vars: int = 0
    spiking: bool = True
    params: int = 0
    calls: int = 0
    unmasked: bool = False

    @property
    def is_synaptic(self) -> bool:
        return self.kind not in ("neuron", "norm")

    @property
    def rule(self) -> str:
        """``events``, ``MACs`` or ``mixed`` (some calls each)."""
        kinds = set(self.rules.values())
        return "mixed" if len(kinds) > 1 else next(iter(kinds), "events")

    def total(self, key: str) -> float:
        return float(np.asarray(getattr(self, key), dtype=np.float64).sum())


def _add_series(counts: LayerCounts, key: str, values: np.ndarray) -> None:
    current = getattr(counts, key)
    if current.size < values.size:
        current = np.concatenate([current, np.zeros(values.size - current.size)])
    elif values.size < current.size:
        values = np.concatenate([values, np.zeros(current.size - values.size)])
    setattr(counts, key, current + values)


class _Entry:
    """Series of one call as ``[S, B']`` tensors or numbers (``mode``: ``whole``, ``step`` or ``unresolved``)."""

    __slots__ = ("series", "mode", "S", "b")

    def __init__(self, series: dict[str, Any], mode: str, S: int, b: int) -> None:
        self.series, self.mode, self.S, self.b = series, mode, S, b


class OperationCounter:
    """Counts operations during real forward passes (dispatch mode + hooks on neurons and declared layers).

    Use as a context manager around forward passes, declaring each batch's layout ``[T, B, ...]`` and, for padded
    batches, each sample's real length::

        counter = OperationCounter(model)
        with counter:
            for x, labels, lengths in batches:     # x: [T, B, ...]
                counter.begin(x.shape[0], x.shape[1], lengths=lengths)
                model(x)
                counter.end()
        counter.layers                               # {name: LayerCounts}

    Args:
        model: the network.
        integer_inputs: ``"events"`` (non-negative integer counts are events) or ``"macs"`` (only ``{-1, 0, 1}``).

    Attributes:
        layers: ``{row name: LayerCounts}``.
        samples: samples counted.
        time_steps: the longest padded ``T``.
        frames: Σ of the real input steps over samples.
        passes: Σ over samples of the model calls that classified them (1 per sample unless the inference runs the
            model several times, e.g. once per label).
        ann_frames: Σ over samples of the frames the ANN equivalent reads: the real input steps of every call, or
            the frames declared by a layer that makes its own time axis (:class:`~snn.energy.protocol.OwnTimeAxis`).
        skipped: ``{row: what}`` operations that were not priced.
        form: which form of the model was counted (set by :func:`snn.energy.estimate.count_model`).
    """

    def __init__(self, model: nn.Module, integer_inputs: str = "events") -> None:
        if not isinstance(model, nn.Module):
            raise TypeError(f"model: expected a torch.nn.Module, got {type(model).__name__}")
        if integer_inputs not in INTEGER_INPUTS:
            raise ValueError(f"integer_inputs: expected one of {INTEGER_INPUTS}, got {integer_inputs!r}")
        self.model = model
        self.integer_inputs = integer_inputs
        self.layers: dict[str, LayerCounts] = {}
        self.samples = 0
        self.time_steps = 0
        self.frames = 0.0
        self.passes = 0.0
        self.ann_frames = 0.0
        self.skipped: dict[str, str] = {}
        self.form: str | None = None
        self._handles: list[Any] = []
        self._mode: DispatchCounter | None = None
        self._mode_entered = False
        self._pending: dict[str, list[_Entry]] = {}
        self._spikes: dict[int, tuple[weakref.ref, torch.Tensor]] = {}
        self._owners: dict[int, tuple[str, nn.Module]] = {}
        self._stack: list[tuple[str, dict[str, int]]] = []
        self._suppress = 0
        self._declaring = 0
        self._axes: set[int] = set()
        self._ctx = CountContext(0, 0)
        self._calls = 0  # model calls in the current batch
        self._call_frames: float | None = None  # frames per sample an OwnTimeAxis layer declared in the current call
        self._batch_ann_frames = 0.0

    # ------------------------------------------------------------------ context
    def __enter__(self) -> "OperationCounter":
        self._owners = {}
        for name, module in self.model.named_modules():
            for pname, p in list(module.named_parameters(recurse=False)) + list(module.named_buffers(recurse=False)):
                if p is not None and p.numel():
                    row = name if pname == "weight" else (f"{name}.{pname}" if name else pname)
                    self._owners.setdefault(p.untyped_storage().data_ptr(), (row, module))
            special = declares_operations(module) or isinstance(module, SpikingNeuron)
            hides = special and not getattr(module, "count_torch_ops_inside", False)  # torch ops inside not counted
            self._handles.append(module.register_forward_pre_hook(self._pre_hook(name, hides, special)))
            self._handles.append(module.register_forward_hook(self._post_hook(name, module, special, hides)))
        # The dispatch mode is on the stack only between begin() and end(): every torch op under a Python dispatch
        # mode pays a Python call, and data loading and the counter's own bookkeeping need not see it (the main
        # job's validation pass with energy logging: 1.09 s -> 0.73 s).
        self._mode = DispatchCounter(self)
        self._mode_entered = False
        return self

    def _enter_mode(self) -> None:
        if self._mode is not None and not self._mode_entered:
            self._mode.__enter__()
            self._mode_entered = True

    def _exit_mode(self, *exc: object) -> None:
        if self._mode is not None and self._mode_entered:
            self._mode_entered = False
            self._mode.__exit__(*(exc or (None, None, None)))

    def __exit__(self, *exc: object) -> None:
        if self._mode is not None:
            self._exit_mode(*exc)
            self._mode = None
        for handle in self._handles:
            handle.remove()
        self._handles.clear()
        for name, what in self.skipped.items():
            warnings.warn(f"energy: layer {name or '<model>'!r} ({what}) was not counted; its operations were "
                          "skipped, so the totals are lower bounds", stacklevel=2)

    def begin(self, time_steps: int, batch_size: int, lengths: torch.Tensor | None = None) -> None:
        """Declare the next forward pass: input ``[T, B, ...]`` and optionally each sample's real steps ``[B]``."""
        if time_steps < 1 or batch_size < 1:
            raise ValueError(f"begin: expected T >= 1 and B >= 1, got T={time_steps}, B={batch_size}")
        if lengths is not None:
            lengths = torch.as_tensor(lengths)
            if lengths.dim() != 1 or lengths.shape[0] != batch_size or lengths.is_floating_point():
                raise ValueError(f"lengths: expected an integer tensor [B] = [{batch_size}], got "
                                 f"{lengths.dtype} {tuple(lengths.shape)}")
            if bool((lengths < 0).any()) or bool((lengths > time_steps).any()):
                raise ValueError(f"lengths: expected values in [0, T={time_steps}], got {lengths.tolist()}")
            lengths = lengths.detach().to(torch.int64).cpu()
        self._ctx = CountContext(time_steps, batch_size, lengths)
        self._pending = {}
        self._spikes = {}
        self._stack = []
        self._suppress = 0
        self._declaring = 0
        self._axes = {int(time_steps)}
        self._calls, self._call_frames, self._batch_ann_frames = 0, None, 0.0
        self._enter_mode()

    def end(self) -> None:
        """Close the forward pass: drop padded steps, resolve step-by-step calls, add to the totals."""
        self._exit_mode()
        ctx = self._ctx
        T, B = ctx.time_steps, ctx.batch_size
        for name, entries in self._pending.items():
            counts = self.layers[name]
            whole = [e for e in entries if e.mode == "whole"]
            steps = [e for e in entries if e.mode == "step"]
            other = [e for e in entries if e.mode == "unresolved"]
            if steps:
                if len(steps) % T == 0:  # T step-by-step calls per pass, passes one after the other
                    for i in range(0, len(steps), T):
                        chunk = steps[i:i + T]
                        whole.append(_Entry({k: _stack_steps([e.series[k] for e in chunk]) for k in chunk[0].series},
                                            "whole", T, B))
                else:
                    other.extend(steps)
            for e in whole:
                self._add_entry(counts, e, ctx.valid_mask(e.S))
            if other:
                counts.unmasked = counts.unmasked or ctx.lengths is not None
                for e in other:
                    self._add_entry(counts, e, None, collapse=True)
            counts.steps = max(counts.steps, max(getattr(counts, k).size for k in _SERIES))
        self._pending = {}
        self._spikes = {}
        self.samples += B
        self.time_steps = max(self.time_steps, T)
        frames = self._input_frames()
        self.frames += frames
        self.passes += max(self._calls, 1) * B  # a forward that never called the model itself: one pass
        self.ann_frames += self._batch_ann_frames if self._calls else frames
        self._ctx = CountContext(0, 0)

    def _input_frames(self) -> float:
        """Σ over the batch's samples of their real input steps."""
        ctx = self._ctx
        return float(ctx.lengths.sum()) if ctx.lengths is not None else float(ctx.time_steps * ctx.batch_size)

    @staticmethod
    def _add_entry(counts: LayerCounts, e: _Entry, mask: torch.Tensor | None, collapse: bool = False) -> None:
        S, b = e.S, e.b
        m = mask.to(torch.float64) if mask is not None and not collapse else None
        out: dict[str, np.ndarray] = {}
        for key, v in e.series.items():
            t = v if isinstance(v, torch.Tensor) else torch.full((S, b), float(v), dtype=torch.float64)
            t = t.to(device="cpu", dtype=torch.float64).expand(S, b)
            if m is not None:
                t = t * m
            out[key] = t.sum(1).numpy()
        if "input_events" in out:
            elems = out["input_elements"]
            rate = np.divide(out["input_events"], elems, out=np.zeros(S), where=elems > 0)
            out["synops_rate_scaled"] = rate * out["macs_dense"]
        if not collapse:  # steps that cannot be told apart have no per-step cost (the report prices them per sample)
            counts.sample_steps += float(m.sum()) if m is not None else float(S * b)
        for key, value in out.items():
            _add_series(counts, key, np.array([value.sum()]) if collapse else value)

    # ------------------------------------------------------------------ hooks
    def _pre_hook(self, name: str, hides: bool, special: bool):
        def hook(module: nn.Module, inputs: tuple) -> None:
            if module is self.model and self._ctx.batch_size:  # one pass of the inference
                self._calls += 1
                self._call_frames = None
            self._stack.append((name, {}))
            self._suppress += int(hides)
            self._declaring += int(special)
        return hook

    def _post_hook(self, name: str, module: nn.Module, special: bool, hides: bool):
        def hook(module: nn.Module, inputs: tuple, output: Any) -> None:
            if self._stack:
                self._stack.pop()
            if module is self.model and self._ctx.batch_size:
                self._batch_ann_frames += (self._call_frames * self._ctx.batch_size if self._call_frames is not None
                                           else self._input_frames())
            if not special:
                return
            self._declaring = max(self._declaring - 1, 0)
            self._suppress += 0 if hides else 1  # the counting's own torch ops are never counted
            try:
                # a declared layer inside another one that hides its torch ops is counted by the outer one
                nested = self._suppress > 1 and not isinstance(module, SpikingNeuron)
                if nested or not self._ctx.batch_size:
                    return
                # the counting's own torch ops bypass the dispatch mode (each would pay a Python dispatch call)
                with torch.no_grad(), _disable_current_modes():
                    if isinstance(module, SpikingNeuron):
                        y = output[0] if isinstance(output, (tuple, list)) else output
                        self._count_neurons(name, y, len(module.dynamics().states), not isinstance(module, LI))
                    else:
                        for op in module.count_operations(inputs, output, self._ctx):
                            if isinstance(op, OwnTimeAxis):
                                self._own_axis(name, op)
                                continue
                            row = ".".join(p for p in (name, op.label) if p)
                            if isinstance(op, NeuronCount):
                                self._count_neurons(row, op.output, op.state_vars, op.spiking)
                            else:
                                self._count_declared(row, op)
                        y = output[0] if isinstance(output, (tuple, list)) else output
                        self._note_axis(y)
            finally:
                self._suppress = max(self._suppress - 1, 0)
        return hook

    # ------------------------------------------------------------------ the dispatch mode's environment
    def active(self) -> bool:
        return self._suppress == 0 and self._ctx.batch_size > 0

    def weight_owner(self, t: torch.Tensor) -> tuple[str, nn.Module] | None:
        try:
            return self._owners.get(t.untyped_storage().data_ptr()) if t.numel() else None
        except (RuntimeError, NotImplementedError):
            return None

    def scope_name(self, op: str) -> str:
        scope, ops = self._stack[-1] if self._stack else ("", {})
        i = ops.get(op, 0)
        ops[op] = i + 1
        return f"{scope}.{op}{i}" if scope else f"{op}{i}"

    def classify(self, x: torch.Tensor) -> InputClass:
        return classify_input(x, self.integer_inputs)

    def known_spikes(self, x: torch.Tensor) -> torch.Tensor | None:
        """Per-(step, sample) spike counts ``[S*B]`` when ``x`` is (a view of) a spiking neuron's output."""
        entry = self._spikes.get(x.data_ptr())
        if entry is None:
            return None
        ref, per_row = entry
        y = ref()
        if y is None or y.numel() != x.numel() or y.dtype != x.dtype or not x.is_contiguous():
            return None
        return per_row

    def norm(self, name: str) -> None:
        self._layer(name, "norm").calls += 1

    def skip(self, name: str, module: nn.Module | None, op: str) -> None:
        if self._declaring:  # inside a layer that declares its operations: it answers for what torch cannot show
            return
        if module is not None:
            n = sum(p.numel() for p in module.parameters(recurse=False))
            nb = sum(b.numel() for b in module.buffers(recurse=False))
            what = f"{type(module).__name__}, {n} parameters" + (f" + {nb} buffer values" if nb else "")
            self.skipped.setdefault(name, f"{what}: {op} is not priced")
        else:
            self.skipped.setdefault(name, f"{op} on activations is not priced")

    def emit(self, rc: RowCounts) -> None:
        """Add one dispatched operation's per-row counts (resolving the leading rows into steps × samples)."""
        S, r, mode = self._layout(rc.rows)
        b = self._ctx.batch_size if mode != "unresolved" else 1
        series = {}
        for key, v in rc.series.items():
            if isinstance(v, torch.Tensor):
                series[key] = v.reshape(S, b, -1).sum(2)
            else:
                series[key] = float(v) * r
        self._record(rc.name, rc.kind, rc.rule, rc.params, _Entry(series, mode, S, b))

    # ------------------------------------------------------------------ recording
    def _layer(self, name: str, kind: str) -> LayerCounts:
        counts = self.layers.get(name)
        if counts is None:
            counts = self.layers[name] = LayerCounts(name=name, kind=kind)
        return counts

    def _record(self, name: str, kind: str, rule: InputClass, params: int, entry: _Entry) -> None:
        counts = self._layer(name, kind)
        counts.calls += 1
        counts.params = max(counts.params, int(params))
        counts.binary_input = counts.binary_input and rule.events
        counts.rules[rule.reason] = "events" if rule.events else "MACs"
        self._pending.setdefault(name, []).append(entry)

    def _layout(self, rows: int) -> tuple[int, int, str]:
        """Leading rows ``N`` → (steps, rows per sample and step, mode), assuming time-major flattening."""
        B = self._ctx.batch_size
        for S in sorted(self._axes, reverse=True):
            if S > 1 and rows % (S * B) == 0:
                return S, rows // (S * B), "whole"
        if rows % B == 0:
            return 1, rows // B, ("whole" if self._ctx.time_steps == 1 else "step")
        return 1, rows, "unresolved"

    def _note_axis(self, y: Any) -> None:
        if isinstance(y, torch.Tensor) and y.dim() >= 2 and y.shape[1] == self._ctx.batch_size:
            self._axes.add(int(y.shape[0]))

    def _own_axis(self, name: str, op: OwnTimeAxis) -> None:
        steps = op.steps
        if isinstance(steps, bool) or not isinstance(steps, int) or steps < 1:
            raise ValueError(f"{name}.count_operations: OwnTimeAxis.steps must be an int >= 1, got {steps!r}")
        if not (isinstance(op.ann_frames, (int, float)) and op.ann_frames >= 0):
            raise ValueError(f"{name}.count_operations: OwnTimeAxis.ann_frames must be a number >= 0, got "
                             f"{op.ann_frames!r}")
        self._ctx.own_axes.add(steps)
        self._axes.add(steps)
        self._call_frames = float(op.ann_frames)

    def _count_declared(self, name: str, op: OpCount) -> None:
        x = op.x
        B = self._ctx.batch_size
        if not isinstance(x, torch.Tensor) or x.dim() < 2 or x.shape[1] != B:
            raise ValueError(f"{name}.count_operations: OpCount.x must be time-major [S, B={B}, ...], got "
                             f"{getattr(x, 'shape', type(x).__name__)}")
        S = x.shape[0]
        self._note_axis(x)
        rule = BINARY if self.known_spikes(x) is not None else self.classify(x)
        fan = op.fanout
        xa = x.abs().to(torch.float64)
        if isinstance(fan, torch.Tensor):
            fan = fan.to(device=x.device, dtype=torch.float64)
            fan_full = torch.broadcast_to(fan, x.shape).reshape(S, B, -1)
            weighted = (xa * fan).reshape(S, B, -1).sum(2)
            nz_weighted = ((x != 0).to(torch.float64) * fan).reshape(S, B, -1).sum(2)
            fan_sum = fan_full.sum(2)
        else:
            units = xa.reshape(S, B, -1).sum(2)
            weighted = units * float(fan)
            nz_weighted = (x != 0).reshape(S, B, -1).sum(2, dtype=torch.float64) * float(fan)
            fan_sum = float(fan) * (x[0, 0].numel())
        dense = float(op.dense_macs) if op.dense_macs is not None else fan_sum
        in_elems = float(x[0, 0].numel())
        series = {
            "synops": weighted if rule.events else 0.0,
            "macs": 0.0 if rule.events else dense,
            "macs_dense": dense,
            "macs_effective": 0.0 if rule.events else nz_weighted,
            "input_events": xa.reshape(S, B, -1).sum(2) if rule.events else 0.0,
            "input_nonzero": (x != 0).reshape(S, B, -1).sum(2, dtype=torch.float64),
            "input_elements": in_elems,
            "output_elements": float(op.output_elements or 0.0),
        }
        self._record(name, op.kind, rule, op.params, _Entry(series, "whole", S, B))

    def _count_neurons(self, name: str, y: Any, state_vars: int, spiking: bool) -> None:
        """One update per neuron and step, and the spikes of ``y`` (time-major, or one step ``[B, ...]``)."""
        if not isinstance(y, torch.Tensor):
            return
        B = self._ctx.batch_size
        if y.dim() >= 2 and y.shape[1] == B:
            S, b, mode = y.shape[0], B, "whole"
            self._axes.add(int(S))
        elif y.dim() >= 1 and y.shape[0] == B:
            S, b, mode = 1, B, ("whole" if self._ctx.time_steps == 1 else "step")
        else:
            S, b, mode = 1, 1, "unresolved"
        counts = self._layer(name, "neuron")
        counts.calls += 1
        counts.spiking = spiking
        counts.state_vars = int(state_vars)
        per = y.numel() / max(S * b, 1)
        counts.neurons = int(round(per))
        if counts.spiking:
            flat = y.reshape(S, b, -1)
            exact32 = flat.shape[2] < 2**24  # float32 sums of 0/1 are exact below 2^24 terms
            spikes = (flat.sum(2) if exact32 else flat.sum(2, dtype=torch.float64)).to(torch.float64)
            self._spikes[y.data_ptr()] = (weakref.ref(y), spikes.reshape(-1))
        else:
            spikes = 0.0
        series = {"updates": per, "spikes": spikes, "output_elements": per}
        self._pending.setdefault(name, []).append(_Entry(series, mode, S, b))


def _stack_steps(values: list[Any]) -> Any:
    """Per-call ``[1, B]`` series (or numbers) of step-by-step calls → ``[T, B]``."""
    if all(not isinstance(v, torch.Tensor) for v in values):
        return torch.tensor([[float(v)] for v in values], dtype=torch.float64)
    b = next(v.shape[1] for v in values if isinstance(v, torch.Tensor))
    return torch.cat([v.to(device="cpu", dtype=torch.float64) if isinstance(v, torch.Tensor)
                      else torch.full((1, b), float(v), dtype=torch.float64) for v in values], 0)


def _batches(data: Any, max_batches: int | None) -> Iterable[tuple[torch.Tensor, torch.Tensor | None]]:
    """``(x, lengths)`` per batch; ``lengths`` is the third element of a ``(x, labels, lengths)`` batch (the
    padded batches of :func:`snn.datasets.pad_collate`) when it is a ``[B]`` integer tensor, else ``None``."""
    if isinstance(data, torch.Tensor):
        yield data, None
        return
    for i, batch in enumerate(data):
        if max_batches is not None and i >= max_batches:
            return
        x = batch[0] if isinstance(batch, (tuple, list)) else batch
        if isinstance(x, dict):
            x = x.get("x", x.get("inputs"))
        if not isinstance(x, torch.Tensor):
            raise TypeError(f"data: each batch must be a tensor [T, B, ...] or a tuple (x, ...), "
                            f"got {type(x).__name__}")
        lengths = batch[2] if isinstance(batch, (tuple, list)) and len(batch) >= 3 else None
        if not (isinstance(lengths, torch.Tensor) and lengths.dim() == 1 and x.dim() >= 2
                and lengths.shape[0] == x.shape[1] and not lengths.is_floating_point()):
            lengths = None
        yield x, lengths


def count_operations(model: nn.Module, data: Any, max_batches: int | None = None,
                     integer_inputs: str = "events", inference: Callable[..., Any] | None = None) -> OperationCounter:
    """Run ``model`` as it is (eval mode, no autograd) on ``data`` and return the filled :class:`OperationCounter`.

    Args:
        model: the network; it must accept a time-major tensor ``[T, B, ...]``.
        data: a tensor ``[T, B, ...]`` or an iterable of batches ``x`` or ``(x, ...)``. Padded batches
            ``(x, labels, lengths)`` (``lengths`` a ``[B]`` integer tensor) count only each sample's real steps, and
            run as ``model(x, lengths)`` when the model declares ``accepts_lengths = True``.
        max_batches: stop after this many batches (``None``: all).
        integer_inputs: see :class:`OperationCounter`.
        inference: ``inference(model, x, lengths)`` runs the forward pass(es) that classify a batch (e.g. a learning
            rule's :meth:`~snn.rules.LearningRule.inference`: forward-forward runs the model once per label);
            ``None``: one forward, ``model(x, lengths)`` or ``model(x)`` as above.

    :func:`snn.energy.estimate` counts the model's inference form (its ``evaluation()`` context); this function
    counts whatever form the model is in.
    """
    if not isinstance(model, nn.Module):
        raise TypeError(f"model: expected a torch.nn.Module, got {type(model).__name__}")
    if max_batches is not None and (not isinstance(max_batches, int) or max_batches < 1):
        raise ValueError(f"max_batches: expected a positive int or None, got {max_batches!r}")
    if inference is not None and not callable(inference):
        raise TypeError(f"inference: expected a callable (model, x, lengths) or None, got {type(inference).__name__}")
    if isinstance(data, torch.Tensor) and data.dim() < 2:
        raise ValueError(f"data: expected a time-major tensor [T, B, ...], got shape {tuple(data.shape)}")
    counter = OperationCounter(model, integer_inputs=integer_inputs)
    was_training = model.training
    model.eval()
    device = next((p.device for p in model.parameters()), None)
    try:
        with torch.no_grad(), counter:
            takes_lengths = bool(getattr(model, "accepts_lengths", False))
            for x, lengths in _batches(data, max_batches):
                if x.dim() < 2:
                    raise ValueError(f"data: expected batches shaped [T, B, ...], got shape {tuple(x.shape)}")
                if device is not None:
                    x = x.to(device)
                counter.begin(x.shape[0], x.shape[1], lengths=lengths)
                if inference is not None:
                    inference(model, x, None if lengths is None else lengths.to(x.device))
                elif takes_lengths and lengths is not None:  # padded steps of short samples do not run
                    model(x, lengths.to(x.device))
                else:
                    model(x)
                counter.end()
    finally:
        model.train(was_training)
    if counter.samples == 0:
        raise ValueError("data: no batch was run (empty data)")
    return counter
