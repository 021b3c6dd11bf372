"""LabelSlots: k silent channels before each sample's own; the run data built from a config with label_channels."""
from __future__ import annotations

import numpy as np
import pytest
import torch

from snn.config import ConfigError, load_config
from snn.datasets.label_slots import LabelSlots


class _Toy:
    n_channels = 3
    labels = np.array([4, 7])
    classes = [str(i) for i in range(8)]

    def __init__(self) -> None:
        self.items = [np.arange(6, dtype=np.float32).reshape(2, 3) + 1, np.ones((4, 3), np.float32)]

    def __len__(self) -> int:
        return 2

    def __getitem__(self, i):
        return self.items[i], int(self.labels[i])


def test_label_slots_prepends_silent_channels_and_keeps_the_rest():
    ds = LabelSlots(_Toy(), 2)
    x, y = ds[0]
    assert y == 4 and x.shape == (2, 5) and ds.n_channels == 5 and len(ds) == 2
    assert torch.equal(x, torch.tensor([[0, 0, 1, 2, 3], [0, 0, 4, 5, 6]], dtype=torch.float32))
    assert ds[1][0].shape == (4, 5)
    assert ds.classes == _Toy.classes and list(ds.labels) == [4, 7]  # other attributes: the wrapped dataset's


@pytest.mark.parametrize("k", [0, -1, 2.0, True])
def test_label_slots_rejects_a_bad_count(k):
    with pytest.raises(ValueError, match=rf"k must be an int >= 1, got {k!r}"):
        LabelSlots(_Toy(), k)


def test_config_label_channels_and_digits_spike_trains():
    pytest.importorskip("sklearn")
    from snn.datasets.digits8x8_spikes import Digits8x8Spikes
    from snn.training.data import build_datasets

    cfg = load_config({"data": {"dataset": "digits8x8_spikes", "label_channels": 10, "valid_fraction": 0.1}})
    data = build_datasets(cfg.data)
    assert (len(data.train), len(data.valid), len(data.test), data.n_inputs, data.n_classes) == (1295, 142, 360, 74, 10)
    plain = Digits8x8Spikes("train")
    # train and valid are disjoint and together the fixed 1,437-image train split
    rows = {tuple(x.flatten().tolist()) + (y,) for ds in (data.train, data.valid) for x, y in
            (ds[i] for i in range(len(ds)))}
    assert len(rows) == len({tuple(plain[i][0].flatten().tolist()) + (plain[i][1],) for i in range(len(plain))})
    x, y = data.test[5]
    x0, y0 = Digits8x8Spikes("test")[5]
    assert y == y0 and torch.equal(x[:, :10], torch.zeros(16, 10)) and torch.equal(x[:, 10:], x0)
    with pytest.raises(ConfigError, match=r"data.label_channels: expected a value >= 0, got -1"):
        load_config({"data": {"label_channels": -1}})
