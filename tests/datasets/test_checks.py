"""Implausible data is caught with the sample named: float labels, absurd classes, times in milliseconds."""
from __future__ import annotations

import h5py
import numpy as np
import pytest

from snn.datasets import SHD, SpikeTrainH5
from snn.datasets.checks import duration_problems, event_problems, label_problems
from snn.datasets.spike_h5 import DatasetFormatError


def _file(tmp_path, shd_tools, name="shd_train.h5", n=12, labels=None, keys=True, edit=None):
    make_samples, write_shd_file = shd_tools
    times, units, lab, speakers = make_samples(n, seed=1)
    if edit is not None:
        edit(times, units)
    path = write_shd_file(tmp_path / name, times, units, lab, speakers)
    with h5py.File(path, "a") as f:
        if labels is not None:
            del f["labels"]
            f.create_dataset("labels", data=np.asarray(labels))
        if not keys:
            del f["extra/keys"]
    return path


def test_float_labels_are_an_error_not_truncated(tmp_path, shd_tools, cache_dir):
    labels = np.arange(12, dtype=np.float64) % 5
    labels[7] = 3.7
    path = _file(tmp_path, shd_tools, labels=labels)
    with pytest.raises(DatasetFormatError, match=r"labels must be integers: sample 7 has label 3\.7"):
        SpikeTrainH5(path, frames=None, cache=False, cache_dir=cache_dir)
    labels[7] = 3.0  # integral floats are fine
    path = _file(tmp_path, shd_tools, name="ok.h5", labels=labels)
    assert SpikeTrainH5(path, frames=None, cache=False, cache_dir=cache_dir).labels[7] == 3


def test_a_label_beyond_the_stated_classes_is_an_error_naming_the_sample(tmp_path, shd_tools, cache_dir):
    labels = np.arange(12) % 20
    labels[4] = 60000
    path = _file(tmp_path, shd_tools, labels=labels.astype(np.uint16), keys=False)
    with pytest.raises(DatasetFormatError, match=r"sample 4 has label 60000, but the dataset has 20 classes"):
        SHD(tmp_path, "full_train", frames=None, cache=False, cache_dir=cache_dir)
    with pytest.warns(RuntimeWarning, match=r"labels imply 60001 classes but only 12 occur \(sample 4"):
        SpikeTrainH5(path, frames=None, cache=False, cache_dir=cache_dir)  # no stated classes: a warning


def test_times_in_milliseconds_are_reported_as_such(tmp_path, shd_tools, cache_dir):
    def to_ms(times, units):
        times[5] = (times[5].astype(np.float32) * 1000).astype(np.float32)

    path = _file(tmp_path, shd_tools, edit=to_ms)
    with pytest.raises(DatasetFormatError, match=r"sample 5 lasts \d+\.?\d* s, longer than any SHD sample \(2 s\); "
                                                 r"its times look like milliseconds"):
        SHD(tmp_path, "full_train", cache_dir=cache_dir)
    # a file of no known dataset: compared with its typical sample while the cache is built
    with pytest.raises(DatasetFormatError, match=r"sample 5 lasts .*× the file's typical .*look like milliseconds"):
        SpikeTrainH5(path, cache_dir=cache_dir)


def test_check_functions_name_every_problem():
    assert label_problems(np.array([0, 1, -2]))[1] == ["labels must be >= 0: sample 2 has label -2"]
    assert label_problems(np.array([0, 1, 2]), names=["a", "b"])[1] == [
        "sample 2 has label 2, but extra/keys names 2 classes (labels 0..1)"]
    assert event_problems(np.array([0.1, np.nan]), np.array([1, 2]), 3, n_channels=700)[0].startswith(
        "sample 3 has non-finite spike times")
    assert "65535" in event_problems(np.array([0.1]), np.array([65535], np.uint16), 0, n_channels=700)[0]
    assert event_problems(np.zeros(0), np.zeros(0), 9, n_channels=700) == [
        "sample 9 has no spikes (pass allow_empty=True to keep empty samples)"]
    assert duration_problems(np.array([0.9, 1.1]), 0, max_duration_s=2.0, reference_s=1.0) == []
    assert duration_problems(np.array([50.0]), 10, reference_s=1.0) == []  # 50x: not an outlier yet
