import numpy as np
import pytest
import torch

from snn.datasets.collate import pad_collate


def test_pad_collate_shapes_lengths_and_zero_padding():
    batch = [(torch.ones(3, 4), 1), (np.full((5, 4), 2.0, dtype=np.float32), 0), (torch.ones(1, 4) * 3, 7)]
    x, y, lengths = pad_collate(batch)
    assert x.shape == (5, 3, 4) and x.dtype == torch.float32
    assert y.tolist() == [1, 0, 7] and y.dtype == torch.long
    assert lengths.tolist() == [3, 5, 1] and lengths.dtype == torch.long
    assert torch.all(x[:3, 0] == 1) and torch.all(x[3:, 0] == 0)
    assert torch.all(x[:, 1] == 2)
    assert torch.all(x[0, 2] == 3) and torch.all(x[1:, 2] == 0)


def test_pad_collate_rejects_mismatched_features():
    with pytest.raises(ValueError, match=r"item 1 has shape \(2, 5\)"):
        pad_collate([(torch.ones(3, 4), 0), (torch.ones(2, 5), 1)])
    with pytest.raises(ValueError, match="empty batch"):
        pad_collate([])
