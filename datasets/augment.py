"""Frame-level augmentations used in the SHD/SSC literature (all off unless you pass them).

Each augmentation is a pure function on a frames tensor ``x [T, C]`` (one sample, time-major) and
a small class that draws its random parameters and calls the function.  They act on the binned
(cached) frames, so the cache stays valid while every epoch sees new variants.  Random draws use
``generator`` when given, else torch's global RNG (which DataLoader seeds per worker).

=================  ==================================================================================
class              effect (``x`` is ``[T, C]``)
=================  ==================================================================================
``TimeJitter``     each channel ``c`` moves in time by its own ``s_c ∈ {-k..k}`` steps: ``x'[t, c] = x[t - s_c, c]``
``ChannelShift``   all channels move by one ``s ∈ {-k..k}``: ``x'[t, c] = x[t, c - s]`` (frequency shift)
``TimeMask``       ``n`` spans of up to ``W`` steps set to zero (SpecAugment-style)
``ChannelMask``    ``n`` bands of up to ``F`` channels set to zero
``CutMix``         batch level: a time segment of ``x [T, B, C]`` comes from another sample; the
                   labels are mixed with weight ``λ`` = the segment's share of the time steps
=================  ==================================================================================

Shifts fill vacated entries with zeros (nothing wraps around).
"""

from __future__ import annotations

from collections.abc import Callable, Sequence

import numpy as np
import torch

__all__ = [
    "time_jitter", "channel_shift", "time_mask", "channel_mask", "cutmix",
    "TimeJitter", "ChannelShift", "TimeMask", "ChannelMask", "CutMix", "Compose",
]


def _check_frames(x: torch.Tensor, name: str = "x") -> None:
    if not torch.is_tensor(x) or x.dim() != 2:
        raise ValueError(f"{name} must be a frames tensor [T, C], got {getattr(x, 'shape', type(x))}")


def time_jitter(x: torch.Tensor, shifts: torch.Tensor) -> torch.Tensor:
    """``x'[t, c] = x[t - shifts[c], c]`` (zero where ``t - shifts[c]`` is outside ``[0, T)``)."""
    _check_frames(x)
    T, C = x.shape
    if shifts.shape != (C,):
        raise ValueError(f"shifts must have shape [{C}], got {tuple(shifts.shape)}")
    src = torch.arange(T, device=x.device)[:, None] - shifts.to(x.device)[None, :]
    valid = (src >= 0) & (src < T)
    out = torch.gather(x, 0, src.clamp(0, T - 1))
    return out * valid


def channel_shift(x: torch.Tensor, shift: int) -> torch.Tensor:
    """``x'[t, c] = x[t, c - shift]`` (zero-filled)."""
    _check_frames(x)
    out = torch.zeros_like(x)
    C = x.shape[1]
    if abs(shift) >= C:
        return out
    if shift >= 0:
        out[:, shift:] = x[:, : C - shift]
    else:
        out[:, : C + shift] = x[:, -shift:]
    return out


def _zero_spans(x: torch.Tensor, spans: Sequence[tuple[int, int]], dim: int) -> torch.Tensor:
    _check_frames(x)
    out = x.clone()
    for start, width in spans:
        out.narrow(dim, start, max(0, min(width, x.shape[dim] - start))).zero_()
    return out


def time_mask(x: torch.Tensor, spans: Sequence[tuple[int, int]]) -> torch.Tensor:
    """Zero the time steps ``[start, start + width)`` of every ``(start, width)`` in ``spans``."""
    return _zero_spans(x, spans, 0)


def channel_mask(x: torch.Tensor, bands: Sequence[tuple[int, int]]) -> torch.Tensor:
    """Zero the channels ``[start, start + width)`` of every ``(start, width)`` in ``bands``."""
    return _zero_spans(x, bands, 1)


def cutmix(
    x: torch.Tensor, labels: torch.Tensor, lengths: torch.Tensor, perm: torch.Tensor, start: int, width: int
) -> tuple[torch.Tensor, torch.Tensor, torch.Tensor, torch.Tensor, torch.Tensor]:
    """Replace time steps ``[start, start+width)`` of every sample ``b`` with those of sample ``perm[b]``.

    Args:
        x: ``[T, B, C]`` padded batch; labels, lengths: ``[B]``; perm: ``[B]`` permutation.

    Returns:
        ``(x_mixed, labels_a, labels_b, lam, lengths)``: ``labels_a = labels``, ``labels_b = labels[perm]``,
        ``lam [B]`` = weight of ``labels_b`` (the segment's share of the mixed sample's length, 0 when
        the segment lies past it), and the mixed lengths ``max(len_a, min(len_b, start + width))``.
        Train with ``(1 - lam) · CE(logits, labels_a) + lam · CE(logits, labels_b)``.
    """
    if x.dim() < 3:
        raise ValueError(f"x must be a batch [T, B, ...], got shape {tuple(x.shape)}")
    T, B = x.shape[:2]
    if perm.shape != (B,) or labels.shape != (B,) or lengths.shape != (B,):
        raise ValueError(f"labels, lengths and perm must have shape [{B}]")
    end = min(start + width, T)
    out = x.clone()
    out[start:end] = x[start:end, perm]
    len_b = lengths[perm]
    new_len = torch.maximum(lengths, torch.clamp(len_b, max=end))
    seg = (torch.clamp(new_len, max=end) - start).clamp(min=0)
    lam = seg.to(torch.float32) / new_len.clamp(min=1).to(torch.float32)
    return out, labels, labels[perm], lam, new_len


def _randint(low: int, high: int, generator: torch.Generator | None, size=()) -> torch.Tensor:
    return torch.randint(low, high + 1, size, generator=generator)


class TimeJitter:
    """Per-channel random time shift of up to ``max_shift`` steps (either way).

    Use it to make a model robust to small timing differences between frequency channels; keep
    ``max_shift`` below a few steps at 10 ms bins (it scrambles formant timing beyond that).
    """

    def __init__(self, max_shift: int = 1, generator: torch.Generator | None = None) -> None:
        if not isinstance(max_shift, int) or max_shift < 0:
            raise ValueError(f"max_shift must be an int >= 0 (steps), got {max_shift!r}")
        self.max_shift, self.generator = max_shift, generator

    def __call__(self, x: torch.Tensor) -> torch.Tensor:
        _check_frames(x)
        return time_jitter(x, _randint(-self.max_shift, self.max_shift, self.generator, (x.shape[1],)))

    def __repr__(self) -> str:
        return f"TimeJitter(max_shift={self.max_shift})"


class ChannelShift:
    """Shift all channels by one random offset in ``[-max_shift, max_shift]`` (a pitch/frequency shift)."""

    def __init__(self, max_shift: int = 20, generator: torch.Generator | None = None) -> None:
        if not isinstance(max_shift, int) or max_shift < 0:
            raise ValueError(f"max_shift must be an int >= 0 (channels), got {max_shift!r}")
        self.max_shift, self.generator = max_shift, generator

    def __call__(self, x: torch.Tensor) -> torch.Tensor:
        return channel_shift(x, int(_randint(-self.max_shift, self.max_shift, self.generator)))

    def __repr__(self) -> str:
        return f"ChannelShift(max_shift={self.max_shift})"


class _SpanMask:
    """Zero ``n_masks`` random spans of ``1..max_width`` entries along one axis of ``x [T, C]``."""

    _dim = 0
    _unit = "steps"

    def __init__(self, max_width: int, n_masks: int = 1, generator: torch.Generator | None = None) -> None:
        if not isinstance(max_width, int) or max_width < 1:
            raise ValueError(f"max_width must be an int >= 1 ({self._unit}), got {max_width!r}")
        if not isinstance(n_masks, int) or n_masks < 0:
            raise ValueError(f"n_masks must be an int >= 0, got {n_masks!r}")
        self.max_width, self.n_masks, self.generator = max_width, n_masks, generator

    def __call__(self, x: torch.Tensor) -> torch.Tensor:
        _check_frames(x)
        size = x.shape[self._dim]
        spans = []
        for _ in range(self.n_masks):
            w = int(_randint(1, min(self.max_width, size), self.generator))
            spans.append((int(_randint(0, size - w, self.generator)), w))
        return _zero_spans(x, spans, self._dim)

    def __repr__(self) -> str:
        return f"{type(self).__name__}(max_width={self.max_width}, n_masks={self.n_masks})"


class TimeMask(_SpanMask):
    """Zero ``n_masks`` random spans of ``1..max_width`` time steps (SpecAugment's time masking)."""

    def __init__(self, max_width: int = 5, n_masks: int = 1, generator: torch.Generator | None = None) -> None:
        super().__init__(max_width, n_masks, generator)


class ChannelMask(_SpanMask):
    """Zero ``n_masks`` random bands of ``1..max_width`` adjacent channels (SpecAugment's frequency masking)."""

    _dim = 1
    _unit = "channels"

    def __init__(self, max_width: int = 20, n_masks: int = 1, generator: torch.Generator | None = None) -> None:
        super().__init__(max_width, n_masks, generator)


class CutMix:
    """Batch-level mixing: a random time segment of each sample comes from another sample.

    The segment length is ``round(λ₀ · T)`` with ``λ₀ ~ Beta(alpha, alpha)`` and applies with
    probability ``p``.  Call on a padded batch from :func:`~snn.datasets.pad_collate`:
    ``x, y_a, y_b, lam, lengths = CutMix()(x, labels, lengths)``.
    """

    def __init__(self, alpha: float = 1.0, p: float = 0.5, generator: torch.Generator | None = None) -> None:
        if not alpha > 0:
            raise ValueError(f"alpha must be > 0, got {alpha!r}")
        if not 0.0 <= p <= 1.0:
            raise ValueError(f"p must lie in [0, 1], got {p!r}")
        self.alpha, self.p, self.generator = float(alpha), float(p), generator

    def __call__(self, x: torch.Tensor, labels: torch.Tensor, lengths: torch.Tensor):
        T, B = x.shape[:2]
        if float(torch.rand((), generator=self.generator)) >= self.p:
            return x, labels, labels, torch.zeros(B), lengths
        # torch's Beta takes no generator: seed numpy's Beta from the torch stream instead
        seed = int(torch.randint(0, 2**31 - 1, (), generator=self.generator))
        lam0 = float(np.random.default_rng(seed).beta(self.alpha, self.alpha))
        width = max(1, int(round(lam0 * T)))
        start = int(_randint(0, T - width, self.generator))
        perm = torch.randperm(B, generator=self.generator)
        return cutmix(x, labels, lengths, perm, start, width)

    def __repr__(self) -> str:
        return f"CutMix(alpha={self.alpha}, p={self.p})"


class Compose:
    """Apply per-sample transforms in order: ``Compose([TimeJitter(1), ChannelMask(20)])``."""

    def __init__(self, transforms: Sequence[Callable[[torch.Tensor], torch.Tensor]]) -> None:
        self.transforms = list(transforms)

    def __call__(self, x: torch.Tensor) -> torch.Tensor:
        for t in self.transforms:
            x = t(x)
        return x

    def __repr__(self) -> str:
        return f"Compose({self.transforms!r})"
