r"""Meta-SpikeFormer, the spike-driven transformer v2 (Yao et al., ICLR 2024).

.. code-block:: text

    [B, 3, H, W] ─► Down 7×7/2 ─► ConvBlock(C0/2) ─► Down 3×3/2 ─► ConvBlock(C0)              (conv stage 1)
                 ─► Down 3×3/2 ─► 2 × ConvBlock(C1)                                             (conv stage 2)
                 ─► Down 3×3/2 ─► depths[0] × Block_v2(C2) ─► Down 3×3/1 ─► depths[1] × Block_v2(C3)
                 ─► mean over tokens ─► LIF ─► Linear ─► per-step logits [T, B, K]

Conv blocks: :class:`~snn.layers.MetaConvBlock`; transformer blocks: :class:`~snn.layers.SpikeDrivenBlock` with the v2
attention ``SN(0.125·Q(KᵀV))`` on re-parameterisable convs (fold them for inference with
:func:`snn.layers.reparameterize`). Overall downsampling 16: the image side must be a multiple of 16.

:data:`META_SPIKEFORMER_SIZES` are the reference builders ``metaspikformer_8_384/512/768`` (widths ``C0..C3``).
Their parameter counts are 31.3 M, 55.4 M and 123.7 M; the paper's 31.3 M and 55.4 M models are the builders named
``8_384`` and ``8_512`` (the 80.0 % ImageNet result is the 55.4 M ``8_512``). ``kd=True`` adds the reference's
distillation head (a second linear classifier; the two are averaged at evaluation; training it needs a teacher,
which is not part of this package — in training mode the forward returns the main head).
"""
from __future__ import annotations

from dataclasses import dataclass
from typing import Any

import torch
from torch import nn

from snn.layers.event_linear import event_driven as make_event_driven
from snn.layers.meta_conv import MetaConvBlock, SpikingDownsample
from snn.layers.sdt_block import SpikeDrivenBlock
from snn.layers.sdt_neuron import spike_driven_lif
from snn.models.registry import register_model
from snn.models.spike_driven_transformer import SpikeDrivenClassifier, SpikeDrivenLossConfig, image_input, loss_options

__all__ = ["MetaSpikeFormer", "META_SPIKEFORMER_SIZES", "meta_spikeformer", "MetaSpikeFormerConfig"]

META_SPIKEFORMER_SIZES: dict[str, tuple[int, int, int, int]] = {
    "8_384": (96, 192, 384, 480),
    "8_512": (128, 256, 512, 640),
    "8_768": (192, 384, 768, 960),
}


class MetaSpikeFormer(SpikeDrivenClassifier):
    """Meta-SpikeFormer (see the module docstring).

    Args:
        in_channels: input channels.
        n_classes: output classes.
        image_size: ``H`` or ``(H, W)``, multiples of 16.
        widths: stage widths ``(C0, C1, C2, C3)``; ``C0`` even, ``C2`` and ``C3`` multiples of ``heads``.
        depths: transformer blocks in stages 3 and 4.
        heads: attention heads.
        mlp_ratio: hidden width of the conv blocks' channel MLP and of the transformer MLPs.
        time_steps: repetitions of a static image (the paper trains with 1, fine-tunes with 4).
        kd: add the distillation head.
        event_driven: every ``nn.Conv2d`` / ``nn.Linear`` skips zero inputs on CPU where that is faster
            (:class:`~snn.layers.EventConv2d`, :class:`~snn.layers.EventLinear`: same results, same parameters;
            ``benchmarks/bench_event_conv.py`` measures the training step).
    """

    def __init__(self, in_channels: int = 3, n_classes: int = 1000, image_size: int | tuple[int, int] = 224,
                 widths: tuple[int, int, int, int] = (128, 256, 512, 640), depths: tuple[int, int] = (6, 2),
                 heads: int = 8, mlp_ratio: int = 4, time_steps: int = 1, kd: bool = False, event_driven: bool = True):
        super().__init__()
        size = (image_size, image_size) if isinstance(image_size, int) else tuple(image_size)
        if any(s % 16 for s in size):
            raise ValueError(f"image_size: every side must be divisible by the network's downsampling 16, got {image_size!r}")
        if len(widths) != 4 or widths[0] % 2:
            raise ValueError(f"widths: expected four stage widths with an even first one, got {widths!r}")
        if not isinstance(time_steps, int) or time_steps < 1:
            raise ValueError(f"time_steps: expected an int >= 1, got {time_steps!r}")
        c0, c1, c2, c3 = widths
        self.in_channels, self.image_size, self.time_steps = in_channels, size, time_steps
        self.stages = nn.Sequential(
            SpikingDownsample(in_channels, c0 // 2, 7, 2, 3, first_layer=True),
            MetaConvBlock(c0 // 2, mlp_ratio),
            SpikingDownsample(c0 // 2, c0),
            MetaConvBlock(c0, mlp_ratio),
            SpikingDownsample(c0, c1),
            MetaConvBlock(c1, mlp_ratio),
            MetaConvBlock(c1, mlp_ratio),
            SpikingDownsample(c1, c2),
            *(SpikeDrivenBlock(c2, heads, mlp_ratio, attention="v2") for _ in range(depths[0])),
            SpikingDownsample(c2, c3, stride=1),
            *(SpikeDrivenBlock(c3, heads, mlp_ratio, attention="v2") for _ in range(depths[1])),
        )
        self.head_lif = spike_driven_lif()
        self.head = nn.Linear(c3, n_classes)
        self.head_kd = nn.Linear(c3, n_classes) if kd else None
        for m in self.modules():   # the reference initialises only the linear layers (convs keep torch's default)
            if isinstance(m, nn.Linear):
                nn.init.trunc_normal_(m.weight, std=0.02)
                nn.init.zeros_(m.bias)
        if event_driven:
            make_event_driven(self)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        x = self.stages(image_input(x, self.in_channels, self.image_size, self.time_steps))
        s = self.head_lif(x.flatten(3).mean(3))
        out = self.head(s)
        if self.head_kd is not None and not self.training:
            out = (out + self.head_kd(s)) / 2
        return out


def meta_spikeformer(size: str = "8_512", **kwargs) -> MetaSpikeFormer:
    """A Meta-SpikeFormer of a published size (``"8_384"``, ``"8_512"``, ``"8_768"``; see the module docstring)."""
    if size not in META_SPIKEFORMER_SIZES:
        raise ValueError(f"size: expected one of {sorted(META_SPIKEFORMER_SIZES)}, got {size!r}")
    return MetaSpikeFormer(widths=META_SPIKEFORMER_SIZES[size], **kwargs)


@dataclass
class MetaSpikeFormerConfig(SpikeDrivenLossConfig):
    """``model:`` section of the ``meta_spikeformer`` family: a published ``size``, or ``base_width`` ``w`` for stage
    widths ``(w, 2w, 4w, 5w)`` (the published sizes follow this pattern with w = 96, 128, 192).

    Attributes:
        size: a published size: ``"8_384"``, ``"8_512"`` (the 55M model of the 80.0 % ImageNet result) or ``"8_768"``.
        base_width: stage widths ``(w, 2w, 4w, 5w)`` instead of a published size (``null``: use ``size``).
        image_size: input height and width in pixels (divisible by the stages' downsampling, 16).
        stage3_blocks: transformer blocks in stage 3.
        stage4_blocks: transformer blocks in stage 4.
        heads: attention heads of the transformer stages.
        time_steps: spiking steps per input (a static image is repeated; direct encoding).
        event_driven: event-driven Conv2d/Linear layers on CPU (:class:`snn.layers.EventConv2d`; same results).
    """

    name: str = "meta_spikeformer"
    size: str = "8_512"
    base_width: int | None = None
    image_size: int = 224
    stage3_blocks: int = 6
    stage4_blocks: int = 2
    heads: int = 8
    time_steps: int = 1
    event_driven: bool = True


@register_model("meta_spikeformer", MetaSpikeFormerConfig, description="Meta-SpikeFormer (spike-driven transformer v2)")
def build_meta_spikeformer(config: Any, n_inputs: int, n_classes: int) -> MetaSpikeFormer:
    """``meta_spikeformer`` family: ``n_inputs`` is the image's channel count."""
    m = config.model
    if m.base_width is not None:
        widths = (m.base_width, 2 * m.base_width, 4 * m.base_width, 5 * m.base_width)
    elif m.size in META_SPIKEFORMER_SIZES:
        widths = META_SPIKEFORMER_SIZES[m.size]
    else:
        raise ValueError(f"model.size: expected one of {sorted(META_SPIKEFORMER_SIZES)}, got {m.size!r}")
    model = MetaSpikeFormer(n_inputs, n_classes, m.image_size, widths, (m.stage3_blocks, m.stage4_blocks), m.heads,
                            time_steps=m.time_steps, event_driven=m.event_driven)
    model.use_loss(**loss_options(m))
    return model
