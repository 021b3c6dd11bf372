"""``estimate(model, data, profile)``: count operations on real batches and price them with a hardware profile."""
from __future__ import annotations

import os
from typing import Any

from torch import nn

from snn.energy.counter import count_operations
from snn.energy.profiles import HardwareProfile, load_profile
from snn.energy.report import ANN_CONVENTIONS, EnergyReport, build_report

__all__ = ["estimate"]


def estimate(
    model: nn.Module,
    data: Any,
    profile: str | os.PathLike | HardwareProfile = "45nm_fp32",
    ann_equivalent: bool = True,
    max_batches: int | None = None,
    ann_convention: str = "once",
) -> EnergyReport:
    """Estimate the energy per sample of ``model`` on ``data`` under a hardware ``profile``.

    The model runs in eval mode under ``torch.no_grad`` on every batch (up to ``max_batches``); forward hooks count
    synaptic operations, MACs, neuron updates and memory traffic per layer and per time step (see
    :mod:`snn.energy.counter`), then :func:`snn.energy.report.build_report` turns them into energy.

    Args:
        model: network taking time-major input ``[T, B, ...]``.
        data: a tensor ``[T, B, ...]`` or an iterable of batches ``x`` or ``(x, ...)`` (e.g. a DataLoader).
        profile: a built-in profile name (:func:`snn.energy.available_profiles`), a YAML path or a profile.
        ann_equivalent: also price the ANN with the same architecture (every synapse a MAC) and the ratio.
        max_batches: stop after this many batches.
        ann_convention: ``"once"`` (ANN charged once per sample, the default) or ``"per_step"`` (``T`` times);
            the report gives both, this picks the one used for ``ratio``.

    Returns:
        :class:`EnergyReport` (``.table()``, ``.to_json(path)``, ``.plot(path)``).
    """
    if not isinstance(model, nn.Module):
        raise TypeError(f"model: expected a torch.nn.Module, got {type(model).__name__}")
    if ann_convention not in ANN_CONVENTIONS:
        raise ValueError(f"ann_convention: expected one of {ANN_CONVENTIONS}, got {ann_convention!r}")
    hw = load_profile(profile)
    counter = count_operations(model, data, max_batches=max_batches)
    return build_report(counter, hw, ann_equivalent=ann_equivalent, ann_convention=ann_convention)
