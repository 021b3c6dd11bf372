import pytest
import torch

from snn.datasets.augment import (ChannelMask, ChannelShift, Compose, CutMix, TimeJitter, TimeMask, channel_mask,
                                  channel_shift, cutmix, time_jitter, time_mask)


def loop_time_jitter(x, shifts):
    T, C = x.shape
    out = torch.zeros_like(x)
    for c in range(C):
        for t in range(T):
            if 0 <= t - shifts[c] < T:
                out[t, c] = x[t - shifts[c], c]
    return out


def test_time_jitter_matches_loop_and_preserves_counts_for_zero_shift():
    g = torch.Generator().manual_seed(0)
    x = torch.randint(0, 3, (12, 7), generator=g).float()
    shifts = torch.tensor([0, 1, -1, 3, -3, 20, 0])
    torch.testing.assert_close(time_jitter(x, shifts), loop_time_jitter(x, shifts))
    torch.testing.assert_close(time_jitter(x, torch.zeros(7, dtype=torch.long)), x)


def test_channel_shift_moves_and_zero_fills():
    x = torch.arange(10.0).reshape(2, 5)
    assert channel_shift(x, 2)[0].tolist() == [0, 0, 0, 1, 2]
    assert channel_shift(x, -1)[1].tolist() == [6, 7, 8, 9, 0]
    assert channel_shift(x, 9).sum() == 0


def test_masks_zero_exact_regions():
    x = torch.ones(6, 4)
    y = time_mask(x, [(1, 2)])
    assert y[:, 0].tolist() == [1, 0, 0, 1, 1, 1] and x.sum() == 24  # input untouched
    z = channel_mask(x, [(3, 5)])
    assert z[0].tolist() == [1, 1, 1, 0]


def test_random_classes_are_seeded_and_change_input():
    x = torch.rand(50, 40)
    for cls in (lambda g: TimeJitter(2, generator=g), lambda g: ChannelShift(5, generator=g),
                lambda g: TimeMask(5, 2, generator=g), lambda g: ChannelMask(5, 2, generator=g)):
        a = cls(torch.Generator().manual_seed(1))(x)
        b = cls(torch.Generator().manual_seed(1))(x)
        torch.testing.assert_close(a, b)
        assert a.shape == x.shape
    aug = Compose([TimeMask(10, generator=torch.Generator().manual_seed(2))])
    assert (aug(x) == 0).sum() >= 40


def test_cutmix_segment_labels_and_weights():
    T, B, C = 10, 3, 2
    x = torch.stack([torch.full((T, C), float(b + 1)) for b in range(B)], 1)
    labels = torch.tensor([0, 1, 2])
    lengths = torch.tensor([10, 10, 4])
    perm = torch.tensor([1, 2, 0])
    out, ya, yb, lam, new_len = cutmix(x, labels, lengths, perm, start=2, width=5)
    assert torch.all(out[2:7, 0] == 2) and torch.all(out[:2, 0] == 1) and torch.all(out[7:, 0] == 1)
    assert ya.tolist() == [0, 1, 2] and yb.tolist() == [1, 2, 0]
    # sample 2 (len 4) receives sample 0's steps 2..6 → length 7, λ = 5/7
    assert new_len.tolist() == [10, 10, 7]
    torch.testing.assert_close(lam, torch.tensor([0.5, 0.5, 5 / 7]))  # share of the mixed length
    out2 = CutMix(p=1.0, generator=torch.Generator().manual_seed(0))(x, labels, lengths)
    assert out2[0].shape == x.shape and float(out2[3].max()) > 0


@pytest.mark.parametrize("bad", [lambda: TimeJitter(-1), lambda: ChannelShift(1.5), lambda: TimeMask(0),
                                 lambda: ChannelMask(3, -1), lambda: CutMix(alpha=0), lambda: CutMix(p=2)])
def test_bad_parameters_raise(bad):
    with pytest.raises(ValueError):
        bad()
