r"""Operation counting from a real forward pass (forward hooks; no assumed firing rates).

For every layer the counter records, per time step ``t`` (summed over the batch and over batches):

* **synaptic operations** of a layer whose input is binary (values in ``{-1, 0, 1}``, i.e. spikes):
  :math:`\mathrm{SynOps}_t = \sum_{\text{input } i \ne 0} \mathrm{fanout}(i)`, the real fan-out of each spike:
  ``out_features`` for ``nn.Linear``; for ``nn.Conv1d/2d`` the number of (output position, output channel) pairs
  the input position reaches, padding, stride, dilation and groups included (computed exactly once per input
  shape as the gradient of ``Σ conv(x, 1)`` with respect to ``x``); for :class:`snn.layers.LearnableDelay` the
  non-zero kernel taps of the input channel (``Σ_o nonzero_taps[o, i]``);
* **MACs** of a layer whose input is not binary (the encoding layer, or an ANN): *dense* MACs, one per
  connection of every input element (``FLOPs / 2``; zeros in the input are charged too), and *effective* MACs
  (non-zero inputs × fan-out, NeuroBench's "effective MACs");
* the **dense MACs** of every layer whatever its input (the ANN-equivalent cost) and the **rate-scaled**
  synaptic operations ``fr_t × dense MACs_t`` of the spike-driven transformer papers;
* **neuron updates** (one per neuron per step, per neuron module), output spikes and the number of state
  variables, for :class:`snn.neuron_models.SpikingNeuron` modules (``LI`` returns its membrane: it updates but
  does not spike);
* input / output elements and non-zero inputs, for the memory-traffic model.

BatchNorm layers are counted as 0 operations: at inference they fold into the preceding layer's weights and bias.
Binary inputs: the output of a spiking :class:`~snn.neuron_models.SpikingNeuron` (not ``LI``) is a spike tensor in
``{0, 1}`` by construction; a layer input that is that tensor or a contiguous view of it reuses the neuron's
per-step spike counts (this keeps the energy pass cheap); any other input is checked value by value. (A spike
tensor modified in place between the neuron and the layer would defeat this.)

Parameter-free modules (pooling, dropout, activation functions, reshapes) are not counted. A module of another
type that owns parameters and runs in the forward gets a ``warnings.warn`` naming it: its operations are skipped,
so totals are lower bounds.

Layouts: time-major ``[T, B, ...]`` (``nn.Linear`` applied to ``[T, B, C]``, neurons, the delay layer), flattened
``[T*B, ...]`` (time-major flattening, e.g. convolutions applied to ``x.flatten(0, 1)``), and step-by-step calls on
``[B, ...]`` (a layer called exactly ``T`` times per forward). A layer whose time steps cannot be told apart
(e.g. ``nn.Conv1d`` over ``[B, C, T]``) is counted in total only (``steps = 0``).
"""
from __future__ import annotations

import warnings
import weakref
from dataclasses import dataclass, field
from typing import Any, Iterable

import numpy as np
import torch
from torch import nn

from snn.neuron_models import LI, SpikingNeuron

__all__ = ["LayerCounts", "OperationCounter", "count_operations", "fanout_map", "synaptic_kind"]

_NORM_TYPES = (nn.BatchNorm1d, nn.BatchNorm2d, nn.BatchNorm3d)


def _delay_type() -> type | None:
    try:
        from snn.layers.delay import LearnableDelay
    except ImportError:  # the delay layer is optional for counting
        return None
    return LearnableDelay


_CONV_FANOUT: dict[tuple, torch.Tensor] = {}  # convolution geometry + input shape -> fan-out map (FIFO-bounded)
_CONV_FANOUT_MAX = 256


def _is_binary(x: torch.Tensor) -> bool:
    """True when every value of ``x`` is in ``{-1, 0, 1}`` (spikes, signed spikes).

    Float arithmetic only (boolean reductions are slow on CPU): with ``a = |x| ∈ [0, 1]``, ``a - a²`` is ``0`` at
    ``0`` and ``1`` and strictly positive in between (also after float rounding), so the sum is zero iff binary.
    """
    if x.numel() == 0:
        return True
    if not x.is_floating_point():
        x = x.double()
    lo, hi = torch.aminmax(x)
    if lo < -1 or hi > 1:
        return False
    a = x.abs()
    return bool((a - a * a).sum() == 0)


def _nonzero_indicator(x: torch.Tensor) -> torch.Tensor:
    """``1.0`` where ``x != 0`` else ``0.0``, in float arithmetic (faster than boolean reductions on CPU)."""
    return x.sign().abs_() if x.is_floating_point() else (x != 0).to(torch.float32)


def synaptic_kind(module: nn.Module) -> str | None:
    """``linear``, ``conv1d``, ``conv2d``, ``delay`` for the synaptic layers the counter knows, else ``None``."""
    if isinstance(module, nn.Linear):
        return "linear"
    if isinstance(module, nn.Conv1d):
        return "conv1d"
    if isinstance(module, nn.Conv2d):
        return "conv2d"
    delay_type = _delay_type()
    if delay_type is not None and isinstance(module, delay_type):
        return "delay"
    return None


def fanout_map(module: nn.Module, kind: str, x: torch.Tensor, cache: dict | None = None) -> torch.Tensor:
    """Fan-out of every input element of one sample (float64, no autograd).

    ``[C_in]`` for ``linear`` (all ``out_features``) and ``delay`` (``Σ_o`` non-zero taps); ``[C_in, *spatial]`` for
    convolutions: the gradient of ``Σ conv(ones, weight=1)`` with respect to its input, i.e. the number of
    (output channel, output position) pairs each input position feeds, padding/stride/dilation/groups and
    ``padding_mode`` included. ``x`` is a batched input (``[N, C_in, *spatial]`` for convolutions).
    """
    cache = {} if cache is None else cache
    if kind == "linear":
        return torch.full((module.in_features,), float(module.out_features), dtype=torch.float64, device=x.device)
    if kind == "delay":
        w, p = module.weight, module.positions
        state = (w._version, p._version, float(module.sigma), module.version, w.data_ptr(), p.data_ptr())
        entry = cache.get(("delay", id(module)))
        if entry is None or entry[0] != state:  # one entry per layer, replaced when its kernel changes
            entry = cache[("delay", id(module))] = (state, module.nonzero_taps_per_synapse().sum(0).to(torch.float64))
        return entry[1]
    # the map depends only on the convolution's geometry and the input shape, not on the weights: shared cache
    key = (kind, tuple(x.shape[1:]), str(x.device), tuple(module.weight.shape), module.stride, module.padding,
           module.dilation, module.groups, module.padding_mode)
    cached = _CONV_FANOUT.get(key)
    if cached is None:
        ones_w = torch.ones(module.weight.shape, dtype=torch.float64, device=x.device)
        probe = torch.ones((1,) + tuple(x.shape[1:]), dtype=torch.float64, device=x.device, requires_grad=True)
        with torch.enable_grad():
            out = module._conv_forward(probe, ones_w, None)
            (grad,) = torch.autograd.grad(out.sum(), probe)
        cached = grad[0].round()
        if len(_CONV_FANOUT) >= _CONV_FANOUT_MAX:
            _CONV_FANOUT.pop(next(iter(_CONV_FANOUT)))
        _CONV_FANOUT[key] = cached
    return cached


@dataclass
class LayerCounts:
    """Counts of one layer, summed over samples; per-step arrays have length ``steps`` (``0``: totals only).

    Attributes:
        name: qualified module name in the model (``""`` for the model itself).
        kind: ``linear``, ``conv1d``, ``conv2d``, ``delay``, ``neuron``, ``norm``.
        steps: number of time steps of the per-step arrays (may exceed the input's ``T`` after a delay layer).
        binary_input: True when every input seen was binary (synaptic layer).
        synops, macs_dense, macs_effective, synops_rate_scaled: per step ``[steps]`` (or ``[1]`` when unresolved).
        input_nonzero, input_elements, output_elements: per step.
        updates, spikes: neuron updates and output spikes per step (neuron layers).
        neurons: neurons per sample and step (neuron layers).
        state_vars: state variables per neuron (neuron layers).
        spiking: the neuron emits spikes (``False`` for ``LI``).
        params: number of parameters the layer reads (weights incl. bias; delay layer: non-zero taps).
        in_features: fan-in per output element of the dense layer (for the memory model).
    """

    name: str
    kind: str
    steps: int = 0
    binary_input: bool = True
    synops: np.ndarray = field(default_factory=lambda: np.zeros(0))
    macs_dense: np.ndarray = field(default_factory=lambda: np.zeros(0))
    macs_effective: np.ndarray = field(default_factory=lambda: np.zeros(0))
    synops_rate_scaled: np.ndarray = field(default_factory=lambda: np.zeros(0))
    input_nonzero: np.ndarray = field(default_factory=lambda: np.zeros(0))
    input_elements: np.ndarray = field(default_factory=lambda: np.zeros(0))
    output_elements: np.ndarray = field(default_factory=lambda: np.zeros(0))
    updates: np.ndarray = field(default_factory=lambda: np.zeros(0))
    spikes: np.ndarray = field(default_factory=lambda: np.zeros(0))
    neurons: int = 0
    state_vars: int = 0
    spiking: bool = True
    params: int = 0
    calls: int = 0

    @property
    def is_synaptic(self) -> bool:
        return self.kind in ("linear", "conv1d", "conv2d", "delay")

    def total(self, key: str) -> float:
        return float(np.asarray(getattr(self, key), dtype=np.float64).sum())


_SYN_KEYS = ("synops", "macs_dense", "macs_effective", "synops_rate_scaled", "input_nonzero", "input_elements",
             "output_elements")
_NEURON_KEYS = ("updates", "spikes", "output_elements")


def _finish(series: dict[str, Any]) -> dict[str, np.ndarray]:
    """Series of one call as float64 numpy arrays; adds the rate-scaled synaptic operations of synaptic layers."""
    out = {k: (v.double().cpu().numpy() if isinstance(v, torch.Tensor) else np.asarray(v, dtype=np.float64))
           for k, v in series.items() if k != "binary"}
    if "binary" in series:
        rate = out["input_nonzero"] / np.maximum(out["input_elements"], 1)
        out["synops_rate_scaled"] = rate * out["macs_dense"] if series["binary"] else np.zeros_like(rate)
    return out


def _add_series(counts: LayerCounts, key: str, values: np.ndarray) -> None:
    current = getattr(counts, key)
    if current.size < values.size:
        current = np.concatenate([current, np.zeros(values.size - current.size)])
    elif values.size < current.size:
        values = np.concatenate([values, np.zeros(current.size - values.size)])
    setattr(counts, key, current + values)


def _other_kind(module: nn.Module) -> str | None:
    """``"neuron"``, ``"norm"``, ``"unknown"`` (has parameters the counter cannot price) or ``None`` (nothing to count)."""
    if isinstance(module, SpikingNeuron):
        return "neuron"
    if isinstance(module, _NORM_TYPES):
        return "norm"
    if any(True for _ in module.parameters(recurse=False)):
        return "unknown"
    return None


class OperationCounter:
    """Hooks on a model that count operations during real forward passes.

    Use as a context manager around forward passes, telling it the batch's time steps and batch size::

        counter = OperationCounter(model)
        with counter:
            for x in batches:              # x: [T, B, ...]
                counter.begin(x.shape[0], x.shape[1])
                model(x)
                counter.end()
        counter.layers                      # {name: LayerCounts}
    """

    def __init__(self, model: nn.Module) -> None:
        if not isinstance(model, nn.Module):
            raise TypeError(f"model: expected a torch.nn.Module, got {type(model).__name__}")
        self.model = model
        self.layers: dict[str, LayerCounts] = {}
        self.samples = 0
        self.time_steps = 0
        self.skipped: dict[str, str] = {}
        self._handles: list[Any] = []
        self._pending: dict[str, list[tuple[dict[str, torch.Tensor], bool]]] = {}
        self._fanout_cache: dict[tuple, torch.Tensor] = {}
        self._spikes: dict[int, tuple[weakref.ref, torch.Tensor]] = {}
        self._T = 0
        self._B = 0
        self._modules: list[tuple[str, nn.Module, str]] = []
        for name, module in model.named_modules():
            kind = synaptic_kind(module) or _other_kind(module)
            if kind is not None:
                self._modules.append((name, module, kind))

    # ------------------------------------------------------------------ hooks
    def __enter__(self) -> "OperationCounter":
        for name, module, kind in self._modules:
            self._handles.append(module.register_forward_hook(self._make_hook(name, kind)))
        return self

    def __exit__(self, *exc: object) -> None:
        for handle in self._handles:
            handle.remove()
        self._handles.clear()
        if self.skipped:
            for name, what in self.skipped.items():
                warnings.warn(f"energy: layer {name or '<model>'!r} ({what}) has parameters but its type is not "
                              "counted; its operations were skipped, so the totals are lower bounds", stacklevel=2)

    def begin(self, time_steps: int, batch_size: int) -> None:
        """Declare the next forward pass's input layout ``[T, B, ...]``."""
        if time_steps < 1 or batch_size < 1:
            raise ValueError(f"begin: expected T >= 1 and B >= 1, got T={time_steps}, B={batch_size}")
        self._T, self._B = int(time_steps), int(batch_size)
        self._pending = {}
        self._spikes = {}

    def end(self) -> None:
        """Close the forward pass: resolve step-by-step calls and add this pass's counts to the totals."""
        for name, entries in self._pending.items():
            per_step_calls = [e for e, step_mode in entries if step_mode]
            whole = [e for e, step_mode in entries if not step_mode]
            counts = self.layers[name]
            for series in whole:
                for key, value in _finish(series).items():
                    _add_series(counts, key, value)
            if per_step_calls:
                resolved = len(per_step_calls) == self._T
                done = [_finish(e) for e in per_step_calls]
                for key in done[0]:
                    stacked = np.concatenate([d[key].reshape(-1) for d in done])
                    _add_series(counts, key, stacked if resolved else np.array([stacked.sum()]))
            counts.steps = max(counts.steps, max((v.size for v in (counts.synops, counts.updates)), default=0))
        self._pending = {}
        self._spikes = {}
        self.samples += self._B
        self.time_steps = max(self.time_steps, self._T)

    def _make_hook(self, name: str, kind: str):
        def hook(module: nn.Module, inputs: tuple, output: Any) -> None:
            if kind == "unknown":
                self.skipped[name] = f"{type(module).__name__}, {sum(p.numel() for p in module.parameters(recurse=False))} parameters"
                return
            x = inputs[0] if inputs else None
            y = output[0] if isinstance(output, (tuple, list)) else output
            if not isinstance(x, torch.Tensor) or not isinstance(y, torch.Tensor):
                return
            counts = self.layers.get(name)
            if counts is None:
                counts = self.layers[name] = LayerCounts(name=name, kind=kind)
            counts.calls += 1
            with torch.no_grad():
                if kind == "neuron":
                    series, step_mode = self._count_neuron(module, counts, x, y)
                elif kind == "norm":
                    return
                else:
                    series, step_mode = self._count_synaptic(module, kind, counts, x, y)
            self._pending.setdefault(name, []).append((series, step_mode))
        return hook

    # ------------------------------------------------------------------ layouts
    def _leading_steps(self, n: int) -> tuple[int, bool]:
        """Time steps folded into a leading dimension of size ``n`` (flattened ``[T*B]``) → (steps, step_mode)."""
        if self._B and n == self._B and self._T > 1:
            return 1, True
        if self._B and n % self._B == 0:
            return n // self._B, False
        return 1, False  # cannot tell the steps apart: count the call as one unresolved step

    # ------------------------------------------------------------------ synaptic layers
    def _count_synaptic(self, module, kind, counts, x, y):
        if kind in ("conv1d", "conv2d"):
            spatial = 1 if kind == "conv1d" else 2
            if x.dim() != spatial + 2:  # unbatched conv input
                x, y = x.unsqueeze(0), y.unsqueeze(0)
            steps, step_mode = self._leading_steps(x.shape[0])
            fan_in = module.weight.shape[1] * int(np.prod(module.weight.shape[2:]))
            counts.params = module.weight.numel() + (module.bias.numel() if module.bias is not None else 0)
        else:
            if x.dim() >= 3:
                steps, step_mode = x.shape[0], False
            elif x.dim() == 2:
                steps, step_mode = self._leading_steps(x.shape[0])
            else:
                x, y = x.reshape(1, -1), y.reshape(1, -1)
                steps, step_mode = 1, self._T > 1 and self._B == 1
            if kind == "linear":
                fan_in = module.in_features
                counts.params = module.weight.numel() + (module.bias.numel() if module.bias is not None else 0)
        fanout = fanout_map(module, kind, x, self._fanout_cache)
        if kind == "delay":
            counts.params = int(fanout.sum().item())
            fan_in = None
        in_feat = fanout.numel()
        known = self._known_spikes(x)
        if known is not None:  # a spiking neuron's output: binary by construction, its per-step counts are known
            binary = True
            if kind == "linear" and known.numel() == steps:
                nonzero = known
                effective = nonzero * float(module.out_features)
            else:
                per_input = x.reshape(steps, -1, in_feat).sum(1).to(torch.float64)
                effective = per_input @ fanout.reshape(-1)
                nonzero = per_input.sum(1)
        else:
            binary = _is_binary(x)
            # per-step non-zero inputs and effective ops (non-zero input × fan-out)
            if kind == "linear":  # uniform fan-out: counts per step suffice
                nonzero = _nonzero_indicator(x.reshape(steps, -1)).sum(1, dtype=torch.float64)
                effective = nonzero * float(module.out_features)
            else:
                nz_steps = _nonzero_indicator(x.reshape(steps, -1, in_feat)).sum(1, dtype=torch.float64)
                effective = nz_steps @ fanout.reshape(-1)
                nonzero = nz_steps.sum(1)
        counts.binary_input = counts.binary_input and binary
        # data-dependent series stay tensors (no device sync here); constants are numpy, combined in end()
        in_elems = np.full(steps, x.numel() / steps)
        out_elems = np.full(steps, y.numel() / steps)
        if kind == "delay":
            dense = in_elems / in_feat * float(fanout.sum())
        else:
            dense = out_elems * fan_in
        zero = np.zeros(steps)
        series = {
            "synops": effective if binary else zero,
            "macs_dense": dense,
            "macs_effective": zero if binary else effective,
            "input_nonzero": nonzero,
            "input_elements": in_elems,
            "output_elements": out_elems,
            "binary": binary,
        }
        return series, step_mode

    def _known_spikes(self, x: torch.Tensor) -> torch.Tensor | None:
        """Per-step spike counts when ``x`` is (a view of) a spiking neuron's output of this forward, else None.

        The neuron's tensor is held by a weak reference: while it lives its memory cannot be reused, so a match of
        data pointer and size identifies the same spikes (a freed tensor falls back to checking the values).
        """
        entry = self._spikes.get(x.data_ptr())
        if entry is None:
            return None
        ref, per_step = entry
        y = ref()
        if y is None or y.numel() != x.numel() or y.dtype != x.dtype or not x.is_contiguous():
            return None
        return per_step

    # ------------------------------------------------------------------ neurons
    def _count_neuron(self, module, counts, x, y):
        steps = x.shape[0]
        counts.spiking = not isinstance(module, LI)
        counts.state_vars = len(module.dynamics().states)
        per_step = x.numel() / max(steps, 1)
        counts.neurons = int(round(per_step / max(self._B, 1)))
        per_step_np = np.full(steps, per_step)
        if counts.spiking:
            flat = y.reshape(steps, -1)
            exact32 = flat.shape[1] < 2**24  # float32 sums of 0/1 are exact below 2^24 terms
            spikes = (flat.sum(1) if exact32 else flat.sum(1, dtype=torch.float64)).to(torch.float64)
            self._spikes[y.data_ptr()] = (weakref.ref(y), spikes)
        else:
            spikes = np.zeros(steps)
        series = {"updates": per_step_np, "spikes": spikes, "output_elements": per_step_np}
        return series, False


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
            raise TypeError(f"data: each batch must be a tensor [T, B, ...] or a tuple (x, ...), got {type(x).__name__}")
        lengths = batch[2] if isinstance(batch, (tuple, list)) and len(batch) >= 3 else None
        if not (isinstance(lengths, torch.Tensor) and lengths.dim() == 1 and x.dim() >= 2
                and lengths.shape[0] == x.shape[1] and not lengths.is_floating_point()):
            lengths = None
        yield x, lengths


def count_operations(model: nn.Module, data: Any, max_batches: int | None = None) -> OperationCounter:
    """Run ``model`` (eval mode, no autograd) on ``data`` and return the filled :class:`OperationCounter`.

    Args:
        model: the network; it must accept a time-major tensor ``[T, B, ...]``.
        data: a tensor ``[T, B, ...]`` or an iterable of batches ``x`` or ``(x, ...)``. Padded batches
            ``(x, labels, lengths)`` (``lengths`` a ``[B]`` integer tensor) are run as ``model(x, lengths)`` when
            the model declares ``accepts_lengths = True`` (e.g. :class:`snn.models.DelayNet`, which then silences
            each sample's padded steps), so padding adds no operations.
        max_batches: stop after this many batches (``None``: all).
    """
    if not isinstance(model, nn.Module):
        raise TypeError(f"model: expected a torch.nn.Module, got {type(model).__name__}")
    if max_batches is not None and (not isinstance(max_batches, int) or max_batches < 1):
        raise ValueError(f"max_batches: expected a positive int or None, got {max_batches!r}")
    if isinstance(data, torch.Tensor) and data.dim() < 2:
        raise ValueError(f"data: expected a time-major tensor [T, B, ...], got shape {tuple(data.shape)}")
    counter = OperationCounter(model)
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
                counter.begin(x.shape[0], x.shape[1])
                if takes_lengths and lengths is not None:  # padded steps of short samples do not run
                    model(x, lengths.to(x.device))
                else:
                    model(x)
                counter.end()
    finally:
        model.train(was_training)
    if counter.samples == 0:
        raise ValueError("data: no batch was run (empty data)")
    return counter
