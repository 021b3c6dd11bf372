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


def test_random_classes_are_seeded():
    x = torch.rand(50, 40)
    for cls in (lambda g: TimeJitter(2, generator=g), lambda g: ChannelShift(5, generator=g),
                lambda g: TimeMask(5, 2, generator=g), lambda g: ChannelMask(5, 2, generator=g)):
        torch.testing.assert_close(cls(torch.Generator().manual_seed(1))(x), cls(torch.Generator().manual_seed(1))(x))


def _shift_of(column: torch.Tensor, source: torch.Tensor, k: int) -> int | None:
    """The shift s in [-k, k] with column[t] = source[t - s] (zero outside), by brute force; None if none fits."""
    T = len(source)
    for s in range(-k, k + 1):
        expected = torch.tensor([source[t - s].item() if 0 <= t - s < T else 0.0 for t in range(T)])
        if torch.equal(column, expected):
            return s
    return None


def test_time_jitter_moves_each_channel_by_its_own_shift_within_the_bound():
    g = torch.Generator().manual_seed(0)
    x = torch.rand(30, 12, generator=g) + 0.1  # no zeros: every shift is identifiable
    seen = set()
    for seed in range(10):
        y = TimeJitter(2, generator=torch.Generator().manual_seed(seed))(x)
        shifts = [_shift_of(y[:, c], x[:, c], 2) for c in range(x.shape[1])]
        assert None not in shifts, "a channel is not a time-shifted copy within ±2 steps"
        seen |= set(shifts)
    assert seen == {-2, -1, 0, 1, 2}  # every allowed shift occurs, no other


def test_channel_shift_moves_all_channels_by_one_shift_within_the_bound():
    x = torch.rand(8, 30) + 0.1
    seen = set()
    for seed in range(40):
        y = ChannelShift(3, generator=torch.Generator().manual_seed(seed))(x)
        s = [k for k in range(-3, 4) if torch.equal(y, channel_shift(x, k))]
        assert len(s) == 1
        seen.add(s[0])
    assert seen == {-3, -2, -1, 0, 1, 2, 3}


@pytest.mark.parametrize("cls, dim", [(TimeMask, 0), (ChannelMask, 1)])
def test_span_masks_zero_at_most_n_spans_of_at_most_max_width_and_keep_the_rest(cls, dim):
    x = torch.rand(40, 30) + 0.1
    for seed in range(20):
        y = cls(4, n_masks=2, generator=torch.Generator().manual_seed(seed))(x)
        zeroed = (y == 0).all(dim=1 - dim)  # whole rows (time) or columns (channels)
        assert torch.equal(y[y != 0], x[y != 0]) and ((y == 0) == zeroed.unsqueeze(1 - dim).expand_as(y)).all()
        runs, width = [], 0
        for z in zeroed.tolist() + [False]:
            if z:
                width += 1
            elif width:
                runs.append(width)
                width = 0
        assert 1 <= len(runs) <= 2 and sum(runs) <= 8 and max(runs) <= 8  # two spans may touch or overlap
        assert 1 <= zeroed.sum() <= 8


def test_compose_applies_every_transform_in_order():
    x = torch.rand(10, 6) + 0.1
    y = Compose([lambda t: channel_shift(t, 1), lambda t: time_mask(t, [(0, 3)])])(x)
    torch.testing.assert_close(y, time_mask(channel_shift(x, 1), [(0, 3)]))


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
