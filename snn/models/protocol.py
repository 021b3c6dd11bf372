"""What the Trainer, the run functions, ``snn eval`` and ``snn energy`` may ask of a model — all optional.

A plain ``nn.Module`` mapping ``x [T, B, C]`` to ``out [T, B, K]`` (or ``[B, K]``) trains as it is: its scores are
the time-mean of ``out`` over each sample's valid steps and its loss the cross-entropy of those scores, and all its
trainable parameters form one group. A model refines this with any of:

==========================  ==========================================================================================
``accepts_lengths = True``  ``forward(x, lengths)`` receives the unpadded steps per sample ``[B]``
``scores(out, lengths)``    class scores ``[B, K]`` from the forward's output
``loss(out, labels, lengths)``  the training loss
``parameter_groups()``      ``{name: ParamGroup | list[Parameter]}``: one optimiser per group; a group's settings
                            (lr, weight decay, schedule) default to the model's, are overridden per run under
                            ``optim.groups.<name>`` and fall back to the ``optim`` section
``callbacks()``             :class:`snn.callbacks.Callback` objects the Trainer runs (schedules, epoch-log entries)
``evaluation()``            a context manager giving the inference form (e.g. integer delays); validation, test,
                            ``snn eval`` and ``snn energy`` run inside it
==========================  ==========================================================================================
"""
from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any

from torch import nn

__all__ = ["ParamGroup", "GROUP_SETTINGS", "normalise_groups"]

#: the optimiser settings a group may set (``None``: inherit)
GROUP_SETTINGS = ("optimizer", "lr", "weight_decay", "scheduler", "max_lr")


@dataclass
class ParamGroup:
    """Parameters optimised together, with the model's default settings for them (``None``: the ``optim`` section's).

    Attributes:
        params: the parameters.
        optimizer: ``"adam"``, ``"adamw"``, ``"adamax"`` or ``"sgd"``.
        lr: learning rate.
        weight_decay: L2 decay.
        scheduler: ``"one_cycle"``, ``"cosine"`` or ``"none"``.
        max_lr: one-cycle peak (``None``: ``optim.max_lr`` scaled by ``lr / optim.lr``).
    """

    params: list[nn.Parameter] = field(default_factory=list)
    optimizer: str | None = None
    lr: float | None = None
    weight_decay: float | None = None
    scheduler: str | None = None
    max_lr: float | None = None


def normalise_groups(groups: Any) -> dict[str, ParamGroup]:
    """``{name: ParamGroup}`` from what ``parameter_groups()`` returned (plain lists become default groups)."""
    if not isinstance(groups, dict):
        raise TypeError(f"parameter_groups() must return a dict of name -> ParamGroup or list of parameters, "
                        f"got {type(groups).__name__}")
    out: dict[str, ParamGroup] = {}
    for name, g in groups.items():
        if not isinstance(name, str) or not name:
            raise TypeError(f"parameter group names must be non-empty strings, got {name!r}")
        out[name] = g if isinstance(g, ParamGroup) else ParamGroup(list(g))
    return out
