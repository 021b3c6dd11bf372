import os
import pickle
import warnings

import numpy as np
import pytest
import torch
from torch.utils.data import DataLoader

from snn.datasets import DatasetFormatError, SpikeTrainH5, ToFrames, bin_events, pad_collate



def test_raw_events_round_trip_exactly(shd_file, cache_dir):
    path, (times, units, labels, speakers) = shd_file
    ds = SpikeTrainH5(path, frames=None, cache_dir=cache_dir)
    assert len(ds) == len(times)
    for i in (0, 7, len(ds) - 1):
        ev, y = ds[i]
        assert y == labels[i]
        np.testing.assert_array_equal(ev["x"], units[i])
        np.testing.assert_array_equal(ev["t"], (times[i].astype(np.float64) * 1e6).astype(np.int64))
        assert np.all(ev["p"] == 1)
    np.testing.assert_array_equal(ds.labels, labels)
    np.testing.assert_array_equal(ds.speakers, speakers)
    assert ds.classes[:2] == ["digit-0", "digit-1"]


def test_cached_frames_equal_direct_binning(shd_file, cache_dir):
    path, (times, units, labels, _) = shd_file
    frames = ToFrames(dt_ms=4.0, pool=5)
    ds = SpikeTrainH5(path, frames=frames, cache_dir=cache_dir)
    assert ds.n_channels == 140 and list(cache_dir.iterdir())
    nocache = SpikeTrainH5(path, frames=frames, cache=False)
    for i in range(len(ds)):
        x, y = ds[i]
        ref = bin_events(times[i], units[i], dt_ms=4.0, n_channels=700, pool=5)
        assert x.dtype == torch.float32 and x.shape == ref.shape and y == labels[i]
        np.testing.assert_array_equal(x.numpy(), ref)
        np.testing.assert_array_equal(nocache[i][0].numpy(), ref)
    np.testing.assert_array_equal(ds.lengths, [len(ds[i][0]) for i in range(len(ds))])


def test_second_open_reads_cache_without_rebinning(shd_file, cache_dir, monkeypatch):
    path, _ = shd_file
    SpikeTrainH5(path, cache_dir=cache_dir)
    calls = []
    monkeypatch.setattr(SpikeTrainH5, "build_cache", lambda self, *a: calls.append(a))
    ds = SpikeTrainH5(path, cache_dir=cache_dir)
    ds[0]
    assert calls == []


def test_cache_invalidates_on_parameter_change(shd_file, cache_dir):
    path, _ = shd_file
    a = SpikeTrainH5(path, frames=ToFrames(dt_ms=10.0), cache_dir=cache_dir)
    b = SpikeTrainH5(path, frames=ToFrames(dt_ms=5.0), cache_dir=cache_dir)
    assert a.cache_path() != b.cache_path() and len(list(cache_dir.glob("*.frames"))) == 2
    assert b[0][0].shape[0] >= 2 * a[0][0].shape[0] - 1


def test_cache_invalidates_when_source_file_changes(shd_file, cache_dir, shd_tools):
    make_samples, write_shd_file = shd_tools
    path, (times, units, labels, speakers) = shd_file
    a = SpikeTrainH5(path, cache_dir=cache_dir)
    key = a.cache_key()
    labels2 = (labels + 1) % 20
    write_shd_file(path, times, units, labels2, speakers)
    os.utime(path, ns=(os.stat(path).st_atime_ns, os.stat(path).st_mtime_ns + 10**9))
    b = SpikeTrainH5(path, cache_dir=cache_dir)
    assert b.cache_key() != key and b[0][1] == labels2[0]


@pytest.mark.parametrize("damage", ["truncate", "flip", "header"])
def test_corrupt_cache_is_rebuilt_with_warning(shd_file, cache_dir, damage):
    path, (times, units, _, _) = shd_file
    ds = SpikeTrainH5(path, cache_dir=cache_dir)
    cpath = ds.cache_path()
    raw = bytearray(cpath.read_bytes())
    if damage == "truncate":
        raw = raw[: len(raw) - 100]
    elif damage == "flip":
        raw[5000] ^= 0xFF
    else:
        raw[:8] = b"garbage!"
    cpath.write_bytes(bytes(raw))
    with pytest.warns(RuntimeWarning, match="rebuilding frame cache"):
        ds2 = SpikeTrainH5(path, cache_dir=cache_dir)
    np.testing.assert_array_equal(ds2[3][0].numpy(), bin_events(times[3], units[3], dt_ms=10, n_channels=700))
    with warnings.catch_warnings():
        warnings.simplefilter("error")
        SpikeTrainH5(path, cache_dir=cache_dir)


def test_failed_build_leaves_no_cache_file(tmp_path, cache_dir, shd_tools):
    make_samples, write_shd_file = shd_tools
    times, units, labels, _ = make_samples(300, seed=4)
    units[280] = units[280].copy()
    units[280][0] = 900
    path = write_shd_file(tmp_path / "bad.h5", times, units, labels)
    with pytest.raises(DatasetFormatError, match=r"bad\.h5: sample 280 has channel id 900 outside \[0, 700\)"):
        SpikeTrainH5(path, cache_dir=cache_dir)
    assert list(cache_dir.glob("*frames*")) == []


def test_missing_file_names_path(tmp_path):
    with pytest.raises(FileNotFoundError, match="nope.h5"):
        SpikeTrainH5(tmp_path / "nope.h5")


def test_truncated_hdf5_is_reported(shd_file, tmp_path):
    path, _ = shd_file
    bad = tmp_path / "trunc.h5"
    bad.write_bytes(path.read_bytes()[: path.stat().st_size // 2])
    with pytest.raises(DatasetFormatError, match=r"trunc\.h5: cannot be read as HDF5"):
        SpikeTrainH5(bad, cache=False)


def test_wrong_keys_are_named(tmp_path, shd_tools):
    make_samples, write_shd_file = shd_tools
    times, units, labels, _ = make_samples(3)
    path = write_shd_file(tmp_path / "nokeys.h5", times, units, labels, skip=("spikes/units",))
    with pytest.raises(DatasetFormatError, match=r"nokeys\.h5: missing dataset\(s\) \['spikes/units'\]"):
        SpikeTrainH5(path)


def test_inconsistent_lengths_are_reported(tmp_path, shd_tools):
    make_samples, write_shd_file = shd_tools
    times, units, labels, _ = make_samples(4)
    path = write_shd_file(tmp_path / "short.h5", times, units[:3], labels)
    with pytest.raises(DatasetFormatError, match="inconsistent lengths"):
        SpikeTrainH5(path)


def test_negative_times_and_empty_samples_are_reported(tmp_path, cache_dir, shd_tools):
    make_samples, write_shd_file = shd_tools
    times, units, labels, _ = make_samples(5)
    times[2] = times[2] - 1.0
    path = write_shd_file(tmp_path / "neg.h5", times, units, labels)
    with pytest.raises(DatasetFormatError, match=r"neg\.h5: sample 2 has negative spike times"):
        SpikeTrainH5(path, cache_dir=cache_dir)
    times, units, labels, _ = make_samples(5)
    times[1], units[1] = times[1][:0], units[1][:0]
    path = write_shd_file(tmp_path / "empty.h5", times, units, labels)
    with pytest.raises(DatasetFormatError, match=r"empty\.h5: sample 1 has no spikes"):
        SpikeTrainH5(path, cache_dir=cache_dir)
    ds = SpikeTrainH5(path, cache_dir=cache_dir, allow_empty=True)
    assert ds[1][0].shape == (1, 700) and ds[1][0].sum() == 0


def test_pickle_drops_handle_and_reopens(shd_file, cache_dir):
    path, _ = shd_file
    ds = SpikeTrainH5(path, frames=None, cache_dir=cache_dir)
    ds[0]
    handle = ds._h5
    ds[1]
    assert handle is not None and ds._h5 is handle  # opened once, not per item
    ds._pid = -1  # as seen from a forked worker: the handle belongs to another process
    ds[2]
    assert ds._h5 is not handle
    clone = pickle.loads(pickle.dumps(ds))
    assert clone._h5 is None
    np.testing.assert_array_equal(clone[1][0], ds[1][0])


@pytest.mark.parametrize("cache", [True, False])
def test_dataloader_with_two_workers(shd_file, cache_dir, cache):
    path, (times, units, labels, _) = shd_file
    ds = SpikeTrainH5(path, frames=ToFrames(pool=5), cache=cache, cache_dir=cache_dir)
    dl = DataLoader(ds, batch_size=8, num_workers=2, collate_fn=pad_collate)
    seen = []
    for x, y, lengths in dl:
        assert x.shape[1] == y.shape[0] == lengths.shape[0] and x.shape[2] == 140
        assert x.shape[0] == int(lengths.max())
        seen.extend(y.tolist())
    assert seen == labels.tolist()


def test_index_out_of_range(shd_file, cache_dir):
    path, _ = shd_file
    ds = SpikeTrainH5(path, cache_dir=cache_dir)
    with pytest.raises(IndexError):
        ds[len(ds)]
