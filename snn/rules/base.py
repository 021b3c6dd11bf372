"""Learning rules: plug-in objects that turn a batch into gradients the Trainer's optimisers apply.

A rule implements

* :meth:`LearningRule.attach` — called once with the (unwrapped) model; a local rule registers its hooks here;
* :meth:`LearningRule.parameter_groups` — named parameter groups (:class:`snn.models.ParamGroup` or lists); the
  Trainer builds one optimiser per group, with the group's settings (:mod:`snn.models.protocol`);
* :meth:`LearningRule.training_step` — computes the update for one batch and writes it into ``.grad``
  (backprop calls ``loss.backward()``; a local rule writes ``-Δw``), returning ``{"loss", "scores"}``;
* :meth:`LearningRule.evaluation_step` — the same outputs without any update (called under ``no_grad``);
* :meth:`LearningRule.inference` — the forward passes that classify a batch (default: one forward of the model;
  spiking forward-forward: one per label), which ``snn energy`` and :func:`snn.energy.estimate` count;
* :meth:`LearningRule.callbacks` — optional :class:`snn.callbacks.Callback` objects the Trainer runs with the
  model's (e.g. hard weight bounds applied after every optimiser step, state kept in checkpoints).

The Trainer zeroes gradients before and clips/steps after, so local rules mix with weight decay and schedules.
Local rules (:mod:`snn.rules.local`) attach forward hooks to the synapses and neurons they train and write
``-Δw`` (times ``ctx.scale``, the AMP loss scale) into ``.grad``.
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

__all__ = ["LearningRule", "StepContext", "unwrap", "forward", "model_scores", "model_loss"]


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
    """What a rule needs from the Trainer for one step: the autocast context, the (scaled) backward and the loss
    scale that gradients written by hand must carry (``scale(g)``: identity without a float16 grad scaler)."""

    autocast: Callable[[], contextlib.AbstractContextManager] = contextlib.nullcontext
    backward: Callable[[torch.Tensor], None] = field(default=lambda loss: loss.backward())
    scale: Callable[[torch.Tensor], torch.Tensor] = field(default=lambda g: g)


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

    def callbacks(self) -> list:
        """:class:`snn.callbacks.Callback` objects the Trainer runs after the model's own (default: none)."""
        return []

    def training_step(self, model: nn.Module, batch: tuple, ctx: StepContext) -> dict[str, Any]:
        """Write this batch's update into ``.grad``; return ``{"loss", "scores"}`` (and what else to log)."""
        raise NotImplementedError

    def inference(self, model: nn.Module, x: torch.Tensor, lengths: torch.Tensor | None) -> Any:
        """Run the forward pass(es) that classify ``x [T, B, ...]`` and return what they give (default: the model's
        output). A rule whose inference runs the model several times per sample calls it once per pass, each time on
        the whole batch, so the energy counter sees every pass of every sample (:mod:`snn.energy.protocol`)."""
        return forward(model, x, lengths)

    def evaluation_step(self, model: nn.Module, batch: tuple, ctx: StepContext) -> dict[str, Any]:
        """Forward and loss without updates: ``{"loss", "scores", "outputs"}``."""
        x, labels, lengths = batch
        with ctx.autocast():
            out = self.inference(model, x, lengths)
        loss = model_loss(model, out.float(), labels, lengths)
        return {"loss": loss.detach(), "scores": model_scores(model, out.float(), lengths).detach(), "outputs": out}

    def __repr__(self) -> str:
        return f"{type(self).__name__}()"
