r"""Spike-driven self-attention (SDSA): v1 (Yao et al., NeurIPS 2023) and v2 (Meta-SpikeFormer, ICLR 2024).

Input ``x`` ``[T, B, C, H, W]`` (membrane-level values from the residual stream), ``N = H·W`` tokens, ``h`` heads
of ``d = C / h`` channels (channel ``c`` belongs to head ``c // d``). Each branch starts with a LIF, so all
products below are between spike tensors (0/1) and no softmax is used:

.. math::

    s &= \mathrm{SN}(x), \qquad Q = \mathrm{SN}(\mathrm{BN}(W_Q s)),\ K = \mathrm{SN}(\mathrm{BN}(W_K s)),\ V = \mathrm{SN}(\mathrm{BN}(W_V s)) \\
    \text{v1:}\quad A &= Q \odot \mathrm{SN}_{0.5}\Big(\sum_{n=1}^{N} K_{:, n} \odot V_{:, n}\Big)
        \qquad\text{(per channel; a column mask of } Q\text{)} \\
    \text{v2:}\quad A_{\text{head}} &= \mathrm{SN}_{0.5}\big(0.125 \cdot Q_{\text{head}}\,(K_{\text{head}}^\top V_{\text{head}})\big)
        \qquad (Q, K, V \text{ as } [N, d] \text{ per head}) \\
    \text{out} &= \mathrm{BN}(W_O A)

``SN`` is the spike-driven LIF (:mod:`snn.layers.sdt_neuron`), ``SN_0.5`` the same at threshold 0.5. Both are linear
in the number of tokens: v1 costs ``O(N·C)``, v2 ``O(N·C·d)``. v1 uses 1×1 convolutions for ``W_Q, W_K, W_V, W_O``
(``W_O`` with bias), v2 re-parameterisable 3×3 convolutions (:class:`snn.layers.rep_conv.RepConv`, each followed by
a BatchNorm). The modules return the branch; the block adds the residual (membrane shortcut).

With ``erode=True`` (the reference's ``dvs_mode``, used for CIFAR10-DVS) v1 applies a 3×3 max-pool with stride 1
("erode") to ``K`` and ``V`` over the image plane, and to ``K ⊙ V`` and to the attention output over the
(token, channel-in-head) plane of each head, exactly where the reference code does.
"""
from __future__ import annotations

import torch
import torch.nn.functional as F
from torch import nn

from snn.layers.rep_conv import RepConv
from snn.layers.sdt_neuron import spike_driven_lif
from snn.layers.per_step import apply_per_step

__all__ = ["sdsa_v1", "sdsa_v2_scores", "CoincidenceSum", "ChannelMask", "SpikeDrivenSelfAttention", "SpikeDrivenSelfAttentionV2", "check_heads"]


def check_heads(dim: int, heads: int) -> tuple[int, int]:
    """Validate ``dim`` and ``heads`` (``dim`` divisible by ``heads``); returns them as ints."""
    if not isinstance(dim, int) or dim < 1:
        raise ValueError(f"dim: expected a positive int, got {dim!r}")
    if not isinstance(heads, int) or heads < 1:
        raise ValueError(f"heads: expected a positive int, got {heads!r}")
    if dim % heads:
        raise ValueError(f"dim: expected a multiple of heads={heads}, got dim={dim}")
    return dim, heads


def _erode_plane(x: torch.Tensor) -> torch.Tensor:
    """3×3 max-pool, stride 1, padding 1 over the last two dimensions."""
    lead = x.shape[:-2]
    return F.max_pool2d(x.reshape(-1, 1, *x.shape[-2:]), 3, 1, 1).view(*lead, *x.shape[-2:])


def _erode_heads(x: torch.Tensor, heads: int) -> torch.Tensor:
    """Erode over the (token, channel-in-head) plane of each head of ``x`` ``[T, B, C, N]``."""
    T, B, C, N = x.shape
    return _erode_plane(x.view(T, B, heads, C // heads, N).transpose(-1, -2)).transpose(-1, -2).reshape(T, B, C, N)


class CoincidenceSum(nn.Module):
    r"""``Σ_n K_{c,n} V_{c,n}`` per channel for spikes ``k, v`` ``[T, B, C, N]`` → ``[T, B, C, 1]`` (v1's column sum of
    the mask ``K ⊙ V``; with ``erode`` the mask is eroded per head first).

    Energy: one accumulate per coincident spike pair (per non-zero term of the sum); declared through
    ``count_operations`` since element-wise products are invisible to the dispatcher.
    """

    def __init__(self, heads: int = 1, erode: bool = False):
        super().__init__()
        self.heads, self.erode = heads, erode

    def terms(self, k: torch.Tensor, v: torch.Tensor) -> torch.Tensor:
        kv = k * v
        return _erode_heads(kv, self.heads) if self.erode else kv

    def forward(self, k: torch.Tensor, v: torch.Tensor) -> torch.Tensor:
        return self.terms(k, v).sum(dim=-1, keepdim=True)

    def count_operations(self, inputs: tuple, output: torch.Tensor, ctx) -> list:
        from snn.energy.protocol import OpCount

        terms = self.terms(*inputs[:2])
        return [OpCount(x=terms, fanout=1.0, kind="attention", dense_macs=float(terms[0, 0].numel()),
                        output_elements=float(output[0, 0].numel()))]


class ChannelMask(nn.Module):
    r"""``Q ⊙ M`` for spikes ``q`` ``[T, B, C, N]`` and a per-channel spike mask ``m`` ``[T, B, C, 1]`` (v1's output;
    with ``erode`` eroded per head). Energy: one operation per spike of ``Q`` that the mask lets through (declared)."""

    def __init__(self, heads: int = 1, erode: bool = False):
        super().__init__()
        self.heads, self.erode = heads, erode

    def forward(self, q: torch.Tensor, mask: torch.Tensor) -> torch.Tensor:
        out = q * mask
        return _erode_heads(out, self.heads) if self.erode else out

    def count_operations(self, inputs: tuple, output: torch.Tensor, ctx) -> list:
        from snn.energy.protocol import OpCount

        q, mask = inputs[:2]
        return [OpCount(x=q, fanout=mask.expand_as(q), kind="attention", dense_macs=float(q[0, 0].numel()),
                        output_elements=float(output[0, 0].numel()))]


def sdsa_v1(q: torch.Tensor, k: torch.Tensor, v: torch.Tensor, attn_neuron: nn.Module, heads: int = 1,
            erode: bool = False) -> torch.Tensor:
    """v1 attention on spikes ``q, k, v`` ``[T, B, C, N]`` → ``Q ⊙ SN_0.5(Σ_n K ⊙ V)`` ``[T, B, C, N]``.

    ``heads`` matters only with ``erode`` (whose window runs over tokens and channels of one head).
    """
    mask = attn_neuron(CoincidenceSum(heads, erode)(k, v))       # [T, B, C, 1]: per-channel spikes
    return ChannelMask(heads, erode)(q, mask)


def sdsa_v2_scores(q: torch.Tensor, k: torch.Tensor, v: torch.Tensor, heads: int, scale: float = 0.125) -> torch.Tensor:
    """The v2 attention neuron's input ``scale · Q (Kᵀ V)`` per head, for spikes ``[T, B, C, N]`` → ``[T, B, C, N]``.

    In channel-first form (``Q_c = Qᵀ`` is ``[d, N]``): ``(Q (KᵀV))ᵀ = (K_c V_cᵀ)ᵀ Q_c``; only counts of
    coincident spikes are formed, so the values are multiples of ``scale``.
    """
    T, B, C, N = q.shape
    d = C // heads
    qh, kh, vh = (t.reshape(T, B, heads, d, N) for t in (q, k, v))
    kv = kh @ vh.transpose(-1, -2)                            # [T, B, h, d, d] = K^T V per head
    return ((kv.transpose(-1, -2) @ qh) * scale).reshape(T, B, C, N)


class SpikeDrivenSelfAttention(nn.Module):
    """SDSA v1 branch (see the module docstring): ``x`` ``[T, B, C, H, W]`` → ``BN(W_O A)`` ``[T, B, C, H, W]``.

    Args:
        dim: channels ``C`` (a multiple of ``heads``).
        heads: number of heads.
        erode: the reference's DVS mode (3×3 max-pools on ``K``, ``V``, ``K ⊙ V`` and the output).
        reference_parameters: also build the reference code's ``talking_heads`` 1×1 conv (``heads²`` weights)
            that its forward never uses, so parameter counts and checkpoints match the published models. It is
            frozen (``requires_grad=False``) and takes no part in the computation.
    """

    def __init__(self, dim: int, heads: int = 8, erode: bool = False, reference_parameters: bool = True):
        super().__init__()
        self.dim, self.heads = check_heads(dim, heads)
        self.erode = bool(erode)
        self.input_lif = spike_driven_lif()
        for name in "qkv":
            setattr(self, f"{name}_conv", nn.Conv2d(dim, dim, 1, bias=False))
            setattr(self, f"{name}_bn", nn.BatchNorm2d(dim))
            setattr(self, f"{name}_lif", spike_driven_lif())
        self.kv_sum = CoincidenceSum(heads, erode)
        self.attn_lif = spike_driven_lif(v_threshold=0.5)
        self.q_mask = ChannelMask(heads, erode)
        if reference_parameters:
            self.talking_heads = nn.Conv1d(heads, heads, 1, bias=False).requires_grad_(False)
        self.proj_conv = nn.Conv2d(dim, dim, 1)
        self.proj_bn = nn.BatchNorm2d(dim)

    def _spikes(self, name: str, s: torch.Tensor) -> torch.Tensor:
        conv, bn, lif = (getattr(self, f"{name}_{part}") for part in ("conv", "bn", "lif"))
        return lif(apply_per_step(lambda f: bn(conv(f)), s))

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        _check_frames(x, self.dim, type(self).__name__)
        T, B, C, H, W = x.shape
        s = self.input_lif(x)
        q, k, v = (self._spikes(name, s) for name in "qkv")
        if self.erode:
            k, v = _erode_plane(k), _erode_plane(v)
        a = self.q_mask(q.flatten(3), self.attn_lif(self.kv_sum(k.flatten(3), v.flatten(3))))
        return apply_per_step(lambda f: self.proj_bn(self.proj_conv(f)), a.view(T, B, C, H, W))

    def extra_repr(self) -> str:
        return f"dim={self.dim}, heads={self.heads}, erode={self.erode}"


class SpikeDrivenSelfAttentionV2(nn.Module):
    """SDSA v2 branch of Meta-SpikeFormer: ``x`` ``[T, B, C, H, W]`` → ``BN(RepConv(A))`` ``[T, B, C, H, W]``.

    Args:
        dim: channels ``C`` (a multiple of ``heads``).
        heads: number of heads.
        scale: the factor before the attention neuron (0.125 in the reference).
    """

    def __init__(self, dim: int, heads: int = 8, scale: float = 0.125):
        super().__init__()
        self.dim, self.heads = check_heads(dim, heads)
        self.scale = float(scale)
        self.input_lif = spike_driven_lif()
        for name in "qkv":
            setattr(self, f"{name}_conv", nn.Sequential(RepConv(dim, dim), nn.BatchNorm2d(dim)))
            setattr(self, f"{name}_lif", spike_driven_lif())
        self.attn_lif = spike_driven_lif(v_threshold=0.5)
        self.proj_conv = nn.Sequential(RepConv(dim, dim), nn.BatchNorm2d(dim))

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        _check_frames(x, self.dim, type(self).__name__)
        T, B, C, H, W = x.shape
        s = self.input_lif(x)
        q, k, v = (getattr(self, f"{n}_lif")(apply_per_step(getattr(self, f"{n}_conv"), s)).flatten(3) for n in "qkv")
        a = self.attn_lif(sdsa_v2_scores(q, k, v, self.heads, self.scale))
        return apply_per_step(self.proj_conv, a.view(T, B, C, H, W))

    def extra_repr(self) -> str:
        return f"dim={self.dim}, heads={self.heads}, scale={self.scale}"


def _check_frames(x: torch.Tensor, channels: int, who: str) -> None:
    if not isinstance(x, torch.Tensor) or x.dim() != 5 or x.shape[2] != channels:
        got = tuple(x.shape) if isinstance(x, torch.Tensor) else type(x).__name__
        raise ValueError(f"{who}: x must be [T, B, {channels}, H, W], got {got}")
