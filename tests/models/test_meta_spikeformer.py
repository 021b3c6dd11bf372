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
