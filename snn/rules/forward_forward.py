r"""Spiking forward-forward (after Hinton 2022): layer-local losses on positive and negative passes, no gradient
across layers, inference by goodness over labels.

The label is embedded in the input: channels ``0 … K−1`` of ``x [T, B, C]`` are replaced by the one-hot label
times ``label_amplitude`` at every step (leave ``K`` silent channels for it, e.g. ``Digits8x8Spikes(label_channels=K)``).
A positive sample carries its true label, a negative one a label drawn uniformly among the wrong ones; both run
in one forward of ``2B`` samples.

For every trained layer ``l`` (a Linear/Conv2d synapse and the spiking neuron after it) the goodness of a sample is

.. math::

    g_l = \frac{1}{N_l} \sum_j \Big(\frac{1}{T} \sum_t s_{l,j}[t]\Big)^2 \;\; (\text{goodness}=\text{"rate"}), \qquad
    g_l = \frac{1}{N_l} \sum_j \frac{1}{T} \sum_t \max(v_{l,j}[t], 0)^2 \;\; (\text{"membrane"})

(``s`` the spikes, ``v`` the membrane after each step, as the neuron's ``run(record=True)`` reports it) and its loss, summed over layers and averaged over samples,

.. math::

    L_l = \mathrm{softplus}\big(\alpha(\theta - g^{pos}_l)\big) + \mathrm{softplus}\big(\alpha(g^{neg}_l - \theta)\big)

with sharpness ``α`` (goodness values of spike rates are small, ``α`` scales them into softplus's curved range).
The input of every trained synapse is detached (a forward pre-hook), so each layer's weights receive the gradient
of their own loss only (surrogate gradient through their own neuron over time), never one from a later layer.
Layer-collaborative variant (``collaborative=True``): layer ``l``'s loss uses
``γ_l = g_l + Σ_{m≠l} sg(g_m)`` (``sg``: stop-gradient) against ``L · θ``.

Inference: for each label ``k`` the sample is run with ``k`` embedded; the class score is the goodness summed over
layers, ``score_k = Σ_l g_l(x, k)``, and the prediction its argmax (the scores reported as ``scores``; the
evaluation ``loss`` is the cross-entropy of ``α · score``). The ``K`` passes are ``K`` calls of the model on the
whole batch (:meth:`ForwardForward.inference`), so the energy counter charges each sample all ``K`` passes.
"""
from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from typing import Any, Literal

import torch
import torch.nn.functional as F
from torch import nn

from snn.models.protocol import ParamGroup
from snn.rules.base import LearningRule, StepContext, forward, unwrap
from snn.rules.local import hook_spiking_neurons, resolve_layers
from snn.rules.registry import RuleConfig, register_rule

__all__ = ["ForwardForward", "ForwardForwardConfig", "embed_label"]


def embed_label(x: torch.Tensor, labels: torch.Tensor, n_classes: int, amplitude: float = 1.0) -> torch.Tensor:
    """``x [T, B, C, ...]`` with channels ``0 … K−1`` set to ``amplitude × one_hot(labels)`` at every step."""
    if x.shape[2] < n_classes:
        raise ValueError(f"forward-forward: the input has {x.shape[2]} channels, fewer than the {n_classes} label "
                         "slots it needs")
    x = x.clone()
    onehot = F.one_hot(labels, n_classes).to(x.dtype) * amplitude  # [B, K]
    x[:, :, :n_classes] = onehot.view(1, *onehot.shape, *([1] * (x.dim() - 3)))
    return x


class ForwardForward(LearningRule):
    """Spiking forward-forward (equations in the module docstring).

    Args:
        layers: synapses to train (names, comma-separated string or list; ``"auto"``: every Linear/Conv2d but the
            model's ``output`` readout, which forward-forward does not use).
        n_classes: classes ``K`` (``None``: the model's ``n_classes``).
        theta: goodness threshold ``θ``.
        sharpness: ``α`` in the loss.
        goodness: ``"rate"`` (spike counts) or ``"membrane"``.
        collaborative: layer-collaborative losses.
        label_amplitude: value written into the label channels.
        lr: learning rate of the trained layers (group ``local``; Adam unless ``optimizer`` says otherwise).
        optimizer: optimiser of the group.
    """

    name = "forward_forward"

    def __init__(self, layers: str | Sequence[str] | None = "auto", n_classes: int | None = None,
                 theta: float = 0.1, sharpness: float = 20.0, goodness: str = "rate", collaborative: bool = False,
                 label_amplitude: float = 1.0, lr: float = 2e-3, optimizer: str = "adam") -> None:
        if goodness not in ("rate", "membrane"):
            raise ValueError(f"goodness must be 'rate' or 'membrane', got {goodness!r}")
        if not sharpness > 0:
            raise ValueError(f"sharpness must be > 0, got {sharpness!r}")
        self.layers, self.n_classes = layers, n_classes
        self.theta, self.sharpness, self.goodness = float(theta), float(sharpness), goodness
        self.collaborative, self.label_amplitude = bool(collaborative), float(label_amplitude)
        self.lr, self.optimizer = float(lr), optimizer
        self.synapses: dict[str, nn.Module] = {}
        self._handles: list = []
        self._order: dict[int, int] = {}
        self._pending: list[int] = []
        self._goodness: dict[int, torch.Tensor] = {}

    # ------------------------------------------------------------------ attach
    def attach(self, model: nn.Module) -> None:
        super().attach(model)
        self.detach()
        model = unwrap(model)
        self.synapses = resolve_layers(model, self.layers, "ForwardForward")
        if self.n_classes is None:
            self.n_classes = getattr(model, "n_classes", None)
            if self.n_classes is None:
                raise ValueError("ForwardForward: n_classes is required for a model without an n_classes attribute")
        for i, syn in enumerate(self.synapses.values()):
            self._order[id(syn)] = i
            self._handles.append(syn.register_forward_pre_hook(self._detach_input))
        self._handles += hook_spiking_neurons(model, self._neuron_hook)

    def detach(self) -> None:
        for h in self._handles:
            h.remove()
        self._handles, self._order, self._pending, self._goodness = [], {}, [], {}

    def _detach_input(self, module: nn.Module, args: tuple):
        self._pending.append(self._order[id(module)])
        return (args[0].detach(),) + tuple(args[1:])

    def _neuron_hook(self, module: nn.Module, args: tuple, output: Any) -> None:
        if not self._pending:
            return
        s = output[0] if isinstance(output, tuple) else output
        T = s.shape[0]
        if self.goodness == "rate":
            r = s.reshape(T, s.shape[1], -1).float().mean(0)  # [B, N] rates
            g = (r ** 2).mean(1)
        else:
            v = module.run(args[0], record=True).recorded["v"]
            g = (v.clamp_min(0) ** 2).reshape(T, v.shape[1], -1).float().mean((0, 2))
        for i in self._pending:
            self._goodness[i] = g
        self._pending = []

    def parameter_groups(self, model: nn.Module) -> dict[str, ParamGroup]:
        """``local``: the parameters of the trained synapses (weights and biases)."""
        params = [p for syn in self.synapses.values() for p in syn.parameters() if p.requires_grad]
        return {"local": ParamGroup(params, optimizer=self.optimizer, lr=self.lr, weight_decay=0.0, scheduler="none")}

    # ------------------------------------------------------------------ passes
    def layer_goodness(self, model: nn.Module, x: torch.Tensor, labels: torch.Tensor,
                       lengths: torch.Tensor | None) -> torch.Tensor:
        """Goodness ``[L, B]`` of every trained layer with ``labels`` embedded in ``x``."""
        self._goodness, self._pending = {}, []
        forward(model, embed_label(x, labels, self.n_classes, self.label_amplitude), lengths)
        missing = [name for i, name in enumerate(self.synapses) if i not in self._goodness]
        if missing:
            raise RuntimeError(f"ForwardForward: no spiking neuron ran after synapse(s) {missing}")
        g = torch.stack([self._goodness[i] for i in range(len(self.synapses))])
        self._goodness = {}
        return g

    def label_scores(self, model: nn.Module, x: torch.Tensor, lengths: torch.Tensor | None,
                     one_call: bool = False) -> torch.Tensor:
        """``[B, K]``: goodness summed over layers with each label embedded: one call of the model per label, or
        with ``one_call`` a single call on the ``K·B`` samples (the same scores, ~1.4× less CPU time for the logged
        training accuracy; the energy counter needs one call per pass)."""
        B, K = x.shape[1], self.n_classes
        if one_call:
            labels = torch.arange(K, device=x.device).repeat(B)
            ls = None if lengths is None else lengths.repeat_interleave(K)
            return self.layer_goodness(model, x.repeat_interleave(K, dim=1), labels, ls).sum(0).view(B, K)
        return torch.stack([self.layer_goodness(model, x, torch.full((B,), k, dtype=torch.long, device=x.device),
                                                lengths).sum(0) for k in range(K)], 1)

    def inference(self, model: nn.Module, x: torch.Tensor, lengths: torch.Tensor | None) -> torch.Tensor:
        """The ``K`` passes that classify ``x``: :meth:`label_scores`."""
        return self.label_scores(model, x, lengths)

    def loss(self, g_pos: torch.Tensor, g_neg: torch.Tensor) -> torch.Tensor:
        """The summed per-layer losses (module docstring) from goodness ``[L, B]`` of both passes."""
        theta = self.theta
        if self.collaborative:
            L = g_pos.shape[0]
            g_pos = g_pos + (g_pos.sum(0, keepdim=True) - g_pos).detach()
            g_neg = g_neg + (g_neg.sum(0, keepdim=True) - g_neg).detach()
            theta = theta * L
        a = self.sharpness
        return (F.softplus(a * (theta - g_pos)) + F.softplus(a * (g_neg - theta))).mean(1).sum()

    def training_step(self, model: nn.Module, batch: tuple, ctx: StepContext) -> dict[str, Any]:
        x, labels, lengths = batch
        B, K = x.shape[1], self.n_classes
        wrong = (labels + torch.randint(1, K, labels.shape, device=labels.device)) % K
        both = torch.cat([x, x], 1)
        ls = None if lengths is None else torch.cat([lengths, lengths])
        with ctx.autocast():
            g = self.layer_goodness(model, both, torch.cat([labels, wrong]), ls)
        loss = self.loss(g[:, :B].float(), g[:, B:].float())
        ctx.backward(loss)
        with torch.no_grad(), ctx.autocast():
            scores = self.label_scores(model, x, lengths, one_call=True).float()
        return {"loss": loss.detach(), "scores": scores}

    def evaluation_step(self, model: nn.Module, batch: tuple, ctx: StepContext) -> dict[str, Any]:
        x, labels, lengths = batch
        with ctx.autocast():
            scores = self.label_scores(model, x, lengths).float()
        return {"loss": F.cross_entropy(self.sharpness * scores, labels), "scores": scores}

    def __repr__(self) -> str:
        return (f"ForwardForward(layers={self.layers!r}, theta={self.theta:g}, sharpness={self.sharpness:g}, "
                f"goodness={self.goodness!r}, collaborative={self.collaborative})")


@dataclass
class ForwardForwardConfig(RuleConfig):
    """``training.rule: {name: forward_forward, ...}`` (:class:`ForwardForward`).

    Attributes:
        layers: synapses to train (names, comma-separated, or ``"auto"``: all but the ``output`` readout).
        theta: goodness threshold.
        sharpness: scale of the goodness inside softplus.
        goodness: ``"rate"`` (spike counts) or ``"membrane"``.
        collaborative: layer-collaborative losses.
        label_amplitude: value of the embedded one-hot label.
        lr: learning rate of the trained layers.
        optimizer: their optimiser.
    """

    name: str = "forward_forward"
    layers: str = "auto"
    theta: float = 0.1
    sharpness: float = 20.0
    goodness: Literal["rate", "membrane"] = "rate"
    collaborative: bool = False
    label_amplitude: float = 1.0
    lr: float = 2e-3
    optimizer: Literal["adam", "adamw", "adamax", "sgd"] = "adam"

    def check(self) -> None:
        for key in ("sharpness", "lr"):
            if not getattr(self, key) > 0:
                raise ValueError(f"{key}: expected a value > 0, got {getattr(self, key)!r}")


register_rule("forward_forward", ForwardForwardConfig, ForwardForward)
