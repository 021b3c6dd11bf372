"""The Trainer's extension points: one small protocol, :class:`Callback`.

The training loop calls every hook of every callback in order, at these points::

    on_fit_start(trainer)
    for each epoch e (0-based):
        on_epoch_start(trainer, e)
        for each training batch:  (rule step, gradient clipping, optimiser steps)
            on_after_optimizer_step(trainer)
        on_evaluate_start(trainer, split)            # validation, test, ``snn eval``: inside the model's evaluation()
            on_evaluate_batch_start(trainer, batch)  # batch = (x [T, B, C], labels [B], lengths [B])
            on_evaluate_batch_end(trainer, batch, outputs)
        on_evaluate_end(trainer, split, row)         # also called (row=None) when the pass failed: release resources
        on_epoch_end(trainer, e, row)                # add keys to ``row`` (the metrics line); set trainer.should_stop
    on_fit_end(trainer)

A callback that keeps state across epochs returns it from :meth:`Callback.state_dict` (plain data or tensors) so
that ``last.pt`` restores it and a resumed run continues bit for bit. Models provide their own callbacks through
an optional ``callbacks()`` method (e.g. the delay network's σ schedule); users pass theirs to the Trainer.

This is deliberately smaller than PyTorch Lightning's or Keras's callback sets: no per-batch training hooks other
than the one after the optimiser step (a learning rule, not a callback, decides how a batch becomes gradients).
"""
from __future__ import annotations

from typing import Any

__all__ = ["Callback"]


class Callback:
    """Base class: every hook does nothing; override the ones you need."""

    def on_fit_start(self, trainer: Any) -> None:
        """Before the first epoch of :meth:`Trainer.fit` (also after a resume)."""

    def on_epoch_start(self, trainer: Any, epoch: int) -> None:
        """Before the training pass of (0-based) ``epoch``."""

    def on_after_optimizer_step(self, trainer: Any) -> None:
        """After the optimisers stepped on one training batch (before per-batch schedulers step)."""

    def on_evaluate_start(self, trainer: Any, split: str) -> None:
        """Before an evaluation pass over ``split`` (model in eval mode, inside its ``evaluation()`` form)."""

    def on_evaluate_batch_start(self, trainer: Any, batch: tuple) -> None:
        """Before the forward of one evaluation batch ``(x, labels, lengths)``."""

    def on_evaluate_batch_end(self, trainer: Any, batch: tuple, outputs: dict[str, Any]) -> None:
        """After the forward of one evaluation batch (``outputs``: the rule's ``loss``, ``scores``, ``outputs``)."""

    def on_evaluate_end(self, trainer: Any, split: str, row: dict[str, Any] | None) -> None:
        """After an evaluation pass; add metrics to ``row`` (``None`` when the pass raised)."""

    def on_epoch_end(self, trainer: Any, epoch: int, row: dict[str, Any]) -> None:
        """After validation, best-model selection and before the metrics line is logged; may add keys to ``row``."""

    def on_fit_end(self, trainer: Any) -> None:
        """After the last epoch (or an early stop)."""

    def state_dict(self) -> dict[str, Any]:
        """State to keep in ``last.pt`` (empty: stateless)."""
        return {}

    def load_state_dict(self, state: dict[str, Any]) -> None:
        """Restore what :meth:`state_dict` returned."""
