r"""Spike-driven transformer v1 (Yao et al., NeurIPS 2023) for images, event frames and audio.

.. code-block:: text

    input ──► SPS stem (4 conv stages + RPE) ──► L × [x + SDSA(x); x + MLP(x)] ──► mean over tokens
          ──► LIF ──► Linear ──► per-step logits [T, B, K]          (classification: mean over T)

Static images ``[B, C, H, W]`` are repeated over ``time_steps`` (direct encoding); time-major frames
``[T, B, C, H, W]`` (events binned by :mod:`snn.datasets.vision`, or images already repeated) enter as they are;
``[T, B, C·H·W]`` (flattened frames from :func:`snn.datasets.pad_collate`) are unflattened.

:class:`SpikeDrivenAudioTransformer` is the audio variant: an SHD-format input ``[T_f, B, C]`` (``T_f`` frames of
spike counts over ``C`` channels) becomes a sequence of ``T_f`` tokens — the tokens are time frames — that a 1-D SPS
stem embeds and pools; the token sequence is presented ``time_steps`` times (direct encoding), so attention sees the
whole utterance at every spiking step.

:data:`SDT_V1_CONFIGS` holds the published configurations (reference code ``conf/``): CIFAR-10/100 (2-512, T=4),
CIFAR10-DVS (2-256, T=10, erode mode, TET), DVS128 Gesture (2-256, T=16) and the ImageNet sizes (T=4).
"""
from __future__ import annotations

from dataclasses import dataclass
from typing import Any, ClassVar

import torch
import torch.nn.functional as F
from torch import nn

from snn.layers.patch_split import SpikingPatchSplit
from snn.layers.sdt_block import SpikeDrivenBlock
from snn.layers.event_linear import event_driven as make_event_driven
from snn.layers.sdt_neuron import spike_driven_lif
from snn.models.registry import ModelConfig, register_model
from snn.models.tet import tet_loss

__all__ = ["SpikeDrivenTransformer", "SpikeDrivenAudioTransformer", "SDT_V1_CONFIGS", "sdt_v1", "image_input",
           "ClassifierHead", "SpikeDrivenClassifier", "SpikeDrivenLossConfig", "SDTBodyConfig", "SDTConfig",
           "SDTAudioConfig", "loss_options"]

SDT_V1_CONFIGS: dict[str, dict[str, Any]] = {
    "cifar10": dict(in_channels=3, n_classes=10, image_size=32, dim=512, depth=2, pooling="0011", time_steps=4),
    "cifar100": dict(in_channels=3, n_classes=100, image_size=32, dim=512, depth=2, pooling="0011", time_steps=4),
    "cifar10_dvs": dict(in_channels=2, n_classes=10, image_size=64, dim=256, depth=2, pooling="0011", time_steps=10,
                        erode=True),
    "dvs_gesture": dict(in_channels=2, n_classes=11, image_size=128, dim=256, depth=2, pooling="0111", time_steps=16),
    **{f"imagenet_{d}_{w}": dict(in_channels=3, n_classes=1000, image_size=224, dim=w, depth=d, pooling="1111",
                                 time_steps=4)
       for d, w in ((8, 384), (6, 512), (8, 512), (10, 512), (8, 768))},
}


def image_input(x: torch.Tensor, channels: int, size: tuple[int, int], time_steps: int) -> torch.Tensor:
    """Bring an image-like input to ``[T, B, C, H, W]``: ``[B, C, H, W]`` repeated ``time_steps`` times (direct
    encoding), ``[T, B, C·H·W]`` unflattened, ``[T, B, C, H, W]`` unchanged — except a single frame (``T = 1``),
    which is repeated ``time_steps`` times like a static image."""
    shape = (channels, *size)
    if x.dim() == 4 and tuple(x.shape[1:]) == shape:
        return x.unsqueeze(0).expand(time_steps, *x.shape)
    if x.dim() == 3 and x.shape[2] == channels * size[0] * size[1]:
        x = x.unflatten(2, shape)
    if x.dim() == 5 and tuple(x.shape[2:]) == shape:
        return x.expand(time_steps, *x.shape[1:]) if x.shape[0] == 1 else x
    raise ValueError(f"x: expected [B, {', '.join(map(str, shape))}], [T, B, {', '.join(map(str, shape))}] or "
                     f"[T, B, {channels * size[0] * size[1]}], got {tuple(x.shape)}")


class ClassifierHead(nn.Module):
    r"""Classifier head: ``[T, B, D, H, W]`` (membrane-level tokens ``x_n``) → per-step logits ``[T, B, K]``.

    .. math::

        \text{"membrane" (reference):}\quad o = W\,\mathrm{SN}\big(\tfrac1N \textstyle\sum_n x_n\big) + b,
        \qquad \text{"spikes":}\quad o = \tfrac1N \textstyle\sum_n \big(W\,\mathrm{SN}(x_n) + b\big)

    ``"membrane"`` averages the tokens' membranes and fires one neuron per channel (the published heads);
    ``"spikes"`` fires every token's neurons and averages the token logits, i.e. the linear layer reads the
    channels' spike rates over the tokens (a finer code than one neuron's spikes when ``T`` is small). Both feed the
    linear layer with spikes only.
    """

    def __init__(self, dim: int, n_classes: int, readout: str = "membrane"):
        super().__init__()
        if readout not in ("membrane", "spikes"):
            raise ValueError(f"readout: expected 'membrane' or 'spikes', got {readout!r}")
        self.readout = readout
        self.lif = spike_driven_lif()
        self.fc = nn.Linear(dim, n_classes)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        if self.readout == "membrane":
            return self.fc(self.lif(x.flatten(3).mean(3)))
        return self.fc(self.lif(x.flatten(3)).transpose(2, 3)).mean(2)


class SpikeDrivenClassifier(nn.Module):
    """What the spike-driven transformers share as classifiers: scores are the mean of the per-step logits over the
    model's own time steps, and the loss is cross-entropy of the scores or, with :meth:`use_tet`, the TET loss."""

    tet: bool = False
    tet_means: float = 1.0
    tet_lamb: float = 0.0
    label_smoothing: float = 0.0

    def use_loss(self, tet: bool = False, tet_means: float = 1.0, tet_lamb: float = 0.0,
                 label_smoothing: float = 0.0) -> None:
        """Choose the training loss: TET (``tet=True``; see :func:`snn.models.tet.tet_loss`) or cross-entropy."""
        if not 0.0 <= tet_lamb <= 1.0 or not 0.0 <= label_smoothing < 1.0:
            raise ValueError(f"tet_lamb: expected [0, 1] and label_smoothing [0, 1), got {tet_lamb!r}, {label_smoothing!r}")
        self.tet, self.tet_means, self.tet_lamb, self.label_smoothing = bool(tet), float(tet_means), float(tet_lamb), float(label_smoothing)

    def scores(self, out: torch.Tensor, lengths: torch.Tensor | None = None) -> torch.Tensor:
        """Class scores ``[B, K]``: the time-mean of the per-step logits (input lengths play no part)."""
        return out.mean(0)

    def loss(self, out: torch.Tensor, labels: torch.Tensor, lengths: torch.Tensor | None = None) -> torch.Tensor:
        if self.tet:
            return tet_loss(out, labels, self.tet_means, self.tet_lamb, self.label_smoothing)
        return F.cross_entropy(self.scores(out), labels, label_smoothing=self.label_smoothing)


class SpikeDrivenTransformer(SpikeDrivenClassifier):
    """Spike-driven transformer v1 (see the module docstring).

    Args:
        in_channels: input channels (3 RGB, 2 DVS polarities, 1 grey).
        n_classes: output classes.
        image_size: ``H`` (square) or ``(H, W)``, divisible by the stem's downsampling ``2^(pools)``.
        dim: embedding channels (a multiple of 8 and of ``heads``).
        depth: number of blocks.
        heads: attention heads.
        mlp_ratio: MLP hidden width over ``dim``.
        time_steps: repetitions of a static image (direct encoding); time-major inputs keep their own ``T``.
        pooling: the stem's pooling pattern (see :class:`~snn.layers.SpikingPatchSplit`).
        erode: the reference's DVS mode of the attention (CIFAR10-DVS).
        reference_parameters: keep the reference code's unused attention weights (parameter-count parity).
        event_driven: every ``nn.Conv2d`` / ``nn.Linear`` skips zero inputs on CPU where that is faster
            (:class:`~snn.layers.EventConv2d`, :class:`~snn.layers.EventLinear`: same results, same parameters;
            ``benchmarks/bench_event_conv.py`` measures the training step).

    Shape: see :func:`image_input` → per-step logits ``[T, B, n_classes]``.
    """

    def __init__(self, in_channels: int, n_classes: int, image_size: int | tuple[int, int], dim: int = 256,
                 depth: int = 2, heads: int = 8, mlp_ratio: float = 4.0, time_steps: int = 4, pooling: str = "0011",
                 erode: bool = False, reference_parameters: bool = True, event_driven: bool = True):
        super().__init__()
        if not isinstance(time_steps, int) or time_steps < 1:
            raise ValueError(f"time_steps: expected an int >= 1, got {time_steps!r}")
        if not isinstance(depth, int) or depth < 1:
            raise ValueError(f"depth: expected an int >= 1, got {depth!r}")
        size = (image_size, image_size) if isinstance(image_size, int) else tuple(image_size)
        self.in_channels, self.image_size, self.time_steps = in_channels, size, time_steps
        self.stem = SpikingPatchSplit(in_channels, dim, size, pooling)
        self.blocks = nn.ModuleList(SpikeDrivenBlock(dim, heads, mlp_ratio, "v1", erode, reference_parameters)
                                    for _ in range(depth))
        self.head = ClassifierHead(dim, n_classes)
        _init_like_reference(self)
        if event_driven:
            make_event_driven(self)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        x = self.stem(image_input(x, self.in_channels, self.image_size, self.time_steps))
        for block in self.blocks:
            x = block(x)
        return self.head(x)


class SpikeDrivenAudioTransformer(SpikeDrivenClassifier):
    """Audio variant: the tokens are the time frames of an SHD-format input (see the module docstring).

    Args:
        n_inputs: channels ``C`` per frame (e.g. 140 after pooling SHD's 700 by 5).
        n_classes: output classes.
        n_frames: frames per utterance; inputs are cut or zero-padded to it (divisible by ``2^(pools)``).
        dim, depth, heads, mlp_ratio, pooling: as :class:`SpikeDrivenTransformer` (stem in 1-D).
        time_steps: spiking steps over which the token sequence is presented.
        attention: ``"v1"`` or ``"v2"``.
        stem_width: channels of the stem's first three stages (``None``: the reference's ``D/8, D/4, D/2``; with
            tens of input channels per frame the reference's first stage is a bottleneck of ``D/8`` spiking channels).
        readout: the head's ``"membrane"`` (reference: mean of the tokens' membranes, one neuron per channel) or
            ``"spikes"`` (each token fires, the linear layer reads the mean over tokens); see :class:`ClassifierHead`.
        stem_kernel: size of the stem's stage convolutions over frames (reference 3): v1 attention sums over
            tokens and the head averages them, so the order of spectral events is seen only within the stem's
            receptive field, ``5·stem_kernel + 10`` frames with pooling ``"0011"`` (:class:`SpikingPatchSplit`).

    Training-time augmentation (a frequency shift, time and channel masks) is the data pipeline's
    (``data.augment``, :mod:`snn.datasets.augment`): it acts on the same pooled frames this model reads.

    Shape: ``[T_f, B, C]`` → per-step logits ``[time_steps, B, n_classes]``.
    """

    def __init__(self, n_inputs: int, n_classes: int, n_frames: int = 100, dim: int = 128, depth: int = 2,
                 heads: int = 8, mlp_ratio: float = 4.0, time_steps: int = 2, pooling: str = "0011",
                 attention: str = "v1", stem_width: int | None = None, readout: str = "membrane",
                 stem_kernel: int = 3):
        super().__init__()
        if not isinstance(time_steps, int) or time_steps < 1:
            raise ValueError(f"time_steps: expected an int >= 1, got {time_steps!r}")
        if stem_width is not None and (not isinstance(stem_width, int) or stem_width < 1):
            raise ValueError(f"stem_width: expected a positive int or None, got {stem_width!r}")
        self.n_inputs, self.n_frames, self.time_steps = int(n_inputs), int(n_frames), time_steps
        self.stem = SpikingPatchSplit(n_inputs, dim, n_frames, pooling, dims=1,
                                      widths=None if stem_width is None else (stem_width,) * 3, kernel=stem_kernel)
        self.blocks = nn.ModuleList(SpikeDrivenBlock(dim, heads, mlp_ratio, attention, reference_parameters=False)
                                    for _ in range(depth))
        self.head = ClassifierHead(dim, n_classes, readout)
        _init_like_reference(self)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        if x.dim() != 3 or x.shape[2] != self.n_inputs:
            raise ValueError(f"x: expected SHD-format frames [T_f, B, {self.n_inputs}], got {tuple(x.shape)}")
        frames = x[: self.n_frames]
        if frames.shape[0] < self.n_frames:
            frames = torch.cat([frames, frames.new_zeros(self.n_frames - frames.shape[0], *frames.shape[1:])])
        tokens = frames.permute(1, 2, 0)                                     # [B, C, N]: frames become tokens
        x = self.stem(tokens.unsqueeze(0).expand(self.time_steps, *tokens.shape))
        for block in self.blocks:
            x = block(x)
        return self.head(x)


def _init_like_reference(model: nn.Module) -> None:
    """The reference initialisation: conv weights ~ truncated normal (std 0.02), conv biases 0, BatchNorm 1/0."""
    for m in model.modules():
        if isinstance(m, (nn.Conv1d, nn.Conv2d)):
            nn.init.trunc_normal_(m.weight, std=0.02)
            if m.bias is not None:
                nn.init.zeros_(m.bias)


def sdt_v1(config: str | None = None, **overrides: Any) -> SpikeDrivenTransformer:
    """A v1 model from a published configuration name (:data:`SDT_V1_CONFIGS`), with ``overrides`` applied, or
    from keyword arguments alone (``config=None``)."""
    if config is not None and config not in SDT_V1_CONFIGS:
        raise ValueError(f"config: expected one of {sorted(SDT_V1_CONFIGS)}, got {config!r}")
    kwargs = {**(SDT_V1_CONFIGS[config] if config else {}), **overrides}
    return SpikeDrivenTransformer(**kwargs)


@dataclass
class SpikeDrivenLossConfig(ModelConfig):
    """Loss keys shared by the spike-driven transformer families: cross-entropy of the time-mean logits, or TET
    (``tet: true`` with ``tet_means`` φ and ``tet_lamb`` λ; see :func:`snn.models.tet.tet_loss`), with optional label
    smoothing.

    Attributes:
        tet: train with the TET loss (per-step cross-entropy plus the MSE regulariser) instead of cross-entropy of
            the time-mean logits.
        tet_means: φ, the target of TET's MSE regulariser on the per-step outputs.
        tet_lamb: λ, the weight of TET's MSE regulariser (0: per-step cross-entropy only).
        label_smoothing: label smoothing of the cross-entropy terms (0: none).
    """

    tet: bool = False
    tet_means: float = 1.0
    tet_lamb: float = 0.0
    label_smoothing: float = 0.0


@dataclass
class SDTBodyConfig(SpikeDrivenLossConfig):
    """Keys of the v1 transformer body.

    Attributes:
        dim: channels of the tokens (embedding width D).
        depth: transformer blocks.
        heads: attention heads (``dim`` must be divisible by it; channel c belongs to head c // (dim / heads)).
        mlp_ratio: hidden width of each block's spiking MLP, as a multiple of ``dim``.
        time_steps: spiking steps the model runs per input (a static input is repeated; direct encoding).
        pooling: the stem's pooling pattern, one character per stem conv ("1": a stride-2 max-pool after it).
    """

    dim: int = 256
    depth: int = 2
    heads: int = 8
    mlp_ratio: float = 4.0
    time_steps: int = 4
    pooling: str = "0011"


@dataclass
class SDTConfig(SDTBodyConfig):
    """``model:`` section of the ``sdt_v1`` family (input channels and classes come from the data); the published
    configurations are in :data:`SDT_V1_CONFIGS`.

    Attributes:
        image_size: input height and width in pixels (divisible by the stem's downsampling).
        erode: the reference's DVS mode of the attention (CIFAR10-DVS).
        event_driven: event-driven Conv2d/Linear layers on CPU (:class:`snn.layers.EventConv2d`; same results).
    """

    name: str = "sdt_v1"
    image_size: int = 32
    erode: bool = False
    event_driven: bool = True


@dataclass
class SDTAudioConfig(SDTBodyConfig):
    """``model:`` section of the ``sdt_audio`` family: tokens are the input's time frames (``n_frames`` of them).

    Attributes:
        n_frames: frames per utterance; inputs are cut or zero-padded to it (divisible by the stem's downsampling).
        attention: ``"v1"`` (``Q ⊙ SN(Σ_tokens K ⊙ V)``) or ``"v2"`` (``SN(0.125 · Q (Kᵀ V))``).
        stem_width: channels of the stem's first three stages (``null``: the reference's ``dim/8, dim/4, dim/2``,
            a bottleneck after tens of frequency channels per frame).
        readout: ``"membrane"`` (the reference head: mean of the tokens' membranes, one LIF per channel, linear) or
            ``"spikes"`` (a LIF per token, the linear layer's output averaged over tokens).
        stem_kernel: size of the stem's stage convolutions over frames (odd; the reference's 3): its receptive
            field is ``5·stem_kernel + 10`` frames with pooling ``"0011"``.
    """

    #: keys this section no longer has, and what to write instead (the config loader's error names it)
    removed_keys: ClassVar[dict[str, str]] = {
        "train_channel_shift": "use data.augment.channel_shift (the same random shift of each training sample's "
                               "pooled channels, s in {-k..k}, zero-filled; training split only)"}

    name: str = "sdt_audio"
    n_frames: int = 100
    attention: str = "v1"
    stem_width: int | None = None
    readout: str = "membrane"
    stem_kernel: int = 3


def loss_options(m: SpikeDrivenLossConfig) -> dict[str, Any]:
    """The :meth:`SpikeDrivenClassifier.use_loss` arguments of a config section."""
    return {"tet": m.tet, "tet_means": m.tet_means, "tet_lamb": m.tet_lamb, "label_smoothing": m.label_smoothing}


@register_model("sdt_v1", SDTConfig, description="spike-driven transformer v1 (images, event frames)")
def build_sdt_v1(config: Any, n_inputs: int, n_classes: int) -> SpikeDrivenTransformer:
    """``sdt_v1`` family: ``n_inputs`` is the image's channel count."""
    m = config.model
    model = SpikeDrivenTransformer(n_inputs, n_classes, m.image_size, m.dim, m.depth, m.heads, m.mlp_ratio,
                                   m.time_steps, m.pooling, m.erode, event_driven=m.event_driven)
    model.use_loss(**loss_options(m))
    return model


@register_model("sdt_audio", SDTAudioConfig, description="spike-driven transformer over audio frames as tokens")
def build_sdt_audio(config: Any, n_inputs: int, n_classes: int) -> SpikeDrivenAudioTransformer:
    """``sdt_audio`` family: ``n_inputs`` channels per frame (SHD format)."""
    m = config.model
    model = SpikeDrivenAudioTransformer(n_inputs, n_classes, m.n_frames, m.dim, m.depth, m.heads, m.mlp_ratio,
                                        m.time_steps, m.pooling, m.attention, m.stem_width, m.readout,
                                        m.stem_kernel)
    model.use_loss(**loss_options(m))
    return model
