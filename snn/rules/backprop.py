"""Surrogate-gradient backpropagation through time as a learning rule."""
from __future__ import annotations

import math
from dataclasses import dataclass
from typing import Any

import torch
from torch import nn

from snn.rules.base import LearningRule, StepContext, forward, model_loss, model_scores, unwrap
from snn.rules.registry import RuleConfig, register_rule

__all__ = ["Backprop", "BackpropConfig"]


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
        if not loss.requires_grad:
            raise RuntimeError(
                f"training.rule: backprop needs a loss that depends on trainable parameters, but "
                f"{type(unwrap(model)).__name__}'s loss has no gradient (its output does not depend on any parameter "
                f"with requires_grad); train such a model with a local rule, e.g. training.rule: stdp")
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


@dataclass
class BackpropConfig(RuleConfig):
    """``training.rule: backprop`` (its one option, the activity penalty, is ``training.synops_penalty``)."""

    name: str = "backprop"


register_rule("backprop", BackpropConfig, Backprop,
              factory=lambda section, training: Backprop(synops_penalty=training.synops_penalty))
