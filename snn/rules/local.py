r"""Machinery shared by the local (Hebbian, STDP) rules: the synapses they train, hooks, records, ``-Δw`` → grad.

A local rule trains the weights of named synapses (``nn.Linear`` or ``nn.Conv2d``). It attaches forward hooks —
model code stays as it is — that record, during one forward over a batch:

* the synapse's input (the presynaptic spikes ``s_pre``) and output (its current ``u``),
* the output of the first spiking neuron (any :class:`snn.neuron_models.SpikingNeuron` with a finite threshold)
  called after the synapse (the postsynaptic spikes ``s_post``).

Records are viewed as time-major rows: a Linear synapse on ``[T, B, ..., C]`` (or on ``[T·B, C]``) gives
``pre [T, R, C_in]`` and ``post [T, R, C_out]``; a Conv2d synapse on ``[T·B, C, H, W]`` gives its unfolded patches
``pre [T, B·L, C_in·k_h·k_w]`` and ``post [T, B·L, C_out]`` (``L`` output positions), so every rule works on a
weight matrix ``W [C_out, C_in·k_h·k_w]`` and writes the update back in the weight's shape. A rule computes
``Δw`` (its equations are in its docstring), and writes ``-Δw`` (times the AMP loss scale) into ``weight.grad``,
so the Trainer's optimiser applies it together with backprop-trained parameters, weight decay and schedules.

Records are dropped after every update (no growth over batches); traces live only inside one update.
With ``supervised=True`` the rest of the model (every parameter the rule does not train locally, e.g. a readout)
is trained by backprop on the model's loss in the same step; the locally trained weights are excluded from the
backward (``requires_grad`` off while attached), so no backprop gradient of theirs is ever applied.
"""
from __future__ import annotations

from collections.abc import Sequence
from typing import Any

import torch
import torch.nn.functional as F
from torch import nn

from snn.callbacks import Callback
from snn.models.protocol import ParamGroup, normalise_groups
from snn.rules.base import LearningRule, StepContext, forward, model_loss, model_scores, unwrap

__all__ = ["SUPPORTED_SYNAPSES", "LocalRule", "resolve_layers", "is_spiking_neuron", "hook_spiking_neurons",
           "WeightBounds", "Record", "distributed", "global_mean"]

#: synapse types a local rule can train
SUPPORTED_SYNAPSES: tuple[type[nn.Module], ...] = (nn.Linear, nn.Conv2d)


def is_spiking_neuron(module: nn.Module) -> bool:
    """True for neuron modules that emit spikes (a :class:`SpikingNeuron` with a finite threshold, or a module that
    declares ``emits_spikes = True``); leaky integrators (``LI``) are not."""
    from snn.neuron_models import LI, SpikingNeuron

    if getattr(module, "emits_spikes", False):
        return True
    if isinstance(module, LI) or not isinstance(module, SpikingNeuron):
        return False
    th = getattr(module, "v_threshold", 1.0)
    return bool(torch.isfinite(torch.as_tensor(th)).all())


def distributed() -> bool:
    """True inside an initialised ``torch.distributed`` process group."""
    return torch.distributed.is_available() and torch.distributed.is_initialized()


def global_mean(x: torch.Tensor) -> torch.Tensor:
    """Mean of ``x [R, ...]`` over its rows and, under ``torch.distributed``, over the rows of every process."""
    if not distributed():
        return x.mean(0, keepdim=True)
    total = torch.cat([x.sum(0).flatten(), x.new_tensor([x.shape[0]])])
    torch.distributed.all_reduce(total)
    return (total[:-1] / total[-1]).view(1, *x.shape[1:])


def hook_spiking_neurons(model: nn.Module, hook) -> list:
    """Register ``hook`` as a forward hook on every spiking neuron of ``model``; returns the handles."""
    return [m.register_forward_hook(hook) for m in model.modules() if is_spiking_neuron(m)]


def resolve_layers(model: nn.Module, layers: str | Sequence[str] | None, rule: str) -> dict[str, nn.Module]:
    """``{name: synapse}`` for ``layers``: names of modules (a list or a comma-separated string), or ``"auto"`` /
    ``None``: every Linear/Conv2d of the model except its readout ``model.output`` when it has one.

    Raises ``ValueError`` naming a missing module, or the type of an unsupported one and the supported types.
    """
    modules = dict(model.named_modules())
    supported = ", ".join(t.__name__ for t in SUPPORTED_SYNAPSES)
    if layers is None or layers == "auto":
        readout = getattr(model, "output", None)
        out = {n: m for n, m in modules.items() if isinstance(m, SUPPORTED_SYNAPSES) and m is not readout}
        if not out:
            raise ValueError(f"{rule}: the model has no {supported} synapse to train (layers='auto')")
        return out
    names = [n.strip() for n in layers.split(",")] if isinstance(layers, str) else list(layers)
    out = {}
    for name in names:
        if name not in modules:
            import difflib

            hint = difflib.get_close_matches(name, list(modules), n=1)
            raise ValueError(f"{rule}: layers: the model has no module {name!r}"
                             + (f"; did you mean {hint[0]!r}?" if hint else ""))
        m = modules[name]
        if not isinstance(m, SUPPORTED_SYNAPSES):
            raise ValueError(f"{rule}: layers: module {name!r} is a {type(m).__name__}; supported synapse types: "
                             f"{supported}")
        if isinstance(m, nn.Conv2d) and (m.groups != 1 or m.dilation != (1, 1)):
            raise ValueError(f"{rule}: layers: Conv2d {name!r} has groups={m.groups}, dilation={m.dilation}; "
                             "local rules support groups=1, dilation=1")
        out[name] = m
    if not out:
        raise ValueError(f"{rule}: layers: expected at least one synapse name, got {layers!r}")
    return out


class Record:
    """What one forward recorded for one synapse: ``pre [T, R, K]``, ``u [T, R, N]``, ``post [T, R, N]`` rows."""

    __slots__ = ("name", "synapse", "pre", "u", "post", "neuron")

    def __init__(self, name: str, synapse: nn.Module) -> None:
        self.name, self.synapse = name, synapse
        self.pre = self.u = self.post = None
        self.neuron = None


class WeightBounds(Callback):
    """Hard bounds and normalisation: after every optimiser step, clamps the trained weights into ``[w_min, w_max]``,
    then (with ``normalise``) rescales each postsynaptic neuron's incoming weights to sum to ``normalise``."""

    def __init__(self, rule: "LocalRule") -> None:
        self.rule = rule

    def on_after_optimizer_step(self, trainer: Any) -> None:
        self.rule.apply_bounds()


class LocalRule(LearningRule):
    """Base class of local rules (see the module docstring). Subclasses implement :meth:`delta`.

    Args:
        layers: synapses to train (names, comma-separated string or list; ``"auto"``: every Linear/Conv2d except
            the model's ``output`` readout).
        supervised: also train every other parameter by backprop on the model's loss in the same step.
        batch_reduction: ``"sum"`` (SpikingJelly's convention) or ``"mean"`` of the per-row updates over the
            ``R`` rows (samples × conv positions).
        w_min, w_max: hard bounds applied after every optimiser step (``None``: unbounded).
        lr: learning rate of the local weights' optimiser (group ``local``; overridable as ``optim.groups.local``).
        optimizer: optimiser of the local group (``"sgd"``: the Trainer's SGD, momentum 0.9).
        normalise: after the bounds, scale each postsynaptic neuron's incoming weights (a row of ``W [N, K]``) to
            sum to this value, ``w_j ← w_j · c / Σ_i w_{ji}`` (Diehl & Cook's per-neuron normalisation; rows that
            sum to 0 are left alone; ``None``: off).
    """

    name = "local"

    def __init__(self, layers: str | Sequence[str] | None = "auto", supervised: bool = True,
                 batch_reduction: str = "sum", w_min: float | None = None, w_max: float | None = None,
                 lr: float = 1.0, optimizer: str = "sgd", normalise: float | None = None) -> None:
        if batch_reduction not in ("sum", "mean"):
            raise ValueError(f"batch_reduction must be 'sum' or 'mean', got {batch_reduction!r}")
        if w_min is not None and w_max is not None and not w_min < w_max:
            raise ValueError(f"w_min must be < w_max, got w_min={w_min!r}, w_max={w_max!r}")
        if not (isinstance(lr, (int, float)) and lr > 0):
            raise ValueError(f"lr must be a number > 0, got {lr!r}")
        if normalise is not None and not (isinstance(normalise, (int, float)) and 0 < normalise < float("inf")):
            raise ValueError(f"normalise must be a finite number > 0 or None, got {normalise!r}")
        self.normalise = None if normalise is None else float(normalise)
        self.layers = layers
        self.supervised = bool(supervised)
        self.batch_reduction = batch_reduction
        self.w_min, self.w_max = w_min, w_max
        self.lr, self.optimizer = float(lr), optimizer
        self.synapses: dict[str, nn.Module] = {}
        self._handles: list = []
        self._records: dict[int, Record] = {}
        self._open: list[Record] = []  # synapses called whose neuron has not been seen yet
        self._T: int | None = None
        self._frozen: list[nn.Parameter] = []

    # ------------------------------------------------------------------ attach
    def attach(self, model: nn.Module) -> None:
        super().attach(model)
        self.detach()
        model = unwrap(model)
        self.synapses = resolve_layers(model, self.layers, type(self).__name__)
        self._records = {}
        for name, syn in self.synapses.items():
            self._records[id(syn)] = Record(name, syn)
            self._handles.append(syn.register_forward_hook(self._synapse_hook))
            if syn.weight.requires_grad:
                syn.weight.requires_grad_(False)
                self._frozen.append(syn.weight)
        self._handles += hook_spiking_neurons(model, self._neuron_hook)

    def detach(self) -> None:
        for h in self._handles:
            h.remove()
        self._handles = []
        for p in self._frozen:
            p.requires_grad_(True)
        self._frozen = []
        self.clear()

    def clear(self) -> None:
        """Drop every record (called after each update; nothing is kept between batches)."""
        for r in self._records.values():
            r.pre = r.u = r.post = r.neuron = None
        self._open = []

    def local_parameters(self) -> list[nn.Parameter]:
        return [syn.weight for syn in self.synapses.values()]

    def parameter_groups(self, model: nn.Module) -> dict[str, ParamGroup]:
        """``local`` (the trained synapse weights: the rule's lr and optimiser, no weight decay, no schedule) and,
        when supervised, the model's own groups without those weights."""
        local = self.local_parameters()
        groups = {"local": ParamGroup(local, optimizer=self.optimizer, lr=self.lr, weight_decay=0.0, scheduler="none")}
        if self.supervised:
            ids = {id(p) for p in local}
            own = model.parameter_groups() if hasattr(model, "parameter_groups") else \
                {"weights": [p for p in model.parameters() if p.requires_grad]}
            for name, g in normalise_groups(own).items():
                rest = [p for p in g.params if id(p) not in ids]
                if rest:
                    groups[name] = ParamGroup(rest, g.optimizer, g.lr, g.weight_decay, g.scheduler, g.max_lr)
        return groups

    def callbacks(self) -> list[Callback]:
        constrained = self.w_min is not None or self.w_max is not None or self.normalise is not None
        return [WeightBounds(self)] if constrained else []

    @torch.no_grad()
    def apply_bounds(self) -> None:
        """Clamp the trained weights into ``[w_min, w_max]``, then normalise their rows (``normalise``)."""
        for w in self.local_parameters():
            if self.w_min is not None or self.w_max is not None:
                w.clamp_(self.w_min, self.w_max)
            if self.normalise is not None:
                rows = w.view(w.shape[0], -1)
                total = rows.sum(1, keepdim=True)
                rows.mul_(torch.where(total != 0, self.normalise / total, torch.ones_like(total)))

    # ------------------------------------------------------------------ hooks
    def _rows(self, t: torch.Tensor) -> torch.Tensor:
        # [T, B, ..., C] carries its own time axis (a model may run more steps than its input has, e.g. a rate
        # encoder); a flattened [T·B, C] takes T from the recorded batch
        T = t.shape[0] if t.dim() > 2 or self._T is None else self._T
        return t.reshape(T, -1, t.shape[-1])

    def _synapse_hook(self, module: nn.Module, args: tuple, output: torch.Tensor) -> None:
        if not self.recording:
            return
        rec = self._records[id(module)]
        x = args[0].detach()
        y = output.detach()
        if isinstance(module, nn.Conv2d):
            T = self._T if self._T is not None else 1
            cols = F.unfold(x.reshape(-1, *x.shape[-3:]), module.kernel_size, module.dilation, module.padding,
                            module.stride)  # [T·B, K, L]
            rec.pre = cols.transpose(1, 2).reshape(T, -1, cols.shape[1])
            y = y.reshape(-1, *y.shape[-3:])
            rec.u = y.flatten(2).transpose(1, 2).reshape(T, -1, y.shape[1])
        else:
            rec.pre, rec.u = self._rows(x), self._rows(y)
        rec.post = None
        self._open.append(rec)

    def _neuron_hook(self, module: nn.Module, args: tuple, output: Any) -> None:
        if not self.recording or not self._open:
            return
        s = (output[0] if isinstance(output, tuple) else output).detach()
        for rec in self._open:
            if isinstance(rec.synapse, nn.Conv2d):
                s2 = s.reshape(-1, *s.shape[-3:])
                rec.post = s2.flatten(2).transpose(1, 2).reshape(rec.u.shape)
            else:
                rec.post = s.reshape(rec.u.shape)
            rec.neuron = module
        self._open = []

    recording = False
    _lengths: torch.Tensor | None = None

    def record(self, T: int | None = None, lengths: torch.Tensor | None = None):
        """Context manager: record the forwards run inside it (``T``: time steps, needed for Conv2d synapses whose
        input is ``[T·B, C, H, W]``; ``lengths [B]``: each sample's real steps in a padded batch, used by rules
        that average over time). Use for closed loops outside the Trainer: ``with rule.record(T): model(x)``
        then :meth:`write_grads`."""
        import contextlib

        @contextlib.contextmanager
        def _ctx():
            self.clear()
            self.recording, self._T, self._lengths = True, T, lengths
            try:
                yield self
            finally:
                self.recording = False

        return _ctx()

    def rates(self, rec: Record, dtype: torch.dtype) -> torch.Tensor:
        """Presynaptic rates ``[R, K]``: spikes summed over time divided by each row's real steps (its sample's
        length when :meth:`record` got ``lengths``, else ``T``), so a sample's rate does not depend on the padding
        of the batch it came in."""
        counts = rec.pre.to(dtype).sum(0)
        if self._lengths is None:
            return counts / rec.pre.shape[0]
        lengths = self._lengths.to(counts.device, dtype)
        return counts / lengths.repeat_interleave(counts.shape[0] // lengths.shape[0])[:, None]

    # ------------------------------------------------------------------ updates
    def delta(self, rec: Record, weight: torch.Tensor, **kwargs: Any) -> torch.Tensor:
        """``Δw`` ``[N, K]`` of one synapse from its record (``weight`` is the ``[N, K]`` view of its weight)."""
        raise NotImplementedError

    def reduce(self, dw: torch.Tensor, rows: int) -> torch.Tensor:
        """The batch reduction of ``dw``, the update summed over all ``rows`` (of every process under DDP)."""
        return dw / rows if self.batch_reduction == "mean" else dw

    @torch.no_grad()
    def deltas(self, **kwargs: Any) -> dict[str, torch.Tensor]:
        """``{synapse name: Δw}`` (weight-shaped) from the last recorded forward; ``kwargs`` go to :meth:`delta`.

        Under ``torch.distributed`` each process recorded its share of the batch: the summed updates and the row
        counts are all-reduced (summed) before :meth:`reduce`, so every process gets the ``Δw`` one process would
        compute on the whole (concatenated) batch."""
        out, rows = {}, {}
        for rec in self._records.values():
            if rec.pre is None:
                continue
            if rec.post is None and self.needs_post:
                raise RuntimeError(f"{type(self).__name__}: synapse {rec.name!r} ran but no spiking neuron ran after "
                                   "it; local rules pair each synapse with the next spiking neuron of the forward")
            w = rec.synapse.weight.detach()
            out[rec.name] = self.delta(rec, w.reshape(w.shape[0], -1), **kwargs)
            rows[rec.name] = rec.pre.shape[1]
        if distributed() and out:
            device = next(iter(out.values())).device  # NCCL reduces CUDA tensors only
            counts = torch.tensor([rows[n] for n in out], dtype=torch.float64, device=device)
            torch.distributed.all_reduce(counts)
            rows = dict(zip(out, counts.long().tolist()))
            for dw in out.values():
                torch.distributed.all_reduce(dw)
        return {n: self.reduce(dw, rows[n]).reshape(self.synapses[n].weight.shape) for n, dw in out.items()}

    needs_post = True

    def write_grads(self, scale=lambda g: g, **kwargs: Any) -> dict[str, torch.Tensor]:
        """Write ``-Δw`` into each trained weight's ``.grad`` (replacing it), drop the records; returns the ``Δw``."""
        d = self.deltas(**kwargs)
        for name, dw in d.items():
            self.synapses[name].weight.grad = scale(-dw)
        self.clear()
        return d

    def training_step(self, model: nn.Module, batch: tuple, ctx: StepContext) -> dict[str, Any]:
        x, labels, lengths = batch
        with self.record(x.shape[0], lengths):
            with ctx.autocast(), torch.set_grad_enabled(self.supervised):
                out = forward(model, x, lengths)
        out32 = out.float()
        loss = model_loss(model, out32, labels, lengths)
        scores = model_scores(model, out32.detach(), lengths)
        if self.supervised and loss.requires_grad:
            ctx.backward(loss)
        self.write_grads(ctx.scale, **self.update_inputs(scores, labels))
        return {"loss": loss.detach(), "scores": scores, "outputs": out.detach()}

    def update_inputs(self, scores: torch.Tensor, labels: torch.Tensor) -> dict[str, Any]:
        """Extra keyword arguments of :meth:`delta` for one training batch (e.g. the reward)."""
        return {}

    def __repr__(self) -> str:
        return f"{type(self).__name__}(layers={self.layers!r}, supervised={self.supervised})"
