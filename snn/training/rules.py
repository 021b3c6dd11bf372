"""Learning rules: plug-in objects that turn a batch into gradients the Trainer's optimisers apply.

A rule implements

* :meth:`LearningRule.attach` — called once with the (unwrapped) model; a local rule registers its hooks here;
* :meth:`LearningRule.parameter_groups` — named parameter groups (:class:`snn.models.ParamGroup` or lists); the
  Trainer builds one optimiser per group, with the group's settings (:mod:`snn.models.protocol`);
* :meth:`LearningRule.training_step` — computes the update for one batch and writes it into ``.grad``
  (backprop calls ``loss.backward()``; a local rule writes ``-Δw``), returning ``{"loss", "scores"}``;
* :meth:`LearningRule.evaluation_step` — the same outputs without any update (called under ``no_grad``).

The Trainer zeroes gradients before and clips/steps after, so local rules mix with weight decay and schedules.
"""
from __future__ import annotations

import contextlib
import math
from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Any

import torch
import torch.nn.functional as F
from torch import nn

__all__ = ["LearningRule", "Backprop", "StepContext", "unwrap", "model_scores", "model_loss", "get_rule", "RULES"]


def unwrap(model: nn.Module) -> nn.Module:
    """The module inside a ``DistributedDataParallel`` / ``DataParallel`` wrapper (or the model itself)."""
    return getattr(model, "module", model)


def forward(model: nn.Module, x: torch.Tensor, lengths: torch.Tensor | None) -> torch.Tensor:
    """``model(x, lengths)`` for models that declare ``accepts_lengths``, else ``model(x)``."""
    if lengths is not None and getattr(unwrap(model), "accepts_lengths", False):
        return model(x, lengths)
    return model(x)


def model_scores(model: nn.Module, out: torch.Tensor, lengths: torch.Tensor | None) -> torch.Tensor:
    """Class scores ``[B, K]``: the model's ``scores(out, lengths)`` if it has one, else the time-mean of ``out``."""
    m = unwrap(model)
    if hasattr(m, "scores"):
        return m.scores(out, lengths)
    if out.dim() == 2:
        return out
    if lengths is None:
        return out.mean(0)
    mask = (torch.arange(out.shape[0], device=out.device)[:, None] < lengths.to(out.device)[None, :]).to(out.dtype)
    return (out * mask[:, :, None]).sum(0) / lengths.to(out.device, out.dtype)[:, None]


def model_loss(model: nn.Module, out: torch.Tensor, labels: torch.Tensor, lengths: torch.Tensor | None) -> torch.Tensor:
    """The model's ``loss(out, labels, lengths)`` if it has one, else cross-entropy of :func:`model_scores`."""
    m = unwrap(model)
    if hasattr(m, "loss"):
        return m.loss(out, labels, lengths)
    return F.cross_entropy(model_scores(model, out, lengths), labels)


@dataclass
class StepContext:
    """What a rule needs from the Trainer for one step: the autocast context and the (scaled) backward."""

    autocast: Callable[[], contextlib.AbstractContextManager] = contextlib.nullcontext
    backward: Callable[[torch.Tensor], None] = field(default=lambda loss: loss.backward())


class LearningRule:
    """Base class of learning rules (see the module docstring for the protocol)."""

    name = "rule"

    def attach(self, model: nn.Module) -> None:
        """Bind to ``model`` (unwrapped); local rules register forward hooks here."""
        self.model = model

    def detach(self) -> None:
        """Undo :meth:`attach` (remove hooks)."""

    def parameter_groups(self, model: nn.Module) -> dict[str, list[nn.Parameter]]:
        """Named parameter groups to optimise (default: the model's ``parameter_groups()``, else every trainable
        parameter in one group ``weights``)."""
        if hasattr(model, "parameter_groups"):
            return model.parameter_groups()
        return {"weights": [p for p in model.parameters() if p.requires_grad]}

    def training_step(self, model: nn.Module, batch: tuple, ctx: StepContext) -> dict[str, Any]:
        raise NotImplementedError

    def evaluation_step(self, model: nn.Module, batch: tuple, ctx: StepContext) -> dict[str, Any]:
        """Forward and loss without updates: ``{"loss", "scores", "outputs"}``."""
        x, labels, lengths = batch
        with ctx.autocast():
            out = forward(model, x, lengths)
        loss = model_loss(model, out.float(), labels, lengths)
        return {"loss": loss.detach(), "scores": model_scores(model, out.float(), lengths).detach(), "outputs": out}

    def __repr__(self) -> str:
        return f"{type(self).__name__}()"


class Backprop(LearningRule):
    r"""Surrogate-gradient backpropagation through time: ``loss.backward()`` over the whole sequence.

    Args:
        synops_penalty: weight ``w ≥ 0`` of the activity regulariser (:class:`snn.energy.SynOpsPenalty`): the
            optimised loss is ``L_task + w · S`` with ``S`` the expected synaptic operations per sample of the
            training forward (spikes entering each synaptic layer × their fan-out). ``0`` disables it (no hooks).

    ``training_step`` returns ``loss`` (the task loss, what is logged and compared across runs) and, with the
    penalty on, ``synops`` (``S`` of the batch) and ``penalty`` (``w · S``).
    """

    name = "backprop"

    def __init__(self, synops_penalty: float = 0.0) -> None:
        if isinstance(synops_penalty, bool) or not isinstance(synops_penalty, (int, float)) \
                or not math.isfinite(synops_penalty) or synops_penalty < 0:
            raise ValueError(f"synops_penalty must be a finite number >= 0, got {synops_penalty!r}")
        self.synops_penalty = float(synops_penalty)
        self.penalty = None

    def attach(self, model: nn.Module) -> None:
        super().attach(model)
        self.detach()
        if self.synops_penalty > 0:
            from snn.energy import SynOpsPenalty

            self.penalty = SynOpsPenalty(unwrap(model), weight=self.synops_penalty)

    def detach(self) -> None:
        if self.penalty is not None:
            self.penalty.remove()
            self.penalty = None

    def training_step(self, model: nn.Module, batch: tuple, ctx: StepContext) -> dict[str, Any]:
        x, labels, lengths = batch
        if self.penalty is not None:
            self.penalty.reset()
        with ctx.autocast():
            out = forward(model, x, lengths)
        out32 = out.float()
        loss = model_loss(model, out32, labels, lengths)
        result = {"loss": loss.detach(), "scores": model_scores(model, out32.detach(), lengths), "outputs": out}
        if self.penalty is not None:
            synops = self.penalty.synops().to(loss.device)
            penalty = self.penalty.weight * synops
            result.update(synops=synops.detach(), penalty=penalty.detach())
            self.penalty.reset()  # drop the graph references before the backward frees it
            ctx.backward(loss + penalty)
        else:
            ctx.backward(loss)
        return result

    def __repr__(self) -> str:
        return f"Backprop(synops_penalty={self.synops_penalty:g})"


RULES: dict[str, type[LearningRule]] = {"backprop": Backprop}


def get_rule(name: str, **options: Any) -> LearningRule:
    """A rule instance by config name; ``options`` go to its constructor (e.g. ``synops_penalty`` for backprop)."""
    if name not in RULES:
        raise ValueError(f"rule must be one of {sorted(RULES)}, got {name!r}")
    return RULES[name](**options)
