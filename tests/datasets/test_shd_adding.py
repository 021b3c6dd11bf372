"""SHD-Adding: concatenation in time and digit-sum labels, checked item by item against the base samples."""
import numpy as np
import pytest
import torch

from snn.datasets.shd_adding import N_CLASSES, SHDAdding


class _Base(torch.utils.data.Dataset):
    def __init__(self):
        g = torch.Generator().manual_seed(0)
        self.items = [(torch.rand(3 + k % 4, 5, generator=g), k) for k in range(20)]  # labels 0..19

    def __len__(self):
        return len(self.items)

    def __getitem__(self, i):
        return self.items[i]

    @property
    def labels(self):
        return np.array([y for _, y in self.items])


def test_pairs_are_concatenated_in_time_and_labelled_with_the_digit_sum():
    base = _Base()
    ds = SHDAdding(base, n_samples=50, seed=3)
    assert len(ds) == 50 and len(ds.classes) == N_CLASSES == 19
    seen = set()
    for k in range(len(ds)):
        i, j = ds.pairs[k]
        x, y = ds[k]
        assert torch.equal(x, torch.cat([base.items[i][0], base.items[j][0]]))
        assert y == (i % 10) + (j % 10)  # base label k: digit k mod 10 (English 0-9, German 10-19)
        seen.add(y)
    assert ds.labels.tolist() == [ds[k][1] for k in range(len(ds))]
    assert max(seen) <= 18 and len(seen) > 5
    assert np.array_equal(SHDAdding(base, 50, seed=3).pairs, ds.pairs)


def test_bad_arguments_name_themselves():
    with pytest.raises(ValueError, match="n_samples"):
        SHDAdding(_Base(), n_samples=0)
    with pytest.raises(ValueError, match="base: expected a non-empty"):
        SHDAdding([], n_samples=3)


def test_redraw_gives_a_new_consistent_pair_at_every_access():
    base = _Base()
    ds = SHDAdding(base, n_samples=30, seed=3, redraw=True)
    torch.manual_seed(0)
    drawn = set()
    for k in range(30):
        x, y = ds[k % 3]
        # the pair, found by brute force among all base pairs (every base item is a distinct random tensor)
        found = [(i, j) for i in range(20) for j in range(20)
                 if torch.equal(x, torch.cat([base.items[i][0], base.items[j][0]]))]
        assert found and y == found[0][0] % 10 + found[0][1] % 10
        drawn.add(found[0])
    assert len(drawn) > 20  # 30 accesses of 3 indices: fresh pairs, not 3 fixed ones
    assert np.array_equal(ds.pairs, SHDAdding(base, 30, seed=3).pairs)  # the first draw, e.g. for class counts
    with pytest.raises(IndexError, match="out of range"):
        ds[30]
