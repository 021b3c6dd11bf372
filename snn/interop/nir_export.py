r"""Export a network of this package to a NIR graph (:func:`to_nir`).

The network is read as a chain of layers (its inference form):

* an ``nn.Sequential`` (nested ones are flattened) of supported layers;
* a model that says how to read it: a method ``nir_layers() -> [(name, module), ...]`` (the protocol for model
  families), or an adapter registered with :func:`register_nir_layers` (how the built-in families are read).

Each layer becomes a node; consecutive nodes are joined by edges. What each layer becomes:

==============================================  ===================================================================
here                                            NIR
==============================================  ===================================================================
``nn.Linear``                                    ``Affine`` (``Linear`` without bias)
``RecurrentLIF``                                 ``Affine`` (input projection), then a subgraph ``input → lif``,
                                                 ``lif → w_rec → lif`` (``Linear``), ``lif → output``: the
                                                 recurrent edge carries the previous step's spikes
``LearnableDelay`` (rounded integer delays)      a subgraph: per delay ``d`` present, ``Delay(d·dt)`` → ``Linear``
                                                 of the synapses with that delay; the branches sum at its output
``PerStep(nn.Conv1d / nn.Conv2d)``               ``Conv1d`` / ``Conv2d``
``PerStep(nn.AvgPool2d)``                        ``AvgPool2d`` (``divisor_override=1``: ``SumPool2d``)
``PerStep(nn.LPPool2d(norm_type=1))``            ``SumPool2d``
``PerStep(nn.Flatten)``, ``nn.Flatten``          ``Flatten`` (dims counted without time and batch)
``BatchNorm1d/2d`` after a synapse (eval stats)  folded into that synapse: ``W ← a·W``, ``b ← a·b + (β - a·μ)``,
                                                 ``a = γ/√(σ² + ε)``
``LIF``, ``ParametricLIF``, ``LI``, ``IF``      ``LIF``, ``LIF``, ``LI``, ``IF`` (see :mod:`snn.interop.nir_neurons`)
``ElementwiseAffine`` before a neuron            folded into the neuron's ``r`` and ``v_leak``
dropout, ``nn.Identity``                         dropped (identity at inference), listed in a warning
==============================================  ===================================================================

Surrogate gradients, ``detach_reset``, learnable-τ parametrisations and Gaussian delay kernels only shape training:
the graph holds the inference network, and a :class:`NIRExportWarning` lists what was left out. Anything else —
a soft reset, an adaptive threshold, a module with no NIR node (ELM, attention, …) — is a
:class:`~snn.interop.nir_neurons.NIRConversionError` naming the module and the reason.
"""
from __future__ import annotations

import importlib
import warnings
from collections.abc import Callable

import numpy as np
import torch
from torch import nn

from snn.interop.nir_network import ElementwiseAffine
from snn.interop.nir_neurons import NIRConversionError, neuron_to_nir
from snn.layers import LearnableDelay, PerStep, RecurrentLIF
from snn.layers import delay_functional as DF
from snn.neuron_models import SpikingNeuron

__all__ = ["to_nir", "register_nir_layers", "NIRExportWarning", "inference_layers"]

Layers = list[tuple[str, nn.Module]]
_ADAPTERS: dict[type, Callable[[nn.Module], Layers]] = {}
_DROPOUT_NAMES = ("Dropout", "Dropout1d", "Dropout2d", "SequenceDropout", "AlphaDropout")


class NIRExportWarning(UserWarning):
    """Training-only parts that the exported (inference) graph leaves out."""


def register_nir_layers(model_class: type, adapter: Callable[[nn.Module], Layers]) -> None:
    """Tell :func:`to_nir` how to read ``model_class`` as a chain: ``adapter(model) -> [(name, module), ...]``."""
    if not isinstance(model_class, type) or not callable(adapter):
        raise TypeError(f"register_nir_layers: expected (class, callable), got ({model_class!r}, {adapter!r})")
    _ADAPTERS[model_class] = adapter


def _sequential(prefix: str, module: nn.Sequential) -> Layers:
    out: Layers = []
    for name, child in module.named_children():
        path = f"{prefix}.{name}" if prefix else name
        out.extend(_sequential(path, child) if isinstance(child, nn.Sequential) else [(path, child)])
    return out


def inference_layers(model: nn.Module) -> Layers:
    """``[(name, module), ...]``: the chain :func:`to_nir` exports for ``model`` (see the module docstring)."""
    importlib.import_module("snn.interop.nir_families")  # registers the built-in families (it imports this module)
    if hasattr(model, "nir_layers"):
        return list(model.nir_layers())
    for cls in type(model).__mro__:
        if cls in _ADAPTERS:
            return _ADAPTERS[cls](model)
    if isinstance(model, nn.Sequential):
        return _sequential("", model)
    return [(type(model).__name__.lower(), model)]


def _arr(t: torch.Tensor) -> np.ndarray:
    return t.detach().cpu().numpy().copy()


def _bn_affine(path: str, bn: nn.Module) -> tuple[torch.Tensor, torch.Tensor]:
    """``(a, b)`` with ``BN(y) = a·y + b`` per channel, from the running statistics (float64)."""
    if not bn.track_running_stats or bn.running_mean is None:
        raise NIRConversionError(f"{path}: BatchNorm without running statistics cannot be folded (it normalises with "
                                 "each batch's own statistics at inference)")
    var = bn.running_var.double()
    a = 1.0 / torch.sqrt(var + bn.eps)
    b = -bn.running_mean.double() * a
    if bn.affine:
        a, b = a * bn.weight.detach().double(), b * bn.weight.detach().double() + bn.bias.detach().double()
    return a, b


def _is_bn(m: nn.Module) -> bool:
    inner = m.module if isinstance(m, PerStep) else m
    return isinstance(inner, nn.modules.batchnorm._BatchNorm)


class _Builder:
    """Walks the chain, keeping one sample's feature shape, and emits NIR nodes."""

    def __init__(self, dt: float) -> None:
        self.dt = dt
        self.dropped: list[str] = []
        self.training_only: dict[str, list[str]] = {}

    def note(self, what: str, path: str) -> None:
        self.training_only.setdefault(what, []).append(path)

    # ------------------------------------------------------------------ synapses (with a BatchNorm folded in)
    def linear(self, path: str, m: nn.Linear, bn):
        import nir

        w = m.weight.detach().double()
        b = m.bias.detach().double() if m.bias is not None else None
        if bn is not None:
            a, c = bn
            w = w * a[:, None]
            b = (b * a if b is not None else 0) + c
        dtype = m.weight.dtype
        if b is None:
            return nir.Linear(weight=_arr(w.to(dtype)))
        return nir.Affine(weight=_arr(w.to(dtype)), bias=_arr(b.to(dtype)))

    def conv(self, path: str, m: nn.Module, bn, in_shape: tuple[int, ...]):
        import nir

        if m.padding_mode != "zeros":
            raise NIRConversionError(f"{path}: padding_mode={m.padding_mode!r} has no NIR form (NIR pads with zeros)")
        w = m.weight.detach().double()
        b = m.bias.detach().double() if m.bias is not None else torch.zeros(w.shape[0], dtype=torch.float64)
        if bn is not None:
            a, c = bn
            w = w * a.view(-1, *([1] * (w.dim() - 1)))
            b = b * a + c
        dtype = m.weight.dtype
        w, b = _arr(w.to(dtype)), _arr(b.to(dtype))
        padding = m.padding if isinstance(m.padding, str) else tuple(m.padding)
        if isinstance(m, nn.Conv1d):
            return nir.Conv1d(input_shape=int(in_shape[1]), weight=w, stride=int(m.stride[0]),
                              padding=padding if isinstance(padding, str) else int(padding[0]),
                              dilation=int(m.dilation[0]), groups=m.groups, bias=b)
        return nir.Conv2d(input_shape=tuple(int(s) for s in in_shape[1:]), weight=w, stride=tuple(m.stride),
                          padding=padding, dilation=tuple(m.dilation), groups=m.groups, bias=b)

    def delay(self, path: str, m: LearnableDelay, bn):
        """Integer-delay synapse as a subgraph: ``Delay(d)`` → ``Linear(W_d)`` per delay present, summed."""
        import nir

        if not m.has_integer_delays():
            self.note("Gaussian/triangle delay kernels replaced by their rounded integer delays", path)
        with torch.no_grad():
            delays = m.rounded_delays()  # [C_out, C_in, K]
            # the one-tap kernel of the evaluation form holds w / (1 + eps) (delay_functional's normalisation)
            w = m.weight.detach().double() / (1.0 + DF.NORM_EPS)
        a, c = bn if bn is not None else (torch.ones(m.out_features, dtype=torch.float64), None)
        bias = m.bias.detach().double() * a if m.bias is not None else None
        if c is not None:
            bias = c if bias is None else bias + c
        dtype = m.weight.dtype
        present = sorted(int(d) for d in torch.unique(delays))
        nodes: dict = {"input": nir.Input(input_type=np.array([m.in_features])),
                       "output": nir.Output(output_type=np.array([m.out_features]))}
        edges: list[tuple[str, str]] = []
        for i, d in enumerate(present):
            wd = (w * (delays == d)).sum(-1) * a[:, None]
            name = f"w_delay{d}"
            if i == 0 and bias is not None:
                nodes[name] = nir.Affine(weight=_arr(wd.to(dtype)), bias=_arr(bias.to(dtype)))
            else:
                nodes[name] = nir.Linear(weight=_arr(wd.to(dtype)))
            if d == 0:
                edges.append(("input", name))
            else:
                nodes[f"delay{d}"] = nir.Delay(delay=np.full(m.in_features, d * self.dt))
                edges += [("input", f"delay{d}"), (f"delay{d}", name)]
            edges.append((name, "output"))
        return nir.NIRGraph(nodes=nodes, edges=edges, type_check=True)

    def recurrent(self, path: str, m: RecurrentLIF, in_shape: tuple[int, ...]):
        """``(input projection, subgraph)``: ``Affine(W_in, b)`` then the cycle ``lif → w_rec → lif`` (snnTorch's
        ``RLeaky`` layout), the recurrent ``Linear`` carrying the previous step's spikes."""
        import nir

        n = m.out_features
        projection = self.linear(f"{path}.input", m.input, None)
        projection.input_type = {"input": np.array(in_shape)}
        projection.output_type = {"output": np.array([n])}
        lif = neuron_to_nir(f"{path}.neuron", m.neuron, self.dt, (n,))
        self.note(f"surrogate gradients ({m.neuron.surrogate})", f"{path}.neuron")
        w_rec = self.linear(f"{path}.recurrent", m.recurrent, None)
        sub = nir.NIRGraph(nodes={"input": nir.Input(input_type=np.array([n])), "lif": lif, "w_rec": w_rec,
                                  "output": nir.Output(output_type=np.array([n]))},
                           edges=[("input", "lif"), ("lif", "w_rec"), ("w_rec", "lif"), ("lif", "output")],
                           type_check=True)
        return projection, sub

    # ------------------------------------------------------------------ everything else
    def per_step(self, path: str, inner: nn.Module, in_shape: tuple[int, ...]):
        import nir

        if isinstance(inner, nn.Flatten):
            start, end = inner.start_dim, inner.end_dim
            if start < 1 or (end >= 0 and end < 1):
                raise NIRConversionError(f"{path}: Flatten over the batch dimension (start_dim={start}, "
                                         f"end_dim={end} on [N, ...]) has no per-sample NIR form")
            return nir.Flatten(input_type={"input": np.array(in_shape)}, start_dim=start - 1,
                               end_dim=end - 1 if end >= 0 else end)
        if isinstance(inner, nn.AvgPool2d):
            if inner.ceil_mode or not inner.count_include_pad or inner.divisor_override not in (None, 1):
                raise NIRConversionError(f"{path}: AvgPool2d with ceil_mode, count_include_pad=False or a divisor "
                                         "other than 1 has no NIR form")
            node = nir.SumPool2d if inner.divisor_override == 1 else nir.AvgPool2d
            return node(kernel_size=_pair(inner.kernel_size), stride=_pair(inner.stride or inner.kernel_size),
                        padding=_pair(inner.padding))
        if isinstance(inner, nn.LPPool2d):
            if float(inner.norm_type) != 1.0 or inner.ceil_mode:
                raise NIRConversionError(f"{path}: LPPool2d is a NIR SumPool2d only with norm_type=1 and no ceil_mode")
            return nir.SumPool2d(kernel_size=_pair(inner.kernel_size), stride=_pair(inner.stride or inner.kernel_size),
                                 padding=np.array([0, 0]))
        raise NIRConversionError(f"{path}: {type(inner).__name__} has no NIR node")


def _node_name(path: str, index: int, taken: dict) -> str:
    """The node name of a layer: its path with ``_`` for ``.``; ``layer_<path>`` when that is taken (``input``,
    ``output``, a repeat)."""
    name = path.replace(".", "_") or f"layer{index}"
    return name if name not in taken and name not in ("input", "output") else f"layer{index}_{name}"


def _pair(v) -> np.ndarray:
    return np.array([v, v] if isinstance(v, int) else list(v))


def _out_shape(m: nn.Module, in_shape: tuple[int, ...]) -> tuple[int, ...]:
    """One sample's feature shape after ``m`` (``m`` run on a ``[1, 1, ...]`` zero sequence, or ``[1, ...]``)."""
    with torch.no_grad():
        p = next(iter(m.parameters()), None)
        dtype = p.dtype if p is not None else torch.get_default_dtype()
        x = torch.zeros((1, 1, *in_shape), dtype=dtype, device=p.device if p is not None else None)
        return tuple(m(x).shape[2:])


def _first_shape(layers: Layers) -> tuple[int, ...] | None:
    for path, m in layers:
        inner = m.module if isinstance(m, PerStep) else m
        if isinstance(inner, (nn.Linear, LearnableDelay, RecurrentLIF)):
            return (inner.in_features,)
        if not isinstance(inner, (nn.Identity, nn.Dropout)) and type(inner).__name__ not in _DROPOUT_NAMES:
            return None
    return None


def to_nir(model: nn.Module, dt: float, *, input_shape: tuple[int, ...] | None = None):
    """Export ``model``'s inference network as a ``nir.NIRGraph`` (see the module docstring for what maps to what).

    Args:
        model: an ``nn.Sequential`` of supported layers, a model with ``nir_layers()``, or a registered family
            (``DelayNet``); a single supported layer also works.
        dt: the simulation step in seconds (e.g. ``1e-3`` for 1 ms bins): NIR time constants and delays are in
            seconds, ours in steps (``τ_NIR = tau · dt``).
        input_shape: one sample's input feature shape without time and batch (e.g. ``(2, 34, 34)``); needed when
            the first layer is a convolution, pooling or flatten, inferred from a first ``Linear``/delay layer.

    Returns:
        ``nir.NIRGraph`` with nodes ``input``, one per layer (named after the layer's path, dots → ``_``), ``output``;
        its ``metadata`` holds ``dt`` (seconds), which ``nir.write`` stores in the file.

    Raises:
        NIRConversionError: a layer with no NIR form (the message names it and says why).
        ValueError: bad ``dt`` or ``input_shape``.
    """
    import nir

    if not isinstance(model, nn.Module):
        raise TypeError(f"model: expected a torch.nn.Module, got {type(model).__name__}")
    if not isinstance(dt, (int, float)) or isinstance(dt, bool) or not np.isfinite(dt) or dt <= 0:
        raise ValueError(f"dt: expected the step in seconds, a finite number > 0, got {dt!r}")
    layers = inference_layers(model)
    shape = tuple(int(s) for s in input_shape) if input_shape is not None else _first_shape(layers)
    if shape is None:
        raise ValueError("input_shape: needed (one sample's feature shape, e.g. (2, 34, 34)) because the first layer "
                         f"is {type(layers[0][1]).__name__ if layers else 'missing'}, whose input size it does not fix")
    b = _Builder(float(dt))
    nodes: dict = {"input": nir.Input(input_type=np.array(shape))}
    i = 0
    while i < len(layers):
        emitted, shape, used = _export_layer(b, layers, i, shape)
        for suffix, node in emitted:
            nodes[_node_name(layers[i][0], i, nodes) + suffix] = node
        i += used
    nodes["output"] = nir.Output(output_type=np.array(shape))
    names = list(nodes)
    graph = nir.NIRGraph(nodes=nodes, edges=list(zip(names[:-1], names[1:])), type_check=True,
                         metadata={"dt": float(dt), "exporter": "snn-sim"})
    _warn(b)
    return graph


def _neuron_node(b: _Builder, path: str, neuron: nn.Module, shape: tuple[int, ...], pre=None):
    node = neuron_to_nir(path, neuron, b.dt, shape, pre=pre)
    if type(neuron).__name__ != "LI":
        b.note(f"surrogate gradients ({neuron.surrogate})", path)
    return node


def _export_layer(b: _Builder, layers: Layers, i: int, shape: tuple[int, ...]):
    """NIR nodes for ``layers[i]`` (and a BatchNorm or neuron it absorbs) → ``([(suffix, node)], shape, layers used)``."""
    import nir

    path, m = layers[i]
    inner = m.module if isinstance(m, PerStep) else m
    nxt = layers[i + 1][1] if i + 1 < len(layers) else None
    bn = None
    if isinstance(inner, (nn.Linear, LearnableDelay, nn.Conv1d, nn.Conv2d)) and nxt is not None and _is_bn(nxt):
        bn = _bn_affine(layers[i + 1][0], nxt.module if isinstance(nxt, PerStep) else nxt)
    used = 2 if bn is not None else 1
    in_shape = shape
    if isinstance(m, RecurrentLIF):
        projection, sub = b.recurrent(path, m, in_shape)
        return [("_input", projection), ("", sub)], (m.out_features,), 1
    if isinstance(inner, nn.Linear):
        node, shape = b.linear(path, inner, bn), (inner.out_features,)
    elif isinstance(inner, LearnableDelay):
        return [("", b.delay(path, inner, bn))], (inner.out_features,), used
    elif isinstance(inner, (nn.Conv1d, nn.Conv2d)):
        node, shape = b.conv(path, inner, bn, in_shape), _out_shape(PerStep(inner), in_shape)
    elif _is_bn(m):
        raise NIRConversionError(f"{path}: BatchNorm can only be exported folded into a preceding Linear, Conv or "
                                 f"delay layer; here it follows {type(layers[i - 1][1]).__name__ if i else 'the input'}")
    elif isinstance(m, PerStep) or isinstance(m, nn.Flatten):
        if isinstance(m, nn.Flatten):  # bare, on [T, B, ...]
            if m.start_dim < 2:
                raise NIRConversionError(f"{path}: nn.Flatten(start_dim={m.start_dim}) on time-major [T, B, ...] "
                                         "flattens time or batch; use start_dim >= 2 or PerStep(nn.Flatten())")
            inner = nn.Flatten(m.start_dim - 1, m.end_dim - 1 if m.end_dim >= 0 else m.end_dim)
        node, shape = b.per_step(path, inner, in_shape), _out_shape(PerStep(inner), in_shape)
    elif isinstance(m, ElementwiseAffine) and isinstance(nxt, SpikingNeuron):
        node, used = _neuron_node(b, layers[i + 1][0], nxt, shape, pre=m), 2
    elif isinstance(m, ElementwiseAffine):
        if m.shift is not None:
            raise NIRConversionError(f"{path}: an elementwise shift has no NIR node unless a neuron follows")
        node = nir.Scale(scale=np.broadcast_to(_arr(m.scale), shape).copy())
    elif isinstance(m, SpikingNeuron):
        node = _neuron_node(b, path, m, shape)
    elif isinstance(m, (nn.Identity, nn.Dropout)) or type(m).__name__ in _DROPOUT_NAMES:
        b.dropped.append(f"{path} ({type(m).__name__})")
        return [], shape, 1
    elif hasattr(m, "stream") and hasattr(m, "summary"):  # an imported NIRNetwork
        raise NIRConversionError(f"{path}: a network imported from NIR is not exported again; write the graph it "
                                 "came from (snn.interop.read_nir / write_nir) instead")
    else:
        raise NIRConversionError(f"{path}: {type(m).__name__} has no NIR node (supported: Linear, LearnableDelay, "
                                 "RecurrentLIF, Conv1d/Conv2d, AvgPool2d/SumPool, Flatten, BatchNorm folded into a "
                                 "synapse, LIF, ParametricLIF, LI, IF, dropout dropped)")
    node.input_type = {"input": np.array(in_shape)}
    node.output_type = {"output": np.array(shape)}
    return [("", node)], shape, used


def _warn(b: _Builder) -> None:
    parts = []
    if b.dropped:
        parts.append("dropped (identity at inference): " + ", ".join(b.dropped))
    for what, paths in b.training_only.items():
        parts.append(f"{what}: " + ", ".join(paths))
    if parts:
        warnings.warn("NIR export holds the inference network; training-only parts left out — " + "; ".join(parts),
                      NIRExportWarning, stacklevel=3)
