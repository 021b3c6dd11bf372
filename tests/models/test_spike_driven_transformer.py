"""Spike-driven transformer v1 and its audio variant: published parameter counts, input forms, training."""
from __future__ import annotations

import pytest
import torch

from snn.models import SDT_V1_CONFIGS, SpikeDrivenAudioTransformer, SpikeDrivenTransformer, sdt_v1, tet_loss

# Exact counts: the reference code (BICLab/Spike-Driven-Transformer, model/spikeformer.py with module/) instantiated
# with each published conf/ file and its neurons stubbed out (they have no parameters); the paper's tables round them
# to 10.28 M (CIFAR, 2-512; the CIFAR-100 head), 2.57 M (DVS, 2-256) and 16.81 / 23.37 / 29.68 / 36.01 / 66.34 M
# (ImageNet 8-384 / 6-512 / 8-512 / 10-512 / 8-768).
SMALL = {"cifar10": 10_233_546, "cifar100": 10_279_716, "cifar10_dvs": 2_566_794, "dvs_gesture": 2_567_051}
IMAGENET = {"imagenet_8_384": 16_816_536, "imagenet_6_512": 23_373_736, "imagenet_8_512": 29_689_896,
            "imagenet_10_512": 36_006_056, "imagenet_8_768": 66_339_144}
PAPER_M = {"cifar100": 10.28, "cifar10_dvs": 2.57, "dvs_gesture": 2.57, "imagenet_8_384": 16.81,
           "imagenet_6_512": 23.37, "imagenet_8_512": 29.68, "imagenet_10_512": 36.01, "imagenet_8_768": 66.34}


def _count(model: torch.nn.Module) -> int:
    return sum(p.numel() for p in model.parameters())


@pytest.mark.parametrize("name", sorted(SMALL))
def test_published_cifar_and_dvs_parameter_counts(name):
    n = _count(sdt_v1(name))
    assert n == SMALL[name]
    if name in PAPER_M:
        assert abs(n / 1e6 - PAPER_M[name]) <= 0.011


@pytest.mark.slow
@pytest.mark.parametrize("name", sorted(IMAGENET))
def test_published_imagenet_parameter_counts(name):
    n = _count(sdt_v1(name))
    assert n == IMAGENET[name] and abs(n / 1e6 - PAPER_M[name]) <= 0.011   # the paper rounds either way


def test_published_configs_cover_the_reference_conf_files():
    assert SDT_V1_CONFIGS["cifar10_dvs"]["erode"] and SDT_V1_CONFIGS["cifar10_dvs"]["time_steps"] == 10
    assert SDT_V1_CONFIGS["dvs_gesture"]["pooling"] == "0111" and SDT_V1_CONFIGS["dvs_gesture"]["time_steps"] == 16
    assert set(SMALL) | set(IMAGENET) == set(SDT_V1_CONFIGS)


def _tiny(**kw) -> SpikeDrivenTransformer:
    return SpikeDrivenTransformer(1, 4, 8, dim=32, depth=1, heads=4, time_steps=3, pooling="0001", **kw)


def test_input_forms_give_the_same_logits():
    torch.manual_seed(0)
    m = _tiny().eval()
    img = torch.rand(5, 1, 8, 8)
    a = m(img)                                                   # static image, repeated over T
    b = m(img.unsqueeze(0).expand(3, 5, 1, 8, 8))                # time-major frames
    c = m(img.flatten(1).unsqueeze(0).expand(3, 5, 64))          # flattened frames [T, B, C·H·W]
    assert a.shape == (3, 5, 4)
    torch.testing.assert_close(a, b)
    torch.testing.assert_close(a, c)
    with pytest.raises(ValueError, match=r"x: expected \[B, 1, 8, 8\]"):
        m(torch.rand(5, 1, 9, 9))


def test_bad_sizes_fail_at_construction():
    with pytest.raises(ValueError, match="size: every dimension must be divisible by the stem's downsampling 16"):
        sdt_v1("cifar10", image_size=40, pooling="1111")
    with pytest.raises(ValueError, match="dim: expected a multiple of heads=3, got dim=40"):
        sdt_v1("cifar10", dim=40, heads=3)
    with pytest.raises(ValueError, match="config: expected one of"):
        sdt_v1("cifar11")


def _overfit(model, x, y, steps=60, lr=3e-3, loss_fn=None):
    """Accuracy on the batch after ``steps`` Adam steps, in training mode (BatchNorm on the batch's statistics:
    a few steps do not settle the running averages that evaluation mode would use)."""
    opt = torch.optim.Adam(model.parameters(), lr=lr)
    for _ in range(steps):
        out = model(x)
        loss = loss_fn(out, y) if loss_fn else torch.nn.functional.cross_entropy(out.mean(0), y)
        opt.zero_grad()
        loss.backward()
        opt.step()
    with torch.no_grad():
        return (model(x).mean(0).argmax(1) == y).float().mean().item()


def test_tiny_model_overfits_a_small_batch():
    torch.manual_seed(1)
    x, y = torch.rand(16, 1, 8, 8), torch.arange(16) % 4
    assert _overfit(_tiny(), x, y) == 1.0


def test_tiny_model_overfits_with_tet_loss():
    torch.manual_seed(2)
    x, y = torch.rand(16, 1, 8, 8), torch.arange(16) % 4
    assert _overfit(_tiny(), x, y, loss_fn=lambda o, t: tet_loss(o, t, means=1.0, lamb=1e-3)) == 1.0


def test_audio_variant_tokens_are_time_frames_and_it_overfits():
    torch.manual_seed(3)
    m = SpikeDrivenAudioTransformer(20, 4, n_frames=16, dim=32, depth=1, heads=4, time_steps=2)
    x = (torch.rand(12, 16, 20) < 0.2).float()                  # [T_f, B, C], shorter than n_frames: zero-padded
    assert m(x).shape == (2, 16, 4)
    assert m.stem(torch.zeros(2, 1, 20, 16)).shape[-1] == 4   # 16 frames pooled twice -> 4 tokens
    y = torch.arange(16) % 4
    assert _overfit(m, x, y, steps=120) == 1.0


def test_audio_variant_stem_width_sets_the_first_three_stages():
    m = SpikeDrivenAudioTransformer(20, 4, n_frames=16, dim=32, depth=1, heads=4, stem_width=24)
    assert [c.out_channels for c in m.stem.convs] == [24, 24, 24, 32]
    ref = SpikeDrivenAudioTransformer(20, 4, n_frames=16, dim=32, depth=1, heads=4)
    assert [c.out_channels for c in ref.stem.convs] == [4, 8, 16, 32]
    # only the stem's three first convs (3 taps, no bias) and their BatchNorms change size
    delta = 3 * (20 * 24 + 24 * 24 + 24 * 24 + 24 * 32) + 2 * 3 * 24 - (3 * (20 * 4 + 4 * 8 + 8 * 16 + 16 * 32) + 2 * (4 + 8 + 16))
    assert sum(p.numel() for p in m.parameters()) - sum(p.numel() for p in ref.parameters()) == delta
    with pytest.raises(ValueError, match="stem_width: expected a positive int or None, got 0"):
        SpikeDrivenAudioTransformer(20, 4, n_frames=16, dim=32, depth=1, heads=4, stem_width=0)


def _lif_tau2(x: torch.Tensor, threshold: float = 1.0) -> torch.Tensor:
    """The spike-driven LIF written out: H = V + (X - V)/2, S = [H >= threshold], hard reset to 0."""
    v, spikes = torch.zeros_like(x[0]), []
    for xt in x:
        h = v + (xt - v) / 2
        s = (h >= threshold).to(x.dtype)
        spikes.append(s)
        v = h * (1 - s)
    return torch.stack(spikes)


@pytest.mark.parametrize("readout", ["membrane", "spikes"])
def test_classifier_head_readouts_against_hand_formula(readout):
    from snn.models.spike_driven_transformer import ClassifierHead
    torch.manual_seed(4)
    head = ClassifierHead(6, 3, readout).double()
    x = 3 * torch.randn(4, 2, 6, 1, 5, dtype=torch.float64)          # [T, B, D, 1, N] membrane-level tokens
    W, b = head.fc.weight, head.fc.bias
    if readout == "membrane":
        expected = _lif_tau2(x.mean((3, 4))) @ W.T + b
    else:
        s = _lif_tau2(x[:, :, :, 0])                                   # [T, B, D, N]: every token fires
        expected = torch.stack([s[..., n] @ W.T + b for n in range(5)]).mean(0)
    torch.testing.assert_close(head(x), expected, rtol=1e-12, atol=1e-12)


def test_audio_variant_readout_option():
    m = SpikeDrivenAudioTransformer(20, 4, n_frames=16, dim=32, depth=1, heads=4, readout="spikes")
    assert m.head.readout == "spikes" and m(torch.ones(16, 2, 20)).shape == (2, 2, 4)
    with pytest.raises(ValueError, match="readout: expected 'membrane' or 'spikes', got 'max'"):
        SpikeDrivenAudioTransformer(20, 4, n_frames=16, dim=32, depth=1, heads=4, readout="max")


def test_audio_variant_stem_kernel_option():
    from snn.config import config_from_dict
    from snn.models import build_model

    cfg = config_from_dict({"model": {"name": "sdt_audio", "n_frames": 16, "dim": 32, "depth": 1, "heads": 4,
                                      "stem_kernel": 7}})
    m = build_model(cfg, 20, 4)
    assert [c.kernel_size for c in m.stem.convs] == [(7,)] * 4
    assert m(torch.ones(16, 2, 20)).shape == (4, 2, 4)              # time_steps 4 (the section's default)
    assert SpikeDrivenAudioTransformer(20, 4, n_frames=16, dim=32).stem.kernel == 3   # the reference's


def test_audio_variant_frequency_shift_is_the_data_pipelines_and_the_old_model_key_says_so():
    from snn.config import ConfigError, config_from_dict

    with pytest.raises(ConfigError, match=r"model\.train_channel_shift was removed: use data\.augment\.channel_shift"):
        config_from_dict({"model": {"name": "sdt_audio", "train_channel_shift": 3}})
    cfg = config_from_dict({"model": {"name": "sdt_audio"}, "data": {"augment": {"channel_shift": 3}}})
    assert cfg.data.augment.channel_shift == 3 and not hasattr(cfg.model, "train_channel_shift")
    with pytest.raises(TypeError):
        SpikeDrivenAudioTransformer(6, 4, n_frames=8, dim=16, depth=1, heads=2, train_channel_shift=2)


def test_audio_variant_checks_its_input():
    m = SpikeDrivenAudioTransformer(20, 4, n_frames=16, dim=32, depth=1, heads=4)
    with pytest.raises(ValueError, match=r"x: expected SHD-format frames \[T_f, B, 20\], got \(10, 2, 21\)"):
        m(torch.zeros(10, 2, 21))


def test_event_driven_model_has_the_dense_models_outputs_and_gradients(run_dense_and_event):
    # event-driven by default: every Conv2d an EventConv2d; forced onto the event path (threshold 1) it must give the
    # dense model's logits and parameter gradients (float64: no spike flips on summation order)
    from snn.layers import EventConv2d, event_driven

    torch.manual_seed(0)
    dense = SpikeDrivenTransformer(2, 3, 16, dim=32, depth=1, heads=4, time_steps=2, event_driven=False).double()
    ours = SpikeDrivenTransformer(2, 3, 16, dim=32, depth=1, heads=4, time_steps=2).double()
    assert not any(isinstance(m, EventConv2d) for m in dense.modules())
    assert sum(type(m) is EventConv2d for m in ours.modules()) == 5 + 4 + 2  # stem + attention + MLP
    ours.load_state_dict(dense.state_dict())
    event_driven(ours, threshold=1.0)
    g = torch.Generator().manual_seed(1)
    x = torch.poisson(torch.full((2, 3, 2, 16, 16), 0.3, dtype=torch.float64), generator=g)  # event counts
    y = torch.tensor([0, 1, 2])
    run_dense_and_event(dense, ours, x, y)
    for (name, p), q in zip(dense.named_parameters(), ours.parameters()):
        if p.grad is not None:
            torch.testing.assert_close(q.grad, p.grad, rtol=1e-9, atol=1e-11, msg=name)
