r"""Counting torch operations at the dispatcher: every matrix product and convolution, whoever called it.

:class:`DispatchCounter` is a ``TorchDispatchMode`` (the mechanism of ``torch.utils.flop_counter.FlopCounterMode``):
it sees the aten operations that ``nn.Linear``, ``F.linear``, ``lin(input=s)``, ``torch.matmul``/``@``,
``einsum`` and convolutions reduce to, and turns each into per-row counts for the
:class:`snn.energy.counter.OperationCounter`.

Products ``C = A B`` (``mm``, ``addmm``, ``bmm``, ``baddbmm``, ``mv``; ``A`` ``[N, n, k]``, ``B`` ``[N, k, m]``,
``N`` the leading rows that carry time and batch; a weight on the left is moved to the right by transposing):

* ``B`` a weight (a parameter or buffer of the model) and ``A`` events: ``SOPs = Σ |A| · m`` (each event adds a
  row of weights);
* both activations and both events (spike × spike, e.g. attention): ``SOPs = Σ_k (Σ_i |A_ik|)(Σ_j |B_kj|)``, one
  accumulate per non-zero product;
* one activation of events, the other real: ``SOPs = Σ |A| · m`` or ``Σ |B| · n``;
* no events: ``MACs = n k m`` (dense).

Convolutions: ``SOPs = Σ_i |x_i| · fanout_i`` with ``fanout_i`` the number of (output channel, output position)
pairs input element ``i`` reaches (padding, stride, dilation, groups, transposition included: the input gradient
of ``Σ conv(x, 1)``); ``MACs = FLOPs / 2`` (padded borders included).

Bias additions are not counted (the usual convention). BatchNorm folds into the preceding layer: 0 operations.
Any other operation that reads a parameter of the model, and any fused attention/recurrent kernel, is reported
by name as not counted (see ``OperationCounter.skipped``): a silent under-count is a defect.
"""
from __future__ import annotations

from typing import Any, Callable

import torch
from torch.utils._python_dispatch import TorchDispatchMode

from snn.energy.inputs import BINARY, InputClass

__all__ = ["DispatchCounter", "RowCounts", "conv_fanout"]

aten = torch.ops.aten

_CONV_FANOUT: dict[tuple, torch.Tensor] = {}  # convolution geometry + input shape -> fan-out map (FIFO-bounded)
_CONV_FANOUT_MAX = 256

# operations that read a parameter without computing on it per synapse (views, copies, bias adds, checks)
_HARMLESS = {
    "detach", "clone", "_to_copy", "copy_", "lift_fresh", "alias", "contiguous", "add", "add_", "sub", "sub_",
    "_local_scalar_dense", "eq", "ne", "ge", "le", "gt", "lt", "abs", "isnan", "isinf", "all", "any", "aminmax",
    "min", "max", "sum", "mean", "zeros_like", "ones_like", "empty_like", "full_like", "fill_", "zero_", "clamp",
    "clamp_", "_unsafe_view", "t", "transpose", "expand", "view", "reshape", "permute", "select", "slice", "unsqueeze",
    "squeeze", "as_strided", "unbind", "split", "split_with_sizes", "is_same_size", "equal", "isfinite", "neg",
    "_has_compatible_shallow_copy_type", "set_", "resize_", "empty_strided", "new_empty", "new_zeros",
}
# operations on activations alone that hide synaptic work the counter cannot see
_OPAQUE_WORDS = ("attention", "lstm", "gru", "rnn_", "embedding", "_weight_int", "linear", "conv", "addbmm", "dot")


class RowCounts:
    """Counts of one operation call per leading row ``[N]`` (``N`` = steps × batch × extra rows, time-major).

    ``series`` keys: ``synops``, ``macs``, ``macs_dense``, ``macs_effective``, ``input_events``, ``input_nonzero``,
    ``input_elements``, ``output_elements`` (float64 tensors ``[N]``, or numbers constant over rows).
    """

    __slots__ = ("name", "kind", "rows", "series", "rule", "params")

    def __init__(self, name: str, kind: str, rows: int, series: dict[str, Any], rule: InputClass, params: int) -> None:
        self.name, self.kind, self.rows, self.series, self.rule, self.params = name, kind, rows, series, rule, params


def conv_fanout(x_shape: tuple, weight: torch.Tensor, stride, padding, dilation, transposed: bool, output_padding,
                groups: int, device) -> torch.Tensor:
    """Fan-out of every input element of one sample ``[C_in, *spatial]`` (float64): the input gradient of
    ``Σ conv(ones, weight=1)``, i.e. how many (output channel, output position) pairs each input position feeds."""
    key = (tuple(x_shape), str(device), tuple(weight.shape), tuple(stride), tuple(padding), tuple(dilation),
           bool(transposed), tuple(output_padding), int(groups))
    cached = _CONV_FANOUT.get(key)
    if cached is None:
        probe = torch.ones((1,) + tuple(x_shape), dtype=torch.float64, device=device)
        ones_w = torch.ones(weight.shape, dtype=torch.float64, device=device)
        out = aten.convolution(probe, ones_w, None, stride, padding, dilation, transposed, output_padding, groups)
        grad, _, _ = aten.convolution_backward(torch.ones_like(out), probe, ones_w, None, stride, padding, dilation,
                                               transposed, output_padding, groups, [True, False, False])
        cached = grad[0].round()
        if len(_CONV_FANOUT) >= _CONV_FANOUT_MAX:
            _CONV_FANOUT.pop(next(iter(_CONV_FANOUT)))
        _CONV_FANOUT[key] = cached
    return cached


def _units(x: torch.Tensor, dims) -> torch.Tensor:
    return x.abs().sum(dims, dtype=torch.float64)


def _row_sums(x: torch.Tensor) -> torch.Tensor:
    """Row sums ``[N]`` of ``[N, F]`` as float64, summed in float32 when that is exact (``F < 2^24``, values ≤ 1 or
    small integer counts), else in float64."""
    if x.dtype == torch.bool:
        x = x.to(torch.float32)
    if x.dtype == torch.float32 and x.shape[1] < 2**16:
        return x.sum(1).double()
    return x.sum(1, dtype=torch.float64)


class DispatchCounter(TorchDispatchMode):
    """Dispatch mode feeding an :class:`snn.energy.counter.OperationCounter` (``env``) with :class:`RowCounts`.

    ``env`` provides: ``active()`` (False inside declared layers and neurons), ``weight_owner(t)`` →
    ``(row name, module)`` or ``None``, ``scope_name(op)`` (row name for an activation product in the current
    module), ``classify(x)``, ``known_spikes(x)`` (per-row spike counts of a neuron's output, or ``None``),
    ``emit(RowCounts)``, ``norm(name)``, ``skip(name, what)``.
    """

    def __init__(self, env: Any) -> None:
        super().__init__()
        self.env = env
        self._handlers: dict[Any, Callable] = {
            aten.mm: self._mm, aten.addmm: self._addmm, aten.bmm: self._bmm, aten.baddbmm: self._baddbmm,
            aten.mv: self._mv, aten.addmv: self._addmv, aten.convolution: self._conv, aten._convolution: self._conv,
        }

    def __torch_dispatch__(self, func, types, args=(), kwargs=None):
        out = func(*args, **(kwargs or {}))
        env = self.env
        if env.active():
            handler = self._handlers.get(func.overloadpacket)
            if handler is not None:
                handler(args, out)
            elif not func.is_view:
                self._unknown(func, args)
        return out

    # ------------------------------------------------------------------ unknown operations
    def _unknown(self, func, args) -> None:
        name = func.overloadpacket.__name__
        if "batch_norm" in name:
            owner = next((o for o in map(self.env.weight_owner, _tensors(args)) if o is not None), None)
            if owner is not None:
                self.env.norm(owner[0])
            return
        if name in _HARMLESS:
            return
        for t in _tensors(args):
            owner = self.env.weight_owner(t)
            if owner is not None:
                self.env.skip(owner[0], owner[1], f"aten.{name}")
                return
        if any(w in name for w in _OPAQUE_WORDS):
            self.env.skip(self.env.scope_name(name), None, f"aten.{name}")

    # ------------------------------------------------------------------ products
    def _mm(self, args, out) -> None:
        self._product(args[0], args[1], batched=False)

    def _addmm(self, args, out) -> None:
        self._product(args[1], args[2], batched=False)

    def _bmm(self, args, out) -> None:
        self._product(args[0], args[1], batched=True)

    def _baddbmm(self, args, out) -> None:
        self._product(args[1], args[2], batched=True)

    def _mv(self, args, out) -> None:
        self._product(args[0], args[1][:, None], batched=False)

    def _addmv(self, args, out) -> None:
        self._product(args[1], args[2][:, None], batched=False)

    def _product(self, a: torch.Tensor, b: torch.Tensor, batched: bool) -> None:
        env = self.env
        wa, wb = env.weight_owner(a), env.weight_owner(b)
        if wa is not None and wb is not None:
            return  # weight preprocessing (independent of the data): not a synaptic operation
        if wa is not None:  # W X = (X^T W^T)^T: put the activation on the left
            a, b, wa, wb = b.transpose(-1, -2), a.transpose(-1, -2), None, wa
        if not batched:
            a, b = a[:, None, :], b[None]  # [N, 1, k] x [1, k, m]: one row per leading index
        n, k, m = a.shape[1], a.shape[2], b.shape[2]
        rows = a.shape[0]
        known = env.known_spikes(a) if wb is not None and n == 1 else None
        if known is not None and known.numel() == rows:
            ca, cb = BINARY, None
            units_a = known
            nonzero_a = known
        else:
            ca = env.classify(a)
            cb = None if wb is not None else env.classify(b)
            flat = a.reshape(rows, -1)  # row sums in the input's dtype: exact for counts below 2^24 per row
            units_a = _row_sums(flat.abs()) if ca.events else None
            nonzero_a = _row_sums(flat != 0)
        dense = float(n * k * m)
        if wb is not None:
            rule, name, kind = ca, wb[0], "linear"
            events = units_a * m if ca.events else None
        else:
            name, kind = env.scope_name("matmul"), "matmul"
            if ca.events and cb.events:
                events = (a.abs().sum(1, dtype=torch.float64) * b.abs().sum(2, dtype=torch.float64)).sum(1)
                rule = InputClass(True, f"{ca.reason} x {cb.reason}: one accumulate per non-zero product",
                                  max(ca.max_count, cb.max_count))
            elif ca.events or cb.events:
                events = units_a * m if ca.events else _units(b, (1, 2)).expand(rows) * n
                rule = InputClass(True, f"{ca.reason} x {cb.reason}: each event accumulates real values",
                                  max(ca.max_count, cb.max_count))
            else:
                events, rule = None, InputClass(False, f"{ca.reason} x {cb.reason}", 0.0)
        series = {
            "synops": events if events is not None else 0.0,
            "macs": 0.0 if rule.events else dense,
            "macs_dense": dense,
            "macs_effective": 0.0 if rule.events else nonzero_a * m,
            "input_events": ((units_a if units_a is not None else _units(b, (1, 2)).expand(rows))
                             if rule.events else 0.0),
            "input_nonzero": nonzero_a,
            "input_elements": float(n * k),
            "output_elements": float(n * m),
        }
        params = b.numel() if wb is not None else 0
        env.emit(RowCounts(name, kind, rows, series, rule, params))

    # ------------------------------------------------------------------ convolutions
    def _conv(self, args, out) -> None:
        env = self.env
        x, weight, bias, stride, padding, dilation, transposed, output_padding, groups = args[:9]
        owner = env.weight_owner(weight)
        nd = weight.dim() - 2
        kind = f"conv_transpose{nd}d" if transposed else f"conv{nd}d"
        name = owner[0] if owner is not None else env.scope_name(kind)
        rows = x.shape[0]
        fan = conv_fanout(tuple(x.shape[1:]), weight, stride, padding, dilation, transposed, output_padding, groups,
                          x.device)
        known = env.known_spikes(x)
        rule = BINARY if known is not None else env.classify(x)
        per_item = weight[0].numel()  # per output element (conv) or per input element (transposed)
        in_elems = float(x[0].numel())
        out_elems = float(out[0].numel())
        dense = (in_elems if transposed else out_elems) * per_item
        flat = x.reshape(rows, -1)
        units = flat if known is not None else flat.abs()
        # float32 products are exact while every row sum stays below 2^24 (max count x Σ fan-out); else float64
        exact32 = flat.dtype == torch.float32 and float(fan.sum()) * max(rule.max_count, 1.0) < 2**24
        dt = torch.float32 if exact32 else torch.float64
        fan_flat = fan.reshape(-1, 1).to(dt)
        if known is not None and known.numel() == rows:
            nonzero = units_sum = known
        else:
            nonzero = (flat != 0).sum(1, dtype=torch.float64)
            units_sum = units.sum(1, dtype=torch.float64)
        if rule.events:
            events, effective = (units.to(dt) @ fan_flat).squeeze(1).double(), 0.0
        else:
            events, effective = None, ((flat != 0).to(dt) @ fan_flat).squeeze(1).double()
        series = {
            "synops": events if events is not None else 0.0,
            "macs": 0.0 if rule.events else dense,
            "macs_dense": dense,
            "macs_effective": effective,
            "input_events": units_sum if rule.events else 0.0,
            "input_nonzero": nonzero,
            "input_elements": in_elems,
            "output_elements": out_elems,
        }
        params = weight.numel() + (bias.numel() if isinstance(bias, torch.Tensor) else 0)
        env.emit(RowCounts(name, kind, rows, series, rule, params if owner is not None else 0))


def _tensors(args) -> list[torch.Tensor]:
    out = []
    for a in args:
        if isinstance(a, torch.Tensor):
            out.append(a)
        elif isinstance(a, (list, tuple)):
            out.extend(t for t in a if isinstance(t, torch.Tensor))
    return out
