"""An independent oracle for the spike-driven transformer layers: the published formulas written out directly, in
the reference code's own tensor layout (heads as ``[T, B, h, N, d]``), with SpikingJelly's ``LIFNode`` as every
neuron, reading the weights of our modules."""
from __future__ import annotations

import pytest
import torch
import torch.nn.functional as F


class SpikingJellyOracle:
    def __init__(self):
        from spikingjelly.activation_based import neuron, surrogate

        self._neuron, self._surrogate = neuron, surrogate
        self.spikes: dict[str, torch.Tensor] = {}

    def lif(self, x: torch.Tensor, v_threshold: float = 1.0, name: str | None = None) -> torch.Tensor:
        node = self._neuron.LIFNode(tau=2.0, v_threshold=v_threshold, v_reset=0.0, detach_reset=True, step_mode="m",
                                    surrogate_function=self._surrogate.Sigmoid(alpha=4.0))
        node.backend = "torch"
        s = node(x)
        if name is not None:
            self.spikes[name] = s
        return s

    @staticmethod
    def snapshot(module: torch.nn.Module) -> dict:
        """Copies of every BatchNorm's running statistics, taken before our forward updates them."""
        return {id(m): (m.running_mean.clone(), m.running_var.clone()) for m in module.modules()
                if isinstance(m, torch.nn.modules.batchnorm._BatchNorm)}

    @staticmethod
    def bn(x: torch.Tensor, bn, stats: dict) -> torch.Tensor:
        """BatchNorm on frames with copies of the running statistics (ours are updated by our own forward)."""
        mean, var = stats[id(bn)]
        return F.batch_norm(x, mean, var, bn.weight, bn.bias, bn.training, bn.momentum, bn.eps)

    def conv_bn(self, x5, conv, bn, stats, **kw):
        T, B = x5.shape[:2]
        y = F.conv2d(x5.flatten(0, 1), conv.weight, conv.bias, stride=conv.stride, padding=conv.padding,
                     groups=conv.groups)
        y = self.bn(y, bn, stats)
        return y.reshape(T, B, *y.shape[1:])

    def rep_conv(self, f, rep, stats):
        """RepConv on frames ``[N, C, H, W]``: 1x1 conv, BN, border = BN(0) from the (updated) running stats,
        depth-wise 3x3 without padding, point-wise 1x1, BN."""
        y = self.bn(F.conv2d(f, rep.conv1x1.weight), rep.bn1, stats)
        mean, var = stats[id(rep.bn1)]
        pad_value = rep.bn1.bias.detach() - mean * rep.bn1.weight.detach() / torch.sqrt(var + rep.bn1.eps)
        out = F.pad(y, [1, 1, 1, 1])
        pv = pad_value.view(1, -1, 1, 1)
        out[:, :, 0:1, :] = pv
        out[:, :, -1:, :] = pv
        out[:, :, :, 0:1] = pv
        out[:, :, :, -1:] = pv
        out = F.conv2d(out, rep.dwconv.weight, groups=rep.dwconv.groups)
        return self.bn(F.conv2d(out, rep.pwconv.weight), rep.bn2, stats)

    @staticmethod
    def heads(x5, h):
        T, B, C, H, W = x5.shape
        return x5.flatten(3).transpose(-1, -2).reshape(T, B, H * W, h, C // h).permute(0, 1, 3, 2, 4)

    @staticmethod
    def unheads(x, shape):
        T, B, C, H, W = shape
        return x.transpose(3, 4).reshape(T, B, C, H, W)

    def erode(self, x):
        # the reference's MaxPool3d((1,3,3)) on a 5-D tensor: pools the last two dimensions
        return F.max_pool3d(x, (1, 3, 3), 1, (0, 1, 1))

    def sdsa_v1(self, m, x, stats):
        shape = x.shape
        s = self.lif(x, name="input")
        q = self.lif(self.conv_bn(s, m.q_conv, m.q_bn, stats), name="q")
        k = self.lif(self.conv_bn(s, m.k_conv, m.k_bn, stats), name="k")
        v = self.lif(self.conv_bn(s, m.v_conv, m.v_bn, stats), name="v")
        if m.erode:
            k, v = self.erode(k), self.erode(v)
        q, k, v = (self.heads(t, m.heads) for t in (q, k, v))
        kv = k * v
        if m.erode:
            kv = self.erode(kv)
        kv = self.lif(kv.sum(dim=-2, keepdim=True), v_threshold=0.5, name="attn")
        a = q * kv
        if m.erode:
            a = self.erode(a)
        return self.conv_bn(self.unheads(a, shape), m.proj_conv, m.proj_bn, stats)

    def sdsa_v2(self, m, x, stats):
        shape = T, B, C, H, W = x.shape
        s = self.lif(x, name="input").flatten(0, 1)
        def branch(seq):
            return self.bn(self.rep_conv(s, seq[0], stats), seq[1], stats).reshape(shape)
        q = self.heads(self.lif(branch(m.q_conv), name="q"), m.heads)
        k = self.heads(self.lif(branch(m.k_conv), name="k"), m.heads)
        v = self.heads(self.lif(branch(m.v_conv), name="v"), m.heads)
        a = (q @ (k.transpose(-2, -1) @ v)) * 0.125
        a = self.lif(a.transpose(3, 4).reshape(T, B, C, H * W), v_threshold=0.5, name="attn").reshape(shape)
        f = a.flatten(0, 1)
        return self.bn(self.rep_conv(f, m.proj_conv[0], stats), m.proj_conv[1], stats).reshape(shape)

    def mlp(self, m, x, stats):
        u = self.conv_bn(self.lif(x, name="fc1"), m.fc1_conv, m.fc1_bn, stats)
        if m.hidden_shortcut:
            u = u + x
        return self.conv_bn(self.lif(u, name="fc2"), m.fc2_conv, m.fc2_bn, stats)

    def patch_split(self, m, x, stats):
        """SPS as the reference writes it: stages 0-2 conv-BN-LIF-[pool]; stage 3 conv-BN-[pool] = u;
        out = u + BN(RPE conv(LIF(u)))."""
        T, B = x.shape[:2]
        conv = F.conv2d if m.dims == 2 else F.conv1d
        pool = (lambda f: F.max_pool2d(f, 3, 2, 1)) if m.dims == 2 else (lambda f: F.max_pool1d(f, 3, 2, 1))
        f = x.flatten(0, 1)
        for i in range(3):
            f = self.bn(conv(f, m.convs[i].weight, padding=m.convs[i].weight.shape[-1] // 2), m.bns[i], stats)
            f = self.lif(f.reshape(T, B, *f.shape[1:]), name=f"stage{i}").flatten(0, 1)
            if m.pooling[i] == "1":
                f = pool(f)
        u = self.bn(conv(f, m.convs[3].weight, padding=m.convs[3].weight.shape[-1] // 2), m.bns[3], stats)
        if m.pooling[3] == "1":
            u = pool(u)
        s = self.lif(u.reshape(T, B, *u.shape[1:]), name="stage3").flatten(0, 1)
        out = u + self.bn(conv(s, m.rpe_conv.weight, padding=1), m.rpe_bn, stats)
        return out.reshape(T, B, *out.shape[1:])

    def meta_conv_block(self, m, x, stats):
        """Meta-SpikeFormer conv block: x + SepConv(x), then + BN(conv3x3(LIF(BN(conv3x3(LIF(.))))))."""
        T, B = x.shape[:2]
        sc = m.conv
        h = self.lif(self.conv_bn(self.lif(x), sc.pwconv1, sc.bn1, stats))
        f = F.conv2d(h.flatten(0, 1), sc.dwconv.weight, padding=sc.dwconv.padding, groups=sc.dwconv.groups)
        f = self.bn(F.conv2d(f, sc.pwconv2.weight), sc.bn2, stats)
        x = x + f.reshape(x.shape)
        h = self.lif(self.conv_bn(self.lif(x), m.conv1, m.bn1, stats))
        return x + self.conv_bn(h, m.conv2, m.bn2, stats)

    def block(self, m, x, stats):
        attn = self.sdsa_v1 if m.attn.__class__.__name__ == "SpikeDrivenSelfAttention" else self.sdsa_v2
        x = x + attn(m.attn, x, stats)
        return x + self.mlp(m.mlp, x, stats)


@pytest.fixture
def sj_oracle():
    pytest.importorskip("spikingjelly.activation_based.neuron")
    return SpikingJellyOracle()


def randomize_batchnorms(module: torch.nn.Module, seed: int = 0, bias_shift: float = 0.0) -> None:
    """Spread BatchNorm affine parameters and running statistics so that neurons fire at varied rates."""
    g = torch.Generator().manual_seed(seed)
    for m in module.modules():
        if isinstance(m, torch.nn.modules.batchnorm._BatchNorm):
            with torch.no_grad():
                n = m.num_features
                m.weight.copy_(1.0 + 2.0 * torch.rand(n, generator=g))
                m.bias.copy_(torch.rand(n, generator=g) - 0.3 + bias_shift)
                m.running_mean.copy_(0.2 * torch.randn(n, generator=g))
                m.running_var.copy_(0.5 + torch.rand(n, generator=g))


def record_spikes(module: torch.nn.Module, names: dict[str, str]) -> tuple[dict, list]:
    """Forward hooks storing the output of the submodules ``names`` (attribute path → key)."""
    store, handles = {}, []
    for path, key in names.items():
        sub = module.get_submodule(path)
        handles.append(sub.register_forward_hook(lambda _m, _i, out, key=key: store.__setitem__(key, out)))
    return store, handles


@pytest.fixture
def helpers():
    class H:
        randomize = staticmethod(randomize_batchnorms)
        record = staticmethod(record_spikes)
    return H
