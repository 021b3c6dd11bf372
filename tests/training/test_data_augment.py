"""``data.augment``: the training split's items are augmented (checked against shifts written out by hand), the
validation and test splits never are, and bad values are config errors naming the key."""
import pytest
import torch

from snn.config import ConfigError, load_config
from snn.training.data import augmentation, build_split


def _cfg(tmp_path, **augment):
    return load_config({"data": {"dataset": "spoken_digits", "pool": 10, "valid_fraction": 0.15,
                                 "cache_dir": str(tmp_path), "augment": augment}})


def _hand_shifts(x, k):
    """Every channel shift of ``x [T, C]`` by ``s ∈ {-k..k}`` with zero fill, written out with slicing."""
    out = []
    for s in range(-k, k + 1):
        y = torch.zeros_like(x)
        if s >= 0:
            y[:, s:] = x[:, :x.shape[1] - s]
        else:
            y[:, :s] = x[:, -s:]
        out.append(y)
    return out


def test_channel_shift_moves_training_items_only(tmp_path):
    plain = _cfg(tmp_path)
    shifted = _cfg(tmp_path, channel_shift=2)
    torch.manual_seed(0)
    base_train, aug_train = build_split(plain.data, "train"), build_split(shifted.data, "train")
    moved = 0
    for i in range(0, 200, 10):
        x, y = base_train[i]
        xa, ya = aug_train[i]
        assert ya == y
        assert any(torch.equal(xa, h) for h in _hand_shifts(x, 2))
        moved += not torch.equal(xa, x)
    assert moved >= 10  # 4 of 5 draws move the item
    for split in ("valid", "test"):
        a, b = build_split(plain.data, split), build_split(shifted.data, split)
        assert all(torch.equal(a[i][0], b[i][0]) for i in range(0, len(a), 25))


def test_every_augmentation_is_off_by_default_and_built_in_order(tmp_path):
    assert augmentation(_cfg(tmp_path).data.augment) is None
    steps = augmentation(_cfg(tmp_path, channel_shift=1, time_jitter=1, time_masks=2, channel_masks=1).data.augment)
    assert [type(t).__name__ for t in steps.transforms] == ["ChannelShift", "TimeJitter", "TimeMask", "ChannelMask"]
    assert steps.transforms[2].n_masks == 2 and steps.transforms[2].max_width == 5


@pytest.mark.parametrize("key, value", [("channel_shift", -1), ("time_masks", -2), ("time_mask_width", 0)])
def test_bad_values_name_the_key(tmp_path, key, value):
    with pytest.raises(ConfigError, match=f"data.augment.{key}"):
        _cfg(tmp_path, **{key: value})
