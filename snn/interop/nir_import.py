r"""Import a NIR graph as a module of this package (:func:`from_nir`), and read/write NIR files.

=============================================  ====================================================================
NIR                                             here
=============================================  ====================================================================
``Affine`` / ``Linear``                          ``nn.Linear`` (with / without bias)
``Scale``                                        :class:`~snn.interop.nir_network.ElementwiseAffine`
``Conv1d`` / ``Conv2d``                          ``PerStep(nn.Conv1d / nn.Conv2d)``
``AvgPool2d`` / ``SumPool2d``                    ``PerStep(nn.AvgPool2d)`` (``SumPool2d``: ``divisor_override=1``,
                                                 i.e. the sum over the window, zero padding included)
``Flatten``                                      ``PerStep(nn.Flatten)`` (NIR's dims exclude the batch)
``Delay``                                        :class:`~snn.interop.nir_network.StepDelay` (``delay/dt`` must be an
                                                 integer number of steps)
``LIF``, ``LI``, ``IF``, ``CubaLIF``, ``CubaLI``  ``LIF``, ``LI``, ``IF``; CubaLIF/CubaLI as a synaptic ``LI`` feeding
                                                 the membrane (see :mod:`snn.interop.nir_neurons`)
``NIRGraph`` (subgraph, may be recurrent)        a nested :class:`~snn.interop.nir_network.NIRNetwork`; a subgraph of
                                                 parallel ``[Delay(d) →] Linear`` branches (a delay synapse) runs as
                                                 one :class:`~snn.interop.nir_network.DelayBank` convolution
=============================================  ====================================================================

``I`` (integrator without threshold), ``Threshold`` and any other node raise
:class:`~snn.interop.nir_neurons.NIRConversionError` naming the node and its type.
"""
from __future__ import annotations

import os
from pathlib import Path

import numpy as np
import torch
from torch import nn

from snn.atomic import atomic_path
from snn.interop.nir_network import DelayBank, ElementwiseAffine, NIRNetwork, StepDelay
from snn.interop.nir_neurons import NEURON_NODE_TYPES, NIRConversionError, neuron_from_nir
from snn.layers import PerStep

__all__ = ["from_nir", "read_nir", "write_nir", "NIRFormatError", "DELAY_ATOL"]

#: largest distance (in steps) of ``delay / dt`` from an integer that still imports as that integer
DELAY_ATOL = 1e-3


class NIRFormatError(ValueError):
    """A file that is not a readable NIR graph, or a graph whose structure this package cannot run."""


def read_nir(path: str | os.PathLike):
    """``nir.read(path)`` with errors that say what is wrong with the file instead of a traceback from h5py."""
    import nir

    p = Path(path)
    if not p.is_file():
        raise FileNotFoundError(f"NIR file not found: {p}")
    try:
        return nir.read(p)
    except OSError as err:
        raise NIRFormatError(f"{p}: not a NIR file (NIR graphs are HDF5 files written by nir.write): {err}") from err
    except (KeyError, AssertionError, TypeError, ValueError, AttributeError) as err:
        detail = str(err) or type(err).__name__
        raise NIRFormatError(f"{p}: an HDF5 file but not a valid NIR graph ({type(err).__name__}: {detail}); "
                             "it may hold a node type this version of nir does not know, or miss nodes/edges") from err


def write_nir(graph, path: str | os.PathLike) -> Path:
    """Write ``graph`` to ``path`` (HDF5, through ``nir.write``) atomically; returns the path."""
    import nir

    p = Path(path)
    p.parent.mkdir(parents=True, exist_ok=True)
    with atomic_path(p, suffix=".nir") as tmp:
        nir.write(tmp, graph)
    return p


def _ints(v, n: int) -> tuple[int, ...]:
    a = np.atleast_1d(np.asarray(v)).astype(np.int64)
    return tuple(int(x) for x in (np.broadcast_to(a, (n,)) if a.size == 1 else a))


def _tensor(a, dtype: torch.dtype) -> torch.Tensor:
    return torch.as_tensor(np.array(a), dtype=dtype)


def _linear(path: str, node, dtype: torch.dtype) -> nn.Linear:
    w = np.asarray(node.weight)
    if w.ndim != 2:
        raise NIRConversionError(f"{path}: {type(node).__name__} weight must be 2-D [out, in], got shape {w.shape}")
    bias = getattr(node, "bias", None)
    m = nn.Linear(w.shape[1], w.shape[0], bias=bias is not None, dtype=dtype)
    with torch.no_grad():
        m.weight.copy_(_tensor(w, dtype))
        if bias is not None:
            m.bias.copy_(_tensor(np.broadcast_to(np.asarray(bias), (w.shape[0],)), dtype))
    return m


def _conv(path: str, node, dtype: torch.dtype) -> PerStep:
    w = np.asarray(node.weight)
    two_d = type(node).__name__ == "Conv2d"
    n = 2 if two_d else 1
    if w.ndim != n + 2:
        raise NIRConversionError(f"{path}: {type(node).__name__} weight must have {n + 2} dims, got shape {w.shape}")
    padding = node.padding if isinstance(node.padding, str) else _ints(node.padding, n)
    cls = nn.Conv2d if two_d else nn.Conv1d
    groups = int(node.groups)
    m = cls(w.shape[1] * groups, w.shape[0], w.shape[2:], stride=_ints(node.stride, n), padding=padding,
            dilation=_ints(node.dilation, n), groups=groups, bias=True, dtype=dtype)
    with torch.no_grad():
        m.weight.copy_(_tensor(w, dtype))
        bias = node.bias if node.bias is not None else np.zeros(w.shape[0])
        m.bias.copy_(_tensor(np.broadcast_to(np.asarray(bias), (w.shape[0],)), dtype))
    return PerStep(m)


def _pool(node) -> PerStep:
    kind = type(node).__name__
    return PerStep(nn.AvgPool2d(_ints(node.kernel_size, 2), stride=_ints(node.stride, 2),
                                padding=_ints(node.padding, 2), divisor_override=1 if kind == "SumPool2d" else None))


def _flatten(node) -> PerStep:
    start, end = int(node.start_dim), int(node.end_dim)
    return PerStep(nn.Flatten(start + 1 if start >= 0 else start, end + 1 if end >= 0 else end))


def _delay(path: str, node, dt: float) -> StepDelay:
    steps = np.asarray(node.delay, dtype=np.float64) / dt
    if not np.all(np.isfinite(steps)) or np.any(steps < -DELAY_ATOL):
        raise NIRConversionError(f"{path}: Delay must be finite and >= 0 seconds, got {np.asarray(node.delay)}")
    rounded = np.rint(steps)
    worst = float(np.max(np.abs(steps - rounded))) if steps.size else 0.0
    if worst > DELAY_ATOL:
        raise NIRConversionError(f"{path}: Delay/dt must be whole time steps (dt={dt} s); the delays are "
                                 f"{worst:.3g} steps away from an integer. Import with the dt the graph was made for")
    return StepDelay(torch.as_tensor(rounded.astype(np.int64)))


def _module(path: str, node, dt: float, dtype: torch.dtype) -> nn.Module | None:
    kind = type(node).__name__
    if kind in ("Input", "Output"):
        return None
    if kind == "NIRGraph":
        return _network(path, node, dt, dtype)
    if kind in ("Affine", "Linear"):
        return _linear(path, node, dtype)
    if kind == "Scale":
        return ElementwiseAffine(_tensor(node.scale, dtype))
    if kind in ("Conv1d", "Conv2d"):
        return _conv(path, node, dtype)
    if kind in ("AvgPool2d", "SumPool2d"):
        return _pool(node)
    if kind == "Flatten":
        return _flatten(node)
    if kind == "Delay":
        return _delay(path, node, dt)
    if kind in NEURON_NODE_TYPES:
        return neuron_from_nir(path, node, dt, dtype)
    why = {"I": "a pure integrator without threshold or leak has no neuron here",
           "Threshold": "a stateless threshold node has no module here"}.get(kind, "unknown to this importer")
    raise NIRConversionError(f"{path}: NIR node type {kind} is not supported ({why})")


def _output_shape(node) -> tuple[int, ...] | None:
    out = getattr(node, "output_type", None)
    shape = next(iter(out.values()), None) if isinstance(out, dict) and len(out) == 1 else None
    return None if shape is None else tuple(int(v) for v in np.atleast_1d(np.asarray(shape)))


def _delay_bank(graph, modules: dict[str, nn.Module | None], source: str, sink: str) -> DelayBank | None:
    """A :class:`DelayBank` when the graph is only parallel ``[Delay(d) →] Linear/Affine`` branches from its input to
    its output, each delay the same for every feature; else ``None`` (the general runner is used)."""
    succ: dict[str, list[str]] = {n: [] for n in graph.nodes}
    pred: dict[str, list[str]] = {n: [] for n in graph.nodes}
    for a, b in graph.edges:
        succ[a].append(b)
        pred[b].append(a)
    weights: dict[int, torch.Tensor] = {}
    bias = None
    for name, m in modules.items():
        if name in (source, sink):
            continue
        if isinstance(m, StepDelay):
            if succ[name] == [] or pred[name] != [source] or len(succ[name]) != 1:
                return None
            continue
        if not isinstance(m, nn.Linear) or succ[name] != [sink] or len(pred[name]) != 1:
            return None
        p = pred[name][0]
        if p == source:
            d = 0
        elif isinstance(modules.get(p), StepDelay) and succ[p] == [name]:
            delays = modules[p].delays
            if delays.numel() != m.in_features or bool((delays != delays.flatten()[0]).any()):
                return None
            d = int(delays.flatten()[0])
        else:
            return None
        w = m.weight.detach()
        weights[d] = weights[d] + w if d in weights else w.clone()
        if m.bias is not None:
            bias = m.bias.detach() if bias is None else bias + m.bias.detach()
    return DelayBank(weights, bias) if weights else None


def _network(prefix: str, graph, dt: float, dtype: torch.dtype) -> NIRNetwork:
    where = f"subgraph {prefix!r}" if prefix else "graph"
    inputs = [k for k, n in graph.nodes.items() if type(n).__name__ == "Input"]
    outputs = [k for k, n in graph.nodes.items() if type(n).__name__ == "Output"]
    if len(inputs) != 1 or len(outputs) != 1:
        raise NIRFormatError(f"NIR {where}: expected exactly one Input and one Output node, got inputs {inputs} and "
                             f"outputs {outputs}")
    for a, b in graph.edges:
        if a not in graph.nodes or b not in graph.nodes:
            raise NIRFormatError(f"NIR {where}: edge ({a!r}, {b!r}) names a node that does not exist")
    modules = {name: _module(f"{prefix}.{name}" if prefix else name, node, dt, dtype)
               for name, node in graph.nodes.items()}
    kinds = {name: type(node).__name__ for name, node in graph.nodes.items()}
    shapes = {name: _output_shape(node) for name, node in graph.nodes.items()}
    bank = _delay_bank(graph, modules, inputs[0], outputs[0]) if prefix else None
    if bank is not None:  # a delay synapse: one module between the subgraph's input and output
        modules = {inputs[0]: None, "delay_bank": bank, outputs[0]: None}
        kinds = {inputs[0]: "Input", "delay_bank": f"{len(bank.delays)} x (Delay -> Linear)", outputs[0]: "Output"}
        edges = [(inputs[0], "delay_bank"), ("delay_bank", outputs[0])]
        return NIRNetwork(modules, edges, inputs[0], outputs[0], kinds, {})
    try:
        return NIRNetwork(modules, graph.edges, inputs[0], outputs[0], kinds, shapes)
    except ValueError as err:
        raise NIRFormatError(f"NIR {where}: {err}") from err


def from_nir(graph, dt: float, *, dtype: torch.dtype = torch.float32) -> NIRNetwork:
    """Build this package's module for a NIR graph (a ``nir.NIRGraph`` or the path of a ``.nir`` file).

    Args:
        graph: the graph, or a file written by ``nir.write`` (any library's exporter).
        dt: the simulation step in seconds: NIR time constants and delays (seconds) become steps as ``τ/dt``; use
            the ``dt`` the graph was exported with (snnTorch's exporter always uses ``1e-4``).
        dtype: parameter dtype of the built module.

    Returns:
        :class:`~snn.interop.nir_network.NIRNetwork`: ``x [T, B, ...] → [T, B, ...]``, from rest on every call
        (``net(x, state)`` streams); ``net.summary()`` lists its nodes.

    Raises:
        NIRFormatError: unreadable file, several inputs/outputs, dangling edges, unreachable nodes.
        NIRConversionError: a node with no equivalent here (named, with the reason).
    """
    import nir

    if not isinstance(dt, (int, float)) or isinstance(dt, bool) or not np.isfinite(dt) or dt <= 0:
        raise ValueError(f"dt: expected the step in seconds, a finite number > 0, got {dt!r}")
    if isinstance(graph, (str, os.PathLike)):
        graph = read_nir(graph)
    if not isinstance(graph, nir.NIRGraph):
        raise TypeError(f"graph: expected a nir.NIRGraph or the path of a .nir file, got {type(graph).__name__}")
    return _network("", graph, float(dt), dtype).to(dtype)
