r"""Labels for unsupervised neurons, and class votes from their spike counts (Diehl & Cook 2015).

Assignment, from the spike counts ``n_{m,j}`` of neuron ``j`` for training samples ``m`` with labels ``y_m``: neuron
``j`` takes the class it responds to most on average,

.. math::

    r_{j,c} = \frac{1}{|M_c|} \sum_{m \in M_c} n_{m,j}, \qquad a_j = \arg\max_c r_{j,c}

(``M_c`` the samples of class ``c``; ties go to the lowest class; a neuron that never fired gets ``a_j = -1`` and
votes for nothing). Prediction for a sample with counts ``n_j``: each class scores the mean count of its neurons,

.. math::

    v_c = \frac{1}{|A_c|} \sum_{j \in A_c} n_j, \qquad A_c = \{j : a_j = c\}

(``v_c = 0`` for a class without neurons), and the predicted class is ``argmax_c v_c``.
"""
from __future__ import annotations

import torch

__all__ = ["assign_labels", "class_votes"]


def assign_labels(counts: torch.Tensor, labels: torch.Tensor, n_classes: int) -> torch.Tensor:
    """Assignments ``a [N]`` (int64, ``-1`` for silent neurons) from counts ``[M, N]`` and labels ``[M]``."""
    if counts.dim() != 2 or labels.dim() != 1 or labels.shape[0] != counts.shape[0]:
        raise ValueError(f"assign_labels: expected counts [M, N] and labels [M], got {tuple(counts.shape)} and "
                         f"{tuple(labels.shape)}")
    if labels.numel() and (int(labels.min()) < 0 or int(labels.max()) >= n_classes):
        raise ValueError(f"assign_labels: labels must lie in [0, {n_classes}), got [{int(labels.min())}, "
                         f"{int(labels.max())}]")
    onehot = torch.nn.functional.one_hot(labels.long(), n_classes).to(torch.float64)  # [M, K]
    per_class = onehot.sum(0).clamp_min(1.0)
    rates = (onehot.t() @ counts.to(torch.float64)) / per_class[:, None]  # [K, N]
    assigned = rates.argmax(0)
    return torch.where(rates.sum(0) > 0, assigned, torch.full_like(assigned, -1))


def class_votes(counts: torch.Tensor, assignments: torch.Tensor, n_classes: int) -> torch.Tensor:
    """Votes ``[B, K]``: the mean count of the neurons assigned to each class, from counts ``[B, N]``."""
    if counts.dim() != 2 or assignments.shape != (counts.shape[1],):
        raise ValueError(f"class_votes: expected counts [B, N] and assignments [N], got {tuple(counts.shape)} and "
                         f"{tuple(assignments.shape)}")
    member = (assignments[:, None] == torch.arange(n_classes, device=assignments.device)[None]).to(counts.dtype)
    return (counts @ member) / member.sum(0).clamp_min(1.0)
