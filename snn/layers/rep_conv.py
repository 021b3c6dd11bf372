r"""Re-parameterisable 3×3 convolution of Meta-SpikeFormer (Yao et al., ICLR 2024) and its folding.

Training form (all linear, no neuron inside), on frames ``[N, C_in, H, W]``:

.. math::

    y_1 &= \mathrm{BN}_1(W_{1\times1} * x), \text{ padded by one pixel with } \mathrm{BN}_1(0) = \beta_1 - \mu_1 \gamma_1/\sqrt{\sigma_1^2+\epsilon}\\
    y   &= \mathrm{BN}_2(W_{pw} * (W_{dw} \circledast y_1))

with ``W_dw`` a depth-wise 3×3 kernel without padding (the padded border makes the map the same size) and
``W_pw`` a point-wise ``C_in → C_out`` kernel. Because the border holds ``BN_1`` of a zero input, the whole map
equals one 3×3 convolution of the zero-padded ``x`` (in evaluation mode, where BatchNorm is affine):

.. math::

    K[o, i, u, v] &= a_2[o] \sum_c W_{pw}[o, c]\, W_{dw}[c, u, v]\, a_1[c]\, W_{1\times1}[c, i] \\
    b[o] &= a_2[o] \sum_c W_{pw}[o, c]\, b_1[c] \sum_{u,v} W_{dw}[c, u, v] + b_2[o]

with ``a = γ/√(σ²+ε)``, ``b = β − μ a`` per BatchNorm; BatchNorms that follow (the attention's extra one) fold the
same way. :func:`reparameterize` swaps every such block of a model for the folded ``nn.Conv2d``.
"""
from __future__ import annotations

import torch
from torch import nn

__all__ = ["RepConv", "fold_rep_conv", "reparameterize"]


def _bn_affine(bn: nn.BatchNorm2d) -> tuple[torch.Tensor, torch.Tensor]:
    """Evaluation-mode BatchNorm as ``a·x + b`` per channel."""
    scale = torch.rsqrt(bn.running_var + bn.eps)
    a = bn.weight * scale if bn.affine else scale
    b = (bn.bias if bn.affine else 0.0) - bn.running_mean * a
    return a, b


class RepConv(nn.Module):
    """Meta-SpikeFormer's re-parameterisable conv (see the module docstring): 1×1 conv, BatchNorm whose value
    pads the border, depth-wise 3×3, point-wise 1×1, BatchNorm. No bias anywhere (the BatchNorms carry it).

    Args:
        in_channels: ``C_in``.
        out_channels: ``C_out``.

    Shape: ``[N, C_in, H, W]`` → ``[N, C_out, H, W]``.
    """

    def __init__(self, in_channels: int, out_channels: int):
        super().__init__()
        self.in_channels, self.out_channels = int(in_channels), int(out_channels)
        self.conv1x1 = nn.Conv2d(in_channels, in_channels, 1, bias=False)
        self.bn1 = nn.BatchNorm2d(in_channels)
        self.dwconv = nn.Conv2d(in_channels, in_channels, 3, padding=0, groups=in_channels, bias=False)
        self.pwconv = nn.Conv2d(in_channels, out_channels, 1, bias=False)
        self.bn2 = nn.BatchNorm2d(out_channels)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        y = self.bn1(self.conv1x1(x))
        # The border takes BN_1 of a zero input (running statistics, also in training, as in the reference), so
        # that the block is one 3x3 conv over a zero-padded input and can be folded.
        n, c, h, w = y.shape
        padded = _bn_affine(self.bn1)[1].detach().to(y.dtype).view(1, c, 1, 1).expand(n, c, h + 2, w + 2).clone()
        padded[:, :, 1:-1, 1:-1] = y
        return self.bn2(self.pwconv(self.dwconv(padded)))

    def count_operations(self, inputs: tuple, output: torch.Tensor, ctx) -> list:
        """Energy: the block is counted as what runs at inference, its folded 3×3 convolution (padding 1): each input
        event × the positions and output channels it reaches; MACs for real-valued input."""
        from snn.energy.dispatch import conv_fanout
        from snn.energy.protocol import OpCount

        x = inputs[0]
        B = ctx.batch_size
        kernel_shape = torch.Size((self.out_channels, self.in_channels, 3, 3))
        fanout = conv_fanout(tuple(x.shape[1:]), torch.empty(kernel_shape, device="meta"), (1, 1), (1, 1), (1, 1),
                             False, (0, 0), 1, x.device)
        return [OpCount(x=x.reshape(x.shape[0] // B, B, *x.shape[1:]), fanout=fanout, kind="conv2d",
                        dense_macs=float(fanout.sum()), params=kernel_shape.numel() + self.out_channels,
                        output_elements=float(output[0].numel()))]

    def extra_repr(self) -> str:
        return f"{self.in_channels}, {self.out_channels}"


def fold_rep_conv(block: nn.Module) -> nn.Conv2d:
    """The single 3×3 ``nn.Conv2d`` (with bias, padding 1) equal to ``block`` in evaluation mode.

    ``block`` is a :class:`RepConv` or an ``nn.Sequential`` of a :class:`RepConv` followed by ``nn.BatchNorm2d``
    layers (the attention's Q/K/V/projection form).
    """
    parts = list(block) if isinstance(block, nn.Sequential) else [block]
    if not parts or not isinstance(parts[0], RepConv) or not all(isinstance(p, nn.BatchNorm2d) for p in parts[1:]):
        raise TypeError(f"block: expected a RepConv optionally followed by BatchNorm2d layers, got {block}")
    rep = parts[0]
    with torch.no_grad():
        a1, b1 = _bn_affine(rep.bn1)
        w1 = rep.conv1x1.weight[:, :, 0, 0]                       # [C, C_in]
        wd = rep.dwconv.weight[:, 0]                              # [C, 3, 3]
        wp = rep.pwconv.weight[:, :, 0, 0]                        # [C_out, C]
        kernel = torch.einsum("oc,cuv,c,ci->oiuv", wp, wd, a1, w1)
        bias = wp @ (b1 * wd.sum(dim=(1, 2)))
        for bn in [rep.bn2, *parts[1:]]:
            a, b = _bn_affine(bn)
            kernel = kernel * a.view(-1, 1, 1, 1)
            bias = bias * a + b
        conv = nn.Conv2d(rep.in_channels, rep.out_channels, 3, padding=1, bias=True)
        conv = conv.to(device=kernel.device, dtype=kernel.dtype)
        conv.weight.copy_(kernel)
        conv.bias.copy_(bias)
    return conv


def _is_rep_block(module: nn.Module) -> bool:
    if isinstance(module, RepConv):
        return True
    return (isinstance(module, nn.Sequential) and len(module) > 0 and isinstance(module[0], RepConv)
            and all(isinstance(p, nn.BatchNorm2d) for p in list(module)[1:]))


def reparameterize(model: nn.Module) -> nn.Module:
    """Replace, in place, every :class:`RepConv` block of ``model`` (with the BatchNorms that directly follow it
    in an ``nn.Sequential``) by its folded 3×3 convolution; returns ``model`` in evaluation mode."""
    model.eval()
    for name, child in list(model.named_children()):
        if _is_rep_block(child):
            setattr(model, name, fold_rep_conv(child))
        else:
            reparameterize(child)
    return model
