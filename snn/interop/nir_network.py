r"""The modules a NIR graph becomes here: the graph runner :class:`NIRNetwork` and the small pieces it needs.

A NIR graph is nodes joined by edges; a node's input is the **sum** of the outputs of the nodes that point to it.
:class:`NIRNetwork` runs such a graph on time-major input ``x`` ``[T, B, ...]``:

* **feed-forward graphs** run node by node in topological order, each node over all ``T`` steps at once (the
  neurons on their fused kernels);
* **graphs with a cycle** (a recurrent layer: ``lif → w_rec → lif``) run step by step; in each cycle one edge
  carries its source's output of the **previous** step: the edge leaving the cycle's stateful node (the neuron),
  whose output before the first step is that of a neuron at rest (zero spikes). ``s[t] = LIF(W_in x[t] +
  W_rec s[t-1] + b_rec)`` with ``s[-1] = 0``, as snnTorch's ``RLeaky`` computes. Only the graph level that holds
  the cycle runs step by step; the enclosing graph still runs whole sequences.

Every call starts from rest unless a state is passed (``y, state = net(x, state)``; start with ``state={}``), like
the neurons of this package.
"""
from __future__ import annotations

from collections.abc import Iterable
from typing import Any

import torch
from torch import nn

from snn.neuron_models import SpikingNeuron

__all__ = ["NIRNetwork", "ElementwiseAffine", "Chain", "StepDelay", "DelayBank", "stream"]


def stream(module: nn.Module, x: torch.Tensor, state: Any) -> tuple[torch.Tensor, Any]:
    """Run ``module`` on the chunk ``x`` ``[T, B, ...]`` continuing from ``state`` (``None``: rest) → ``(y, state)``."""
    if hasattr(module, "stream"):
        return module.stream(x, state)
    if isinstance(module, SpikingNeuron):
        if state is None:
            state = module.initial_state(x[0])
        return module(x, state)
    return module(x), None


class ElementwiseAffine(nn.Module):
    """``y = x · scale + shift`` with per-feature ``scale`` and ``shift`` (broadcast over ``[T, B]``).

    Carries NIR's input resistance ``r``, ``w_in`` and a leak potential that differs from the reset potential
    (see :mod:`snn.interop.nir_neurons`), and NIR's ``Scale`` node.
    """

    def __init__(self, scale: torch.Tensor, shift: torch.Tensor | None = None) -> None:
        super().__init__()
        self.register_buffer("scale", torch.as_tensor(scale).clone())
        self.register_buffer("shift", None if shift is None else torch.as_tensor(shift).clone())

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        y = x * self.scale.to(x.dtype)
        return y if self.shift is None else y + self.shift.to(x.dtype)

    def extra_repr(self) -> str:
        return f"shape={tuple(self.scale.shape)}, shift={self.shift is not None}"


class Chain(nn.Sequential):
    """Modules applied in order, streaming each one's state (a NIR neuron that needs a pre-scale, or a CubaLIF as
    synaptic LI → LIF)."""

    def stream(self, x: torch.Tensor, state: list | None) -> tuple[torch.Tensor, list]:
        state = list(state) if state is not None else [None] * len(self)
        for i, m in enumerate(self):
            x, state[i] = stream(m, x, state[i])
        return x, state


class StepDelay(nn.Module):
    r"""Per-feature integer delay: ``y[t, b, f] = x[t - d_f, b, f]`` (zero for ``t < d_f``); NIR's ``Delay`` node.

    Args:
        delays: integer delays in time steps, ``≥ 0``, broadcastable to one step's feature shape.
    """

    def __init__(self, delays: torch.Tensor) -> None:
        super().__init__()
        d = torch.as_tensor(delays)
        if d.is_floating_point() or (d < 0).any():
            raise ValueError(f"delays: expected integers >= 0, got {d}")
        self.register_buffer("delays", d.to(torch.int64).clone())
        self.max_delay = int(d.max()) if d.numel() else 0

    def _apply_delays(self, xp: torch.Tensor, T: int) -> torch.Tensor:
        # xp: [D + T, B, ...] whose first D steps are the history; output steps D … D+T-1 shifted back by d_f.
        D = self.max_delay
        d = self.delays
        if bool((d == d.flatten()[0]).all()):
            k = int(d.flatten()[0])
            return xp[D - k:D - k + T]
        feat = xp.shape[2:]
        idx = (torch.arange(T, device=xp.device).view(T, *([1] * len(feat))) + D - d.to(xp.device).expand(feat))
        idx = idx.unsqueeze(1).expand(T, xp.shape[1], *feat)
        return torch.gather(xp, 0, idx)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return self.stream(x, None)[0]

    def stream(self, x: torch.Tensor, state: torch.Tensor | None) -> tuple[torch.Tensor, torch.Tensor]:
        D = self.max_delay
        if state is None:
            state = x.new_zeros((D, *x.shape[1:]))
        xp = torch.cat([state, x], 0)
        return self._apply_delays(xp, x.shape[0]), xp[xp.shape[0] - D:]

    def extra_repr(self) -> str:
        return f"shape={tuple(self.delays.shape)}, max_delay={self.max_delay}"


class DelayBank(nn.Module):
    r"""Synapses with integer delays: ``y[t] = b + Σ_d W_d · x[t - d]`` (``x`` zero before the first step).

    The form of a NIR subgraph made of parallel branches ``Delay(d) → Linear(W_d)`` summed at its output (how
    :func:`snn.interop.to_nir` writes a :class:`~snn.layers.LearnableDelay`), run as one convolution over time instead
    of one matrix product per branch.

    Args:
        weights: ``{d: W_d}``, each ``[C_out, C_in]``, ``d ≥ 0`` in steps.
        bias: ``[C_out]`` or ``None``.
    """

    def __init__(self, weights: dict[int, torch.Tensor], bias: torch.Tensor | None = None) -> None:
        super().__init__()
        if not weights or min(weights) < 0:
            raise ValueError(f"weights: expected {{delay >= 0: [C_out, C_in]}}, got delays {sorted(weights)}")
        self.delays = sorted(int(d) for d in weights)
        first = weights[self.delays[0]]
        D = self.delays[-1] + 1
        kernel = first.new_zeros((*first.shape, D))
        for d, w in weights.items():
            kernel[:, :, D - 1 - d] += w  # cross-correlation tap D-1-d reads x[t - d]
        self.kernel = nn.Parameter(kernel)
        self.bias = nn.Parameter(bias.clone()) if bias is not None else None

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return self.stream(x, None)[0]

    def stream(self, x: torch.Tensor, state: torch.Tensor | None) -> tuple[torch.Tensor, torch.Tensor]:
        D = self.kernel.shape[-1]
        if state is None:
            state = x.new_zeros((D - 1, *x.shape[1:]))
        xp = torch.cat([state, x], 0)  # [D - 1 + T, B, C_in]
        y = torch.nn.functional.conv1d(xp.permute(1, 2, 0), self.kernel.to(x.dtype)).permute(2, 0, 1)
        if self.bias is not None:
            y = y + self.bias.to(x.dtype)
        return y, xp[xp.shape[0] - (D - 1):]

    def extra_repr(self) -> str:
        return (f"in={self.kernel.shape[1]}, out={self.kernel.shape[0]}, delays={len(self.delays)} in "
                f"[{self.delays[0]}, {self.delays[-1]}], bias={self.bias is not None}")


def _back_edges(names: list[str], edges: list[tuple[str, str]], source: str) -> tuple[list[str], set[tuple[str, str]]]:
    """``(reached, back_edges)``: the nodes reachable from ``source`` and the edges that close a cycle in a
    depth-first walk from it."""
    succ: dict[str, list[str]] = {n: [] for n in names}
    for a, b in edges:
        succ[a].append(b)
    back: set[tuple[str, str]] = set()
    colour: dict[str, int] = {source: 1}  # 1 on the stack, 2 done
    stack = [(source, iter(succ[source]))]
    while stack:
        node, it = stack[-1]
        nxt = next(it, None)
        if nxt is None:
            colour[node] = 2
            stack.pop()
        elif colour.get(nxt) == 1:
            back.add((node, nxt))
        elif nxt not in colour:
            colour[nxt] = 1
            stack.append((nxt, iter(succ[nxt])))
    return list(colour), back


def _topological(names: list[str], edges: list[tuple[str, str]]) -> list[str] | None:
    """Kahn's order of ``names`` under ``edges`` (stable in ``names`` order); ``None`` if a cycle remains."""
    indeg = {n: 0 for n in names}
    for _, b in edges:
        indeg[b] += 1
    ready = [n for n in names if indeg[n] == 0]
    order = []
    while ready:
        n = ready.pop(0)
        order.append(n)
        for a, b in edges:
            if a == n:
                indeg[b] -= 1
                if indeg[b] == 0:
                    ready.append(b)
    return order if len(order) == len(names) else None


def _has_state(m: nn.Module | None) -> bool:
    return m is not None and (isinstance(m, SpikingNeuron) or hasattr(m, "stream"))

class NIRNetwork(nn.Module):
    """A NIR graph as a time-major module: ``x`` ``[T, B, ...]`` → output ``[T, B, ...]`` (see the module docstring).

    Args:
        modules: one module per node (``None`` for the graph's ``Input``/``Output`` nodes is allowed and skipped).
        edges: ``(source, target)`` node names.
        input_name: the ``Input`` node.
        output_name: the ``Output`` node.
        kinds: the NIR type of each node (for :meth:`summary`).
        shapes: one sample's output shape per node, where known (the zero output at rest of a recurrent source).

    Raises:
        ValueError: a node that the input does not reach, or an output that is not reached.
    """

    def __init__(self, modules: dict[str, nn.Module | None], edges: Iterable[tuple[str, str]], input_name: str,
                 output_name: str, kinds: dict[str, str] | None = None,
                 shapes: dict[str, tuple[int, ...] | None] | None = None) -> None:
        super().__init__()
        names = list(modules)
        self.keys = _module_keys(names)
        self.layers = nn.ModuleDict({self.keys[n]: m for n, m in modules.items() if m is not None})
        self.edges = [(str(a), str(b)) for a, b in edges]
        self.input_name, self.output_name = input_name, output_name
        self.kinds = dict(kinds or {})
        reached, back = _back_edges(names, self.edges, input_name)
        unreached = [n for n in names if n not in reached]
        if unreached:
            raise ValueError(f"node(s) {unreached} cannot be reached from the input node {input_name!r}")
        back = {self._delay_at_state(e, modules) for e in back}
        order = _topological(names, [e for e in self.edges if e not in back])
        if order is None:
            raise ValueError("could not order the nodes: a cycle remains after removing the recurrent edges")
        self.order = [n for n in order if n != input_name]
        self.back_edges = sorted(back)
        self.preds = {n: [a for a, b in self.edges if b == n and (a, b) not in back] for n in names}
        self.back_preds = {n: [a for a, b in self.back_edges if b == n] for n in names}
        self.shapes = {n: tuple(int(v) for v in s) for n, s in (shapes or {}).items() if s is not None}

    def _delay_at_state(self, edge: tuple[str, str], modules: dict[str, nn.Module | None]) -> tuple[str, str]:
        """Move a cycle-closing edge back along single-input stateless nodes to the edge leaving a stateful node.

        At ``t = 0`` the delayed edge then carries a node at rest (a neuron's zero output), and the stateless nodes
        after it (a recurrent ``Affine``) still run: ``W·0 + b`` at ``t = 0``, as snnTorch's ``RLeaky`` computes.
        """
        a, b = edge
        seen = {b}
        while not _has_state(modules.get(a)) and a not in seen:
            preds = [p for p, q in self.edges if q == a]
            if len(preds) != 1:
                break
            seen.add(a)
            a, b = preds[0], a
        return a, b

    @property
    def recurrent(self) -> bool:
        """True when the graph (at this level) has a cycle and therefore runs step by step."""
        return bool(self.back_edges)

    def _module(self, name: str) -> nn.Module | None:
        return self.layers[self.keys[name]] if self.keys[name] in self.layers else None

    def _pass(self, x: torch.Tensor, state: dict, prev: dict[str, torch.Tensor]) -> torch.Tensor:
        outs = {self.input_name: x}
        for n in self.order:
            for p in self.back_preds[n]:
                if p not in prev and p in self.shapes:  # at rest before the first step
                    prev[p] = x.new_zeros((x.shape[0], x.shape[1], *self.shapes[p]))
            terms = [outs[p] for p in self.preds[n]] + [prev[p] for p in self.back_preds[n] if p in prev]
            if not terms:
                raise ValueError(f"NIR graph: node {n!r} has no input")
            inp = terms[0]
            for t in terms[1:]:
                inp = inp + t
            m = self._module(n)
            if m is None:
                outs[n] = inp
            else:
                outs[n], state[n] = stream(m, inp, state.get(n))
        for a, _ in self.back_edges:
            prev[a] = outs[a]
        return outs[self.output_name]

    def stream(self, x: torch.Tensor, state: dict | None) -> tuple[torch.Tensor, dict]:
        """Run the chunk ``x`` ``[T, B, ...]`` from ``state`` (``None`` or ``{}``: rest) → ``(y, state)``."""
        if not isinstance(x, torch.Tensor) or x.dim() < 2:
            raise ValueError(f"x: expected a tensor [T, B, ...], got {getattr(x, 'shape', type(x).__name__)}")
        state = dict(state) if state else {}
        nodes = dict(state.get("nodes", {}))
        prev = dict(state.get("previous", {}))
        if not self.recurrent:
            y = self._pass(x, nodes, prev)
        else:
            y = torch.cat([self._pass(x[t:t + 1], nodes, prev) for t in range(x.shape[0])], 0)
        return y, {"nodes": nodes, "previous": prev}

    def forward(self, x: torch.Tensor, state: dict | None = None):
        """``x`` ``[T, B, ...]`` → output ``[T, B, ...]`` from rest; with ``state`` → ``(output, state)``."""
        y, new_state = self.stream(x, state)
        return y if state is None else (y, new_state)

    def summary(self) -> list[str]:
        """One line per node: name, NIR type, the module here, its parameter/buffer count; then the edges."""
        lines = []
        for n in [self.input_name, *self.order]:
            m = self._module(n)
            kind = self.kinds.get(n, "?")
            if m is None:
                lines.append(f"{n}: {kind}")
                continue
            count = sum(t.numel() for t in m.parameters()) + sum(t.numel() for t in m.buffers())
            head = f"{n}: {kind} -> {type(m).__name__}"
            if isinstance(m, NIRNetwork):
                tag = ", recurrent" if m.recurrent else ""
                lines.append(f"{head} (subgraph, {len(m.order)} nodes{tag}, {count} values)")
                lines.extend("    " + s for s in m.summary())
            else:
                lines.append(f"{head} ({count} values) {m.extra_repr()}".rstrip())
        if self.back_edges:
            lines.append("recurrent edges (previous step): " + ", ".join(f"{a}->{b}" for a, b in self.back_edges))
        return lines

    def extra_repr(self) -> str:
        return f"input={self.input_name!r}, output={self.output_name!r}, recurrent={self.recurrent}"


def _module_keys(names: list[str]) -> dict[str, str]:
    """A distinct ``ModuleDict`` key for every NIR node name (dots replaced, clashes numbered)."""
    keys: dict[str, str] = {}
    for i, name in enumerate(names):
        key = str(name).replace(".", "_") or f"node{i}"
        if hasattr(nn.ModuleDict, key) or key in keys.values():
            key = f"node{i}_{key}"
        keys[name] = key
    return keys
