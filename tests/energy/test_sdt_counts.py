"""Energy counts of a 1-block spike-driven transformer against hand counts from the recorded spikes."""
from __future__ import annotations

import pytest
import torch

from snn.energy import count_operations
from snn.layers import SpikeDrivenBlock
from snn.models import SpikeDrivenTransformer

T, B, DIM, TOKENS = 2, 3, 16, 16          # 8x8 image, one stem pool -> 4x4 = 16 tokens


def _model(attention: str) -> SpikeDrivenTransformer:
    torch.manual_seed(0)
    m = SpikeDrivenTransformer(1, 4, 8, dim=DIM, depth=1, heads=2, time_steps=T, pooling="0001")
    if attention == "v2":
        m.blocks[0] = SpikeDrivenBlock(DIM, 2, attention="v2")
    g = torch.Generator().manual_seed(1)
    with torch.no_grad():   # weights that make the spikes depend on the input, so that every population fires
        for mod in m.modules():
            if isinstance(mod, torch.nn.Conv2d):
                mod.weight.copy_(torch.randn(mod.weight.shape, generator=g) * 0.5)
            elif isinstance(mod, torch.nn.BatchNorm2d):
                mod.weight.copy_(1 + torch.rand(mod.num_features, generator=g))
                mod.bias.copy_(torch.rand(mod.num_features, generator=g))
    return m.eval()


def _record(model, names):
    store = {}
    for n in names:
        model.get_submodule(n).register_forward_hook(
            lambda _m, inp, out, n=n: store.__setitem__(n, (inp[0].detach().clone(), out.detach().clone())))
    return store


def _rows(counter):
    return {name: row for name, row in counter.layers.items()}


def test_v1_attention_counts_equal_hand_counts():
    m = _model("v1")
    a = "blocks.0.attn"
    rec = _record(m, [f"{a}.input_lif", f"{a}.q_lif", f"{a}.k_lif", f"{a}.v_lif", f"{a}.attn_lif"])
    x = torch.rand(T, B, 1, 8, 8)
    rows = _rows(count_operations(m, x))
    s_in = rec[f"{a}.input_lif"][1]
    q, k, v = (rec[f"{a}.{n}_lif"][1].flatten(3) for n in "qkv")
    mask = rec[f"{a}.attn_lif"][1]                                   # [T, B, C, 1]
    assert 0 < mask.mean() < 1 and k.sum() > 0
    # Q/K/V 1x1 convs: every input spike reaches the DIM output channels at its own position
    for n in "qkv":
        assert rows[f"{a}.{n}_conv"].total("synops") == s_in.sum().item() * DIM
    # Σ_tokens K ⊙ V: one accumulate per coincident pair; the mask: one per Q spike let through
    assert rows[f"{a}.kv_sum"].total("synops") == (k * v).sum().item()
    assert rows[f"{a}.q_mask"].total("synops") == (q * mask).sum().item()
    assert rows[f"{a}.kv_sum"].total("macs_dense") == T * B * DIM * TOKENS
    # neurons: one update per neuron per step
    assert rows[f"{a}.attn_lif"].total("updates") == T * B * DIM
    assert rows[f"{a}.q_lif"].total("updates") == T * B * DIM * TOKENS
    # the papers' convention: the first (real-input) conv is MACs at every step, padded borders included
    assert rows["stem.convs.0"].total("macs") == T * B * (DIM // 8) * 1 * 9 * 64
    assert rows["stem.convs.0"].total("synops") == 0


def _conv3x3_fanout(h: int, w: int) -> torch.Tensor:
    """Brute force: how many output positions of a 3x3, padding-1 conv each input position reaches."""
    f = torch.zeros(h, w)
    for i in range(h):
        for j in range(w):
            f[i, j] = sum(1 for di in (-1, 0, 1) for dj in (-1, 0, 1) if 0 <= i + di < h and 0 <= j + dj < w)
    return f


def test_v2_attention_counts_equal_hand_counts():
    m = _model("v2")
    a = "blocks.0.attn"
    rec = _record(m, [f"{a}.input_lif", f"{a}.q_lif", f"{a}.k_lif", f"{a}.v_lif", f"{a}.attn_lif"])
    rows = _rows(count_operations(m, torch.rand(T, B, 1, 8, 8)))
    s_in = rec[f"{a}.input_lif"][1]                                  # [T, B, C, 4, 4]
    scores = rec[f"{a}.attn_lif"][0]                                 # 0.125 · Q(KᵀV), [T, B, C, N]
    q, k, v = (rec[f"{a}.{n}_lif"][1].flatten(3) for n in "qkv")
    assert scores.sum() > 0
    # the re-parameterisable Q/K/V convs count as their folded 3x3 conv: spike x (positions reached) x DIM
    fan = _conv3x3_fanout(4, 4)
    assert rows[f"{a}.q_conv.0"].total("synops") == pytest.approx((s_in * fan).sum().item() * DIM)
    # KᵀV per head: one accumulate per coincident (k, v) pair in a token; Q(KᵀV): integer counts as events, so the
    # total is the sum of the product's entries
    kh, vh, qh = (t.reshape(T, B, 2, DIM // 2, TOKENS) for t in (k, v, q))
    kv = kh @ vh.transpose(-1, -2)
    assert rows[f"{a}.matmul0"].total("synops") == kv.sum().item()
    assert rows[f"{a}.matmul1"].total("synops") == pytest.approx(scores.sum().item() / 0.125)
    assert rows[f"{a}.attn_lif"].total("updates") == T * B * DIM * TOKENS
