"""``estimate(model, data, profile)``: count the model's inference form on real batches and price it."""
from __future__ import annotations

import contextlib
import os
from typing import Any, Callable

from torch import nn

from snn.energy.counter import OperationCounter, count_operations
from snn.energy.inputs import INTEGER_INPUTS
from snn.energy.profiles import HardwareProfile, load_profile
from snn.energy.report import ANN_CONVENTIONS, EnergyReport, build_report

__all__ = ["estimate", "count_model", "FORMS"]

FORMS = ("evaluation", "as_is")


def count_model(model: nn.Module, data: Any, max_batches: int | None = None, form: str = "evaluation",
                integer_inputs: str = "events", inference: Callable[..., Any] | None = None) -> OperationCounter:
    """Count ``model`` on ``data`` in the form inference would use; the one pass behind :func:`estimate` and
    ``snn energy``.

    ``form="evaluation"`` enters the model's ``evaluation()`` context when it has one (e.g.
    :meth:`snn.models.DelayNet.evaluation`: rounded integer delays), found by name on any model; ``"as_is"`` counts
    the model as it is. The counter's ``form`` says which was counted. ``inference(model, x, lengths)``: the
    forward pass(es) that classify a batch (a learning rule's ``inference``; ``None``: one forward of the model).
    """
    if form not in FORMS:
        raise ValueError(f"form: expected one of {FORMS}, got {form!r}")
    enter = getattr(model, "evaluation", None) if form == "evaluation" else None
    if enter is not None and not callable(enter):
        enter = None
    with enter() if enter is not None else contextlib.nullcontext():
        counter = count_operations(model, data, max_batches=max_batches, integer_inputs=integer_inputs,
                                   inference=inference)
    counter.form = (f"{type(model).__name__}.evaluation() (the inference form)" if enter is not None else
                    "as is (the model has no evaluation() context)" if form == "evaluation" else "as is (form='as_is')")
    return counter


def estimate(
    model: nn.Module,
    data: Any,
    profile: str | os.PathLike | HardwareProfile = "45nm_fp32",
    ann_equivalent: bool = True,
    max_batches: int | None = None,
    ann_convention: str = "per_step",
    form: str = "evaluation",
    integer_inputs: str = "events",
    inference: Callable[..., Any] | None = None,
) -> EnergyReport:
    """Estimate the energy per sample of ``model`` on ``data`` under a hardware ``profile``.

    The model runs in eval mode under ``torch.no_grad`` on every batch (up to ``max_batches``), inside its
    ``evaluation()`` context when it has one (``form``); the counter (:mod:`snn.energy.counter`) counts synaptic
    operations, MACs, neuron updates and memory traffic per layer and per real time step, then
    :func:`snn.energy.report.build_report` turns them into energy. ``snn energy RUN`` runs the same function, so
    the two give the same totals on the same checkpoint.

    Args:
        model: network taking time-major input ``[T, B, ...]``.
        data: a tensor ``[T, B, ...]`` or an iterable of batches ``x``, ``(x, ...)`` or ``(x, labels, lengths)``
            (padded batches: only each sample's real steps are counted).
        profile: a built-in profile name (:func:`snn.energy.available_profiles`), a YAML path or a profile.
        ann_equivalent: also price the ANN with the same architecture (every synapse a MAC) and the ratios.
        max_batches: stop after this many batches.
        ann_convention: ``"per_step"`` (ANN on the same real frames as the SNN, like-for-like; default) or
            ``"once"`` (one frame per sample); the report gives both, this picks the one of ``ratio``.
        form: ``"evaluation"`` (the model's ``evaluation()`` context if it has one; default) or ``"as_is"``.
        integer_inputs: ``"events"`` (integer spike counts are events; default) or ``"macs"``.
        inference: ``inference(model, x, lengths)``, the forward pass(es) that classify a batch, e.g. the run's
            learning rule's :meth:`~snn.rules.LearningRule.inference` (forward-forward: one pass per label);
            ``None``: one forward of the model.

    Returns:
        :class:`EnergyReport` (``.table()``, ``.to_json(path)``, ``.plot(path)``).
    """
    if not isinstance(model, nn.Module):
        raise TypeError(f"model: expected a torch.nn.Module, got {type(model).__name__}")
    if ann_convention not in ANN_CONVENTIONS:
        raise ValueError(f"ann_convention: expected one of {ANN_CONVENTIONS}, got {ann_convention!r}")
    if integer_inputs not in INTEGER_INPUTS:
        raise ValueError(f"integer_inputs: expected one of {INTEGER_INPUTS}, got {integer_inputs!r}")
    hw = load_profile(profile)
    counter = count_model(model, data, max_batches=max_batches, form=form, integer_inputs=integer_inputs,
                          inference=inference)
    return build_report(counter, hw, ann_equivalent=ann_equivalent, ann_convention=ann_convention)
