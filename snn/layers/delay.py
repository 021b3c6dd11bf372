r"""Learnable synaptic delays (DCLS, Hammouamri, Khalfaoui-Hassani & Masquelier, ICLR 2024).

Each synapse ``(o, i)`` has ``kernel_count`` elements, each with a learnable weight ``w`` and a learnable
real-valued position ``p ∈ [-D//2, D//2]`` (``D = max_delay`` taps). The position is spread over the taps
by a Gaussian (``version="gauss"``) or a triangle (``version="max"``) whose width ``σ`` is a scheduled,
non-learnable buffer (wide → narrow during training); see :mod:`snn.layers.delay_functional` for the
kernel equations. Tap ``j`` delays its input by ``D - 1 - j`` steps, so the delay of an element is
``D - 1 - (p + D//2)`` steps. The input is padded by ``D - 1`` steps on the left and ``right_pad``
(default ``(D - 1) // 2``) on the right, as in the reference, so late spikes still reach the output.

Shapes: input ``[T, B, C_in]`` (time-major) → output ``[T + right_pad, B, C_out]``.
"""
from __future__ import annotations

import math
from typing import Any

import torch
from torch import nn

from snn.layers import delay_functional as DF
from snn.layers.event_functional import nonzero_fraction

__all__ = ["LearnableDelay", "DelayedLinear"]

_TRAIN_PATHS = ("auto", "sparse", "dense")
_INFERENCE_MODES = ("dense", "sparse")
_WEIGHT_INITS = ("kaiming_relu", "kaiming_uniform")
_POSITION_INITS = ("uniform", "normal")


class LearnableDelay(nn.Module):
    r"""Fully connected synapse with learnable per-synapse delays (a time-major ``dcls.Dcls1d``).

    .. math::

        y[t', b, o] = \text{bias}_o + \sum_{i} \sum_{j=0}^{D-1} K_j[i, o] \; x[t' - (D-1-j), b, i],
        \qquad K_j[i, o] = \sum_k w_{oik} \, \frac{e_j(p_{oik}, \sigma)}{\sum_m e_m(p_{oik}, \sigma) + 10^{-7}}

    with ``x`` zero outside ``[0, T)`` and ``e`` the Gaussian or triangle profile.

    Args:
        in_features: ``C_in``.
        out_features: ``C_out``.
        max_delay: number of taps ``D`` (delays ``0 … D-1`` steps); the reference uses an odd number.
        kernel_count: elements (weight + position) per synapse.
        version: ``"gauss"`` (training) or ``"max"`` (triangle; with ``σ = 0`` and integer positions
            an exact one-tap delay — the reference's evaluation mode).
        sigma: initial width in taps (reference schedule: ``D // 2`` decaying to ``0.23``).
        right_pad: zero steps appended after the input (default ``(D - 1) // 2``, the reference's).
        bias: add a learnable bias (the reference uses none).
        weight_init: ``"kaiming_relu"`` (SNN-delays: ``kaiming_uniform_(nonlinearity="relu")``, bound
            ``sqrt(6 / (C_in·K))``) or ``"kaiming_uniform"`` (``Dcls1d``'s own: ``a = sqrt(5)``).
        position_init: ``"uniform"`` on ``position_init_range`` (default ``(-D//2 … D//2)`` with
            ``D//2 = floor(D / 2)``; SNN-delays writes ``-max_delay//2``, which is ``-(D//2) - 1`` in
            Python for odd ``D``, then clamps) or ``"normal"`` (``Dcls1d``'s ``N(0, 0.5)``).
        train_path: how a differentiable forward applies the kernel: ``"sparse"`` (CPU numba kernels
            whose cost scales with the non-zero inputs; input gradient stays dense), ``"dense"``
            (``F.conv1d``), or ``"auto"`` (sparse on CPU float inputs whose density is at most
            ``sparse_density``).
        inference: ``"sparse"`` makes a forward without autograd run the integer-delay scatter (needs
            :meth:`to_integer_delays` first); ``"dense"`` always builds the kernel.

    Attributes:
        weight: ``[C_out, C_in, K]``.
        positions: ``[C_out, C_in, K]``, centred tap positions (``0`` = tap ``D // 2``).
        sigma: scalar buffer; assign a number (``layer.sigma = 0.5``) or call :meth:`set_sigma`.
    """

    def __init__(
        self,
        in_features: int,
        out_features: int,
        max_delay: int,
        kernel_count: int = 1,
        version: str = "gauss",
        sigma: float = 0.23,
        right_pad: int | None = None,
        bias: bool = False,
        weight_init: str = "kaiming_relu",
        position_init: str = "uniform",
        position_init_range: tuple[float, float] | None = None,
        train_path: str = "auto",
        sparse_density: float = 0.15,
        inference: str = "dense",
        device: Any = None,
        dtype: torch.dtype | None = None,
    ) -> None:
        super().__init__()
        for name, value in (("in_features", in_features), ("out_features", out_features),
                            ("max_delay", max_delay), ("kernel_count", kernel_count)):
            if not isinstance(value, int) or isinstance(value, bool) or value < 1:
                raise ValueError(f"{name} must be a positive int, got {value!r}")
        if right_pad is None:
            right_pad = (max_delay - 1) // 2
        if not isinstance(right_pad, int) or right_pad < 0:
            raise ValueError(f"right_pad must be a non-negative int, got {right_pad!r}")
        if weight_init not in _WEIGHT_INITS:
            raise ValueError(f"weight_init must be one of {_WEIGHT_INITS}, got {weight_init!r}")
        if position_init not in _POSITION_INITS:
            raise ValueError(f"position_init must be one of {_POSITION_INITS}, got {position_init!r}")
        if not 0.0 <= sparse_density <= 1.0:
            raise ValueError(f"sparse_density must be in [0, 1], got {sparse_density!r}")
        self.in_features = in_features
        self.out_features = out_features
        self.max_delay = max_delay
        self.kernel_count = kernel_count
        self.right_pad = right_pad
        self.weight_init = weight_init
        self.position_init = position_init
        self.position_init_range = position_init_range
        self.sparse_density = float(sparse_density)
        self.version = version
        self.train_path = train_path
        self.inference = inference
        factory = {"device": device, "dtype": dtype}
        self.weight = nn.Parameter(torch.empty(out_features, in_features, kernel_count, **factory))
        self.positions = nn.Parameter(torch.empty(out_features, in_features, kernel_count, **factory))
        self.bias = nn.Parameter(torch.empty(out_features, **factory)) if bias else None
        self.register_buffer("sigma", torch.tensor(float(sigma), **factory))
        self.reset_parameters()

    # ---------------------------------------------------------------- configuration
    def __setattr__(self, name: str, value: Any) -> None:
        if name == "version" and value not in DF.VERSIONS:
            raise ValueError(f"version must be one of {DF.VERSIONS}, got {value!r}")
        if name == "train_path" and value not in _TRAIN_PATHS:
            raise ValueError(f"train_path must be one of {_TRAIN_PATHS}, got {value!r}")
        if name == "inference" and value not in _INFERENCE_MODES:
            raise ValueError(f"inference must be one of {_INFERENCE_MODES}, got {value!r}")
        if name == "sigma" and "sigma" in self.__dict__.get("_buffers", {}):
            self.set_sigma(value)
            return
        super().__setattr__(name, value)

    @property
    def position_limit(self) -> int:
        """Positions live in ``[-limit, limit]`` with ``limit = max_delay // 2``."""
        return self.max_delay // 2

    def set_sigma(self, value: float | torch.Tensor) -> None:
        """Set the kernel width (taps, before the version's offset) in place; ``value ≥ 0``."""
        v = float(value)
        if not math.isfinite(v) or v < 0:
            raise ValueError(f"sigma must be a finite number >= 0, got {value!r}")
        with torch.no_grad():
            self.sigma.fill_(v)

    def reset_parameters(self) -> None:
        """Initialise weights, positions and bias as configured (see the class docstring)."""
        with torch.no_grad():
            if self.weight_init == "kaiming_relu":
                nn.init.kaiming_uniform_(self.weight, nonlinearity="relu")
            else:
                nn.init.kaiming_uniform_(self.weight, a=math.sqrt(5))
            lim = self.position_limit
            if self.position_init == "uniform":
                lo, hi = self.position_init_range if self.position_init_range is not None else (-lim, lim)
                nn.init.uniform_(self.positions, lo, hi)
            else:
                nn.init.normal_(self.positions, 0.0, 0.5)
            self.clamp_positions()
            if self.bias is not None:
                bound = 1.0 / math.sqrt(self.in_features * self.kernel_count)
                nn.init.uniform_(self.bias, -bound, bound)

    def clamp_positions(self) -> None:
        """Clamp positions to ``[-max_delay//2, max_delay//2]`` in place (call after each optimiser step)."""
        with torch.no_grad():
            self.positions.clamp_(-self.position_limit, self.position_limit)

    def to_integer_delays(self) -> None:
        """Switch to the reference's evaluation form: triangle version, ``σ = 0``, positions rounded and clamped.

        The kernel is then one tap per element and ``inference="sparse"`` can skip the dense kernel.
        """
        with torch.no_grad():
            self.positions.round_()
        self.clamp_positions()
        self.version = "max"
        self.set_sigma(0.0)

    def has_integer_delays(self) -> bool:
        """True when every element is an exact one-tap delay (``"max"``, ``σ = 0``, integer positions)."""
        p = self.positions.detach()
        return (
            self.version == "max"
            and float(self.sigma) == 0.0
            and bool(torch.equal(p, p.round()))
            and bool((p.abs() <= self.position_limit).all())
        )

    # ---------------------------------------------------------------- inspection
    def kernel(self) -> torch.Tensor:
        """The dense delay kernel ``[max_delay, C_in, C_out]`` (tap-major; tap ``j`` = delay ``D-1-j``)."""
        return DF.delay_kernel(self.weight, self.positions, self.sigma, self.max_delay, self.version)

    def rounded_delays(self) -> torch.Tensor:
        """Integer delays in steps ``[C_out, C_in, K]`` (``int64``, ``0 … D-1``) of the rounded, clamped positions."""
        lim = self.position_limit
        p = self.positions.detach().round().clamp(-lim, lim).to(torch.int64)
        return (self.max_delay - 1 - lim) - p

    def nonzero_taps_per_synapse(self) -> torch.Tensor:
        """Non-zero taps of the current kernel per synapse, ``[C_out, C_in]`` (``int64``).

        Each input spike on synapse ``(o, i)`` costs this many synaptic operations: ``1`` for integer
        delays with a non-zero weight (``kernel_count`` distinct delays at most), up to ``max_delay``
        for a wide Gaussian.
        """
        with torch.no_grad():
            return (self.kernel() != 0).sum(0).t().to(torch.int64)

    def count_operations(self, inputs: tuple, output: Any, ctx: Any) -> list:
        r"""Operations of one forward call, for the energy counter (:mod:`snn.energy.protocol`).

        An input spike ``x[t, b, i]`` is delivered through every non-zero kernel tap of its synapses whose delay
        lands inside the sample's output window, ``V_b = ctx.valid_steps(T + right_pad)[b]``:

        .. math::

            \mathrm{fanout}[t, b, i] = \#\{(o, j) : K_j[i, o] 
e 0,\ t + (D - 1 - j) < V_b\}

        Taps past the window are never computed (the output stops at ``T + right_pad``), so they cost nothing.
        With integer delays each non-zero element is one tap; a wide Gaussian spreads an element over many.
        """
        from snn.energy.protocol import OpCount

        x = inputs[0]
        with torch.no_grad():
            taps = self.kernel() != 0  # [D, C_in, C_out]; tap j delays by D - 1 - j
            per_delay = taps.sum(2).flip(0).t().to(torch.float64)  # [C_in, D]: non-zero taps of delay d
            cum = torch.cat([per_delay.new_zeros(self.in_features, 1), per_delay.cumsum(1)], 1)  # taps with delay < r
            steps = x.shape[0]
            out_steps = ctx.valid_steps(steps + self.right_pad, device=x.device)  # [B]
            if bool((out_steps == out_steps[0]).all()):
                out_steps = out_steps[:1]
            remaining = (out_steps[None, :] - torch.arange(steps, device=x.device)[:, None]).clamp(0, self.max_delay)
            fanout = cum.t()[remaining]  # [T, B or 1, C_in]
        return [OpCount(x=x, fanout=fanout, kind="delay", params=int(cum[:, -1].sum()),
                        output_elements=float(self.out_features))]

    def extra_repr(self) -> str:
        s = (
            f"{self.in_features}, {self.out_features}, max_delay={self.max_delay}, "
            f"kernel_count={self.kernel_count}, version={self.version!r}, sigma={float(self.sigma):.4g}, "
            f"right_pad={self.right_pad}"
        )
        if self.bias is None:
            s += ", bias=False"
        if self.train_path != "auto":
            s += f", train_path={self.train_path!r}"
        if self.inference != "dense":
            s += f", inference={self.inference!r}"
        return s

    # ---------------------------------------------------------------- forward
    def _check_input(self, x: torch.Tensor) -> None:
        if not isinstance(x, torch.Tensor):
            raise TypeError(f"input must be a torch.Tensor [T, B, C_in], got {type(x).__name__}")
        if x.dim() != 3:
            raise ValueError(f"input must have shape [T, B, C_in] (rank 3), got shape {tuple(x.shape)}")
        if x.shape[2] != self.in_features:
            raise ValueError(f"input must have C_in={self.in_features} features (dim 2), got {x.shape[2]}")
        if not x.is_floating_point():
            raise TypeError(f"input must be a floating-point tensor, got dtype {x.dtype}")
        if x.dtype != self.weight.dtype:
            raise TypeError(f"input dtype {x.dtype} must match the layer's dtype {self.weight.dtype}")

    def _use_sparse_input(self, x: torch.Tensor) -> bool:
        if self.train_path == "dense" or not DF.sparse_input_supported(x):
            return False
        if self.train_path == "sparse":
            return True
        return nonzero_fraction(x) <= self.sparse_density  # one parallel pass (numba), no temporaries

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        """``x`` ``[T, B, C_in]`` → ``[T + right_pad, B, C_out]``."""
        self._check_input(x)
        needs_grad = torch.is_grad_enabled() and (
            x.requires_grad or self.weight.requires_grad or self.positions.requires_grad
        )
        if self.inference == "sparse" and not needs_grad:
            if not self.has_integer_delays():
                raise ValueError(
                    "inference='sparse' needs integer delays (version 'max', sigma 0, integer positions); "
                    f"got version={self.version!r}, sigma={float(self.sigma)}: call to_integer_delays() first"
                )
            y = self.integer_forward(x)
        else:
            k = self.kernel()
            if self._use_sparse_input(x):
                y = DF.delay_conv_sparse_input(x, k, self.right_pad)
            else:
                y = DF.delay_conv_dense(x, k, self.right_pad)
        if self.bias is not None:
            y = y + self.bias
        return y

    def integer_forward(self, x: torch.Tensor) -> torch.Tensor:
        """Integer-delay forward without a dense kernel (no bias, no autograd); cost ∝ non-zero inputs.

        Equals the dense path on the same rounded state: each element's tap value is
        ``w / (1 + 1e-7)``, exactly what the normalised one-tap kernel holds.
        """
        w_eff = self.weight.detach() * (1.0 / (torch.ones((), dtype=self.weight.dtype) + DF.NORM_EPS)).to(
            self.weight.device
        )
        return DF.integer_delay_scatter(x, w_eff, self.rounded_delays(), self.right_pad)


DelayedLinear = LearnableDelay
