r"""Class scores from a readout's membrane over time, respecting each sample's valid steps.

For readout membranes ``V`` ``[T, B, K]`` and valid lengths ``T_b``:

* ``"sum_softmax"``: ``m_b = Σ_{t < T_b} softmax(V[t, b])`` (the DCLS reference's scores, fed to cross-entropy
  as logits);
* ``"mean"``: ``m_b = (1/T_b) Σ_{t < T_b} V[t, b]`` (rate/membrane average);
* ``"max"``: ``m_b = max_{t < T_b} V[t, b]`` (the max-over-time readout of Cramer et al. 2020);
* ``"last"``: ``m_b = V[T_b - 1, b]``.
"""
from __future__ import annotations

import torch
import torch.nn.functional as F

__all__ = ["READOUTS", "time_scores", "valid_mask", "check_sequence_input"]

READOUTS = ("sum_softmax", "mean", "max", "last")


def valid_mask(out: torch.Tensor, lengths: torch.Tensor | None) -> torch.Tensor | None:
    """``[T, B]`` boolean mask of the valid steps (``None`` when every step is valid)."""
    if lengths is None:
        return None
    return torch.arange(out.shape[0], device=out.device)[:, None] < lengths.to(out.device)[None, :]


def time_scores(out: torch.Tensor, lengths: torch.Tensor | None, mode: str = "sum_softmax") -> torch.Tensor:
    """Class scores ``[B, K]`` from ``out`` ``[T, B, K]`` (see the module docstring); computed in float32 or wider."""
    if mode not in READOUTS:
        raise ValueError(f"readout: expected one of {READOUTS}, got {mode!r}")
    out = out.float() if out.dtype in (torch.float16, torch.bfloat16) else out
    mask = valid_mask(out, lengths)
    if mode == "sum_softmax":
        p = F.softmax(out, dim=2)
        if mask is not None:
            p = p * mask[:, :, None]
        return p.sum(0)
    if mode == "mean":
        if mask is None:
            return out.mean(0)
        return (out * mask[:, :, None]).sum(0) / lengths.to(out.device, out.dtype).clamp_min(1)[:, None]
    if mode == "max":
        if mask is None:
            return out.amax(0)
        return out.masked_fill(~mask[:, :, None], float("-inf")).amax(0)
    last = (lengths.to(out.device).long() - 1).clamp_min(0) if lengths is not None else \
        torch.full((out.shape[1],), out.shape[0] - 1, device=out.device, dtype=torch.long)
    return out[last, torch.arange(out.shape[1], device=out.device)]


def check_sequence_input(x: torch.Tensor, lengths: torch.Tensor | None, n_inputs: int) -> None:
    """Raise ValueError unless ``x`` is ``[T, B, n_inputs]`` and ``lengths`` (if given) is ``[B]``."""
    if not isinstance(x, torch.Tensor) or x.dim() != 3:
        raise ValueError(f"x must be a tensor [T, B, C], got {getattr(x, 'shape', type(x).__name__)}")
    if x.shape[2] != n_inputs:
        raise ValueError(f"x must have n_inputs={n_inputs} channels (dim 2), got {x.shape[2]}")
    if lengths is not None and (lengths.dim() != 1 or lengths.shape[0] != x.shape[1]):
        raise ValueError(f"lengths must have shape [B] = [{x.shape[1]}], got {tuple(lengths.shape)}")
