"""scikit-learn 8x8 digits loader: fixed disjoint splits, scaling, direct encoding."""
from __future__ import annotations

import numpy as np
import pytest
import torch

pytest.importorskip("sklearn")
from sklearn.datasets import load_digits  # noqa: E402

from snn.datasets import Digits8x8  # noqa: E402


def _rows(ds):
    return {tuple(r) for r in ds._images.flatten(1).numpy().round(6).tolist()}


def test_splits_partition_the_set_and_the_test_part_is_stratified():
    parts = {s: Digits8x8(s) for s in ("train", "valid", "test")}
    assert sum(len(d) for d in parts.values()) == 1797
    full = Digits8x8("full_train")
    assert len(full) == len(parts["train"]) + len(parts["valid"])
    assert np.array_equal(np.sort(np.concatenate([parts["train"].labels, parts["valid"].labels])), np.sort(full.labels))
    counts = np.bincount(parts["test"].labels, minlength=10)
    per_class = np.bincount(load_digits().target, minlength=10)
    assert np.all(np.abs(counts - 0.25 * per_class) <= 0.5 + 1e-9)
    # optdigits has a few duplicate images; every test image that is unique in the set stays out of training
    all_rows = load_digits().data.round(6) / 16.0
    _, inverse, dup = np.unique(all_rows, axis=0, return_inverse=True, return_counts=True)
    assert len(_rows(parts["test"]) & _rows(full)) <= int((dup > 1).sum())


def test_test_split_is_fixed_whatever_the_train_seed():
    a, b = Digits8x8("test", seed=0), Digits8x8("test", seed=5)
    assert np.array_equal(a.labels, b.labels) and torch.equal(a._images, b._images)
    assert not np.array_equal(Digits8x8("valid", seed=0).labels, Digits8x8("valid", seed=5).labels)


def test_items_are_scaled_images_repeated_over_time():
    ds = Digits8x8("test", time_steps=3)
    x, y = ds[0]
    assert x.shape == (3, 1, 8, 8) and x.dtype == torch.float32 and isinstance(y, int)
    assert torch.equal(x[0], x[2]) and 0.0 <= x.min() and x.max() <= 1.0
    raw = load_digits()
    match = np.where((raw.images / 16.0 == x[0, 0].numpy()).all(axis=(1, 2)))[0]
    assert match.size >= 1 and raw.target[match[0]] == y


def test_bad_arguments_are_named():
    with pytest.raises(ValueError, match="split: expected one of"):
        Digits8x8("dev")
    with pytest.raises(ValueError, match="time_steps: expected an int >= 1, got 0"):
        Digits8x8("train", time_steps=0)
