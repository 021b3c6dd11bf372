"""Spike-driven self-attention v1/v2 against the published formulas with SpikingJelly's LIFNode (conftest oracle)."""
from __future__ import annotations

import pytest
import torch

from snn.layers import SpikeDrivenBlock, SpikeDrivenSelfAttention, SpikeDrivenSelfAttentionV2, sdsa_v1, spike_driven_lif

SPIKE_NAMES = {"input_lif": "input", "q_lif": "q", "k_lif": "k", "v_lif": "v", "attn_lif": "attn"}


def _run_both(module, oracle_fn, x, helpers):
    stats = oracle_fn.__self__.snapshot(module)
    store, handles = helpers.record(module, SPIKE_NAMES)
    xa = x.clone().requires_grad_(True)
    ours = module(xa)
    for h in handles:
        h.remove()
    xb = x.clone().requires_grad_(True)
    theirs = oracle_fn(module, xb, stats)
    return ours, theirs, store, xa, xb


def _compare(module, oracle, oracle_fn, x, helpers, layouts):
    ours, theirs, store, xa, xb = _run_both(module, oracle_fn, x, helpers)
    for key, to_ours in layouts.items():
        torch.testing.assert_close(store[key], to_ours(oracle.spikes[key]), rtol=0, atol=0, msg=f"spikes {key}")
    torch.testing.assert_close(ours, theirs, rtol=1e-10, atol=1e-10)
    w = torch.randn(ours.shape, generator=torch.Generator().manual_seed(5), dtype=ours.dtype)
    ga = torch.autograd.grad((ours * w).sum(), [xa, *[p for p in module.parameters() if p.requires_grad]])
    gb = torch.autograd.grad((theirs * w).sum(), [xb, *[p for p in module.parameters() if p.requires_grad]])
    for a, b in zip(ga, gb):
        torch.testing.assert_close(a, b, rtol=1e-8, atol=1e-10)
    return store


def _attn_v1_layout(s):  # oracle [T, B, h, 1, d] -> ours [T, B, C, 1]
    T, B, h, _, d = s.shape
    return s.reshape(T, B, h * d, 1)


@pytest.mark.parametrize("erode", [False, True])
def test_sdsa_v1_equals_published_formula_spikes_outputs_and_gradients(sj_oracle, helpers, erode):
    torch.manual_seed(0)
    m = SpikeDrivenSelfAttention(16, heads=4, erode=erode).double()
    helpers.randomize(m)
    x = 2.0 * torch.randn(4, 3, 16, 4, 4, dtype=torch.float64)
    same = lambda s: s  # noqa: E731  input and q are [T, B, C, H, W] in both
    store = _compare(m, sj_oracle, sj_oracle.sdsa_v1, x, helpers,
                     {"input": same, "q": same, "attn": _attn_v1_layout})
    assert 0 < store["attn"].mean() < 1, "the attention neuron must both fire and stay silent for a useful test"


def test_sdsa_v2_equals_published_formula_spikes_outputs_and_gradients(sj_oracle, helpers):
    torch.manual_seed(1)
    m = SpikeDrivenSelfAttentionV2(16, heads=2).double()
    helpers.randomize(m)
    x = 2.0 * torch.randn(3, 2, 16, 4, 4, dtype=torch.float64)
    store = _compare(m, sj_oracle, sj_oracle.sdsa_v2, x, helpers,
                     {"input": lambda s: s, "q": lambda s: s, "attn": lambda s: s.reshape(*s.shape[:3], 16)})
    assert 0 < store["attn"].mean() < 1


def test_sdsa_v1_hand_example_ties_fire():
    # one step, one token pair: Σ_n K⊙V per channel = [1, 0, 2]; LIF(τ=2) charges H = X/2 = [0.5, 0, 1]:
    # threshold 0.5 fires on the exact tie (Θ(0) = 1) and on 1, not on 0; Q masks the channels.
    k = torch.tensor([[1.0, 1.0], [0.0, 1.0], [1.0, 1.0]]).view(1, 1, 3, 2)
    v = torch.tensor([[1.0, 0.0], [1.0, 0.0], [1.0, 1.0]]).view(1, 1, 3, 2)
    q = torch.tensor([[1.0, 1.0], [1.0, 1.0], [0.0, 1.0]]).view(1, 1, 3, 2)
    out = sdsa_v1(q, k, v, spike_driven_lif(0.5))
    assert out.view(3, 2).tolist() == [[1.0, 1.0], [0.0, 0.0], [0.0, 1.0]]


@pytest.mark.parametrize("make", [
    lambda: SpikeDrivenSelfAttention(16, 4), lambda: SpikeDrivenSelfAttentionV2(16, 4),
    lambda: SpikeDrivenBlock(16, 4, attention="v1"), lambda: SpikeDrivenBlock(16, 4, attention="v2"),
])
def test_gradients_reach_every_trainable_parameter(make, helpers):
    torch.manual_seed(2)
    m = make()
    helpers.randomize(m, bias_shift=0.7)   # dense enough that v2's attention neuron (needs Q(KᵀV) ≥ 8) fires
    out = m(2.0 * torch.randn(4, 4, 16, 6, 6))
    (out * torch.randn_like(out)).sum().backward()
    missing = [n for n, p in m.named_parameters() if p.requires_grad and (p.grad is None or not p.grad.abs().sum() > 0)]
    assert not missing, f"no gradient reached {missing}"


def test_v1_keeps_the_reference_unused_talking_heads_frozen():
    m = SpikeDrivenSelfAttention(64, 8)
    assert m.talking_heads.weight.numel() == 64 and not m.talking_heads.weight.requires_grad
    lean = SpikeDrivenSelfAttention(64, 8, reference_parameters=False)
    assert sum(p.numel() for p in m.parameters()) - sum(p.numel() for p in lean.parameters()) == 64


@pytest.mark.parametrize("make", [SpikeDrivenSelfAttention, SpikeDrivenSelfAttentionV2,
                                  lambda d, h: SpikeDrivenBlock(d, h)])
def test_dim_not_divisible_by_heads_fails_at_construction(make):
    with pytest.raises(ValueError, match="dim: expected a multiple of heads=8, got dim=36"):
        make(36, 8)


def test_wrong_input_shape_names_the_expected_layout():
    with pytest.raises(ValueError, match=r"x must be \[T, B, 16, H, W\], got \(2, 3, 8, 4, 4\)"):
        SpikeDrivenSelfAttention(16, 4)(torch.zeros(2, 3, 8, 4, 4))
