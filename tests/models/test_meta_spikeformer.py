"""Meta-SpikeFormer: published parameter counts, re-parameterisation, training."""
from __future__ import annotations

import pytest
import torch

from snn.layers import RepConv, reparameterize
from snn.models import MetaSpikeFormer, meta_spikeformer

# Exact counts of the reference builders metaspikformer_8_384/512/768 (BICLab/Spike-Driven-Transformer-V2,
# classification/models.py, neurons stubbed out); the paper reports 31.3 M and 55.4 M (the 80.0 % model).
COUNTS = {"8_384": (31_333_864, 31_814_864), "8_512": (55_350_248, 55_991_248), "8_768": (123_741_160, 124_702_160)}


@pytest.mark.slow
@pytest.mark.parametrize("size", sorted(COUNTS))
def test_published_parameter_counts(size):
    plain, kd = COUNTS[size]
    assert sum(p.numel() for p in meta_spikeformer(size).parameters()) == plain
    assert sum(p.numel() for p in meta_spikeformer(size, kd=True).parameters()) == kd


def test_paper_sizes_round_to_the_published_millions():
    assert round(COUNTS["8_384"][0] / 1e6, 1) == 31.3 and round(COUNTS["8_512"][0] / 1e6, 1) == 55.4


def _tiny(**kw) -> MetaSpikeFormer:
    return MetaSpikeFormer(1, 4, 16, widths=(8, 16, 16, 16), depths=(1, 1), heads=2, time_steps=2, **kw)


def test_reparameterized_model_gives_the_same_outputs():
    torch.manual_seed(0)
    m = _tiny().double()
    with torch.no_grad():   # put non-trivial statistics in every BatchNorm
        m.train()
        for _ in range(3):
            m(torch.rand(8, 1, 16, 16, dtype=torch.float64) * 3)
    m.eval()
    x = torch.rand(4, 1, 16, 16, dtype=torch.float64) * 3
    before = m(x)
    n_rep = sum(isinstance(s, RepConv) for s in m.modules())
    reparameterize(m)
    assert n_rep == 8 and not any(isinstance(s, RepConv) for s in m.modules())
    torch.testing.assert_close(m(x), before, rtol=1e-9, atol=1e-9)


def test_gradients_reach_the_conv_stages_and_head():
    torch.manual_seed(1)
    m = _tiny()
    out = m(torch.rand(6, 1, 16, 16))
    torch.nn.functional.cross_entropy(out.mean(0), torch.arange(6) % 4).backward()
    for name in ("stages.0.conv.weight", "stages.1.conv.dwconv.weight", "stages.5.conv2.weight", "head.weight"):
        assert m.get_parameter(name).grad.abs().sum() > 0, name


def test_bad_arguments_fail_at_construction():
    with pytest.raises(ValueError, match="image_size: every side must be divisible by the network's downsampling 16"):
        MetaSpikeFormer(image_size=200)
    with pytest.raises(ValueError, match="size: expected one of"):
        meta_spikeformer("8_256")
    with pytest.raises(ValueError, match="dim: expected a multiple of heads=8, got dim=36"):
        MetaSpikeFormer(1, 4, 16, widths=(8, 16, 36, 40))


@pytest.mark.slow
def test_tiny_model_with_enough_channels_per_head_overfits_a_small_batch():
    # Faithful to the reference (scale 0.125, attention threshold 0.5, τ = 2, Linear init std 0.02) and small: one
    # head of d = 32 channels on 2×2 tokens, T = 4. The attention neuron needs 0.125·Q(KᵀV) to reach 1 at the first
    # step (8 coincidences): with 2 heads of 8 channels at 16 px (d·N = 8) it never fires and the BatchNorm behind
    # it normalises a constant (gradients ~1e7), so that model does not learn; here d·N = 128 and T = 4 let it fire.
    torch.manual_seed(1)
    m = MetaSpikeFormer(1, 4, 32, widths=(8, 16, 32, 32), depths=(1, 1), heads=1, time_steps=4)
    rates: dict[str, float] = {}
    for name, mod in m.named_modules():
        if name.endswith("attn.attn_lif"):
            mod.register_forward_hook(lambda _m, _i, out, name=name: rates.__setitem__(name, out.mean().item()))
    x, y = torch.rand(8, 1, 32, 32), torch.arange(8) % 4
    opt = torch.optim.Adam(m.parameters(), lr=1e-2)
    first = None
    for _ in range(150):
        loss = torch.nn.functional.cross_entropy(m(x).mean(0), y)
        first = loss.item() if first is None else first
        opt.zero_grad()
        loss.backward()
        assert all(torch.isfinite(p.grad).all() for p in m.parameters() if p.grad is not None)
        opt.step()
    with torch.no_grad():   # training mode: BatchNorm on the batch's statistics, as during the steps
        accuracy = (m(x).mean(0).argmax(1) == y).float().mean().item()
    assert len(rates) == 2 and all(r > 0 for r in rates.values()), rates      # both attention neurons fire
    assert accuracy == 1.0 and loss.item() < 0.5 * first


def test_event_driven_model_has_the_dense_models_outputs_and_gradients(run_dense_and_event):
    # event-driven by default; forced onto the event path (threshold 1) it must give the dense model's logits and
    # parameter gradients (float64: no spike flips on summation order)
    from snn.layers import EventConv2d, event_driven

    torch.manual_seed(0)
    kw = dict(widths=(16, 32, 32, 32), depths=(1, 1), heads=2, time_steps=2)
    dense = MetaSpikeFormer(2, 3, 32, event_driven=False, **kw).double()
    ours = MetaSpikeFormer(2, 3, 32, **kw).double()
    assert not any(isinstance(m, EventConv2d) for m in dense.modules())
    assert any(type(m) is EventConv2d for m in ours.modules())
    ours.load_state_dict(dense.state_dict())
    event_driven(ours, threshold=1.0)
    g = torch.Generator().manual_seed(1)
    x = torch.poisson(torch.full((2, 3, 2, 32, 32), 0.3, dtype=torch.float64), generator=g)
    y = torch.tensor([0, 1, 2])
    run_dense_and_event(dense, ours, x, y)
    # a conv bias right before a BatchNorm has gradient 0 up to cancellation (~1e-9 here in both models): absolute
    # tolerance relative to the largest gradient of the model
    scale = max(float(p.grad.abs().max()) for p in dense.parameters() if p.grad is not None)
    for (name, p), q in zip(dense.named_parameters(), ours.parameters()):
        if p.grad is not None:
            torch.testing.assert_close(q.grad, p.grad, rtol=1e-9, atol=1e-12 * scale, msg=name)
