"""SHD-layout HDF5 writer: round trip through plain h5py, dtypes, atomic replacement, input checks."""
from __future__ import annotations

import h5py
import numpy as np
import pytest

from snn.datasets.h5_writer import write_spike_h5


def samples(n=5, seed=0):
    rng = np.random.default_rng(seed)
    times, units = [], []
    for i in range(n):
        k = int(rng.integers(0, 50)) if i else 0  # first sample has no spikes at all
        times.append(np.sort(rng.uniform(0, 0.9, k)))
        units.append(rng.integers(0, 700, k))
    labels = rng.integers(0, 3, n)
    speakers = rng.integers(0, 4, n)
    return times, units, labels, speakers


def test_round_trip_with_plain_h5py_in_the_shd_layout(tmp_path):
    times, units, labels, speakers = samples()
    path = write_spike_h5(tmp_path / "x.h5", times, units, labels, ["a", "b", "c"], speakers)
    with h5py.File(path, "r") as f:
        assert set(f.keys()) == {"spikes", "labels", "extra"}
        assert h5py.check_vlen_dtype(f["spikes/times"].dtype) == np.float16
        assert h5py.check_vlen_dtype(f["spikes/units"].dtype) == np.uint16
        assert f["labels"].dtype == np.uint16 and f["extra/speaker"].dtype == np.uint16
        assert list(f["extra/keys"][()]) == [b"a", b"b", b"c"]
        np.testing.assert_array_equal(f["labels"][()], labels)
        np.testing.assert_array_equal(f["extra/speaker"][()], speakers)
        for i in range(len(times)):
            got_t = f["spikes/times"][i]
            assert got_t.dtype == np.float16 and len(got_t) == len(times[i])
            np.testing.assert_allclose(got_t, times[i], rtol=2**-10, atol=0)
            np.testing.assert_array_equal(f["spikes/units"][i], units[i])


def test_float32_times_round_trip_exactly(tmp_path):
    times, units, labels, speakers = samples(seed=1)
    times = [t.astype(np.float32) for t in times]
    path = write_spike_h5(tmp_path / "x.h5", times, units, labels, [b"a", b"b", b"c"], speakers,
                          times_dtype=np.float32, compression=None)
    with h5py.File(path, "r") as f:
        for i, t in enumerate(times):
            np.testing.assert_array_equal(f["spikes/times"][i], t)


def test_writing_replaces_the_file_atomically_and_leaves_no_temporaries(tmp_path):
    times, units, labels, speakers = samples()
    target = tmp_path / "x.h5"
    write_spike_h5(target, times, units, labels, ["a", "b", "c"], speakers)
    write_spike_h5(target, times[:2], units[:2], labels[:2], ["a", "b", "c"], speakers[:2], attrs={"note": "v2"})
    assert sorted(p.name for p in tmp_path.iterdir()) == ["x.h5"]
    with h5py.File(target, "r") as f:
        assert len(f["labels"]) == 2 and f.attrs["note"] == "v2"
    # a rejected write leaves the previous file untouched
    with pytest.raises(ValueError):
        write_spike_h5(target, times, units, labels, ["a"], speakers)
    with h5py.File(target, "r") as f:
        assert len(f["labels"]) == 2
    assert sorted(p.name for p in tmp_path.iterdir()) == ["x.h5"]


def test_speakers_default_to_zero(tmp_path):
    times, units, labels, _ = samples()
    path = write_spike_h5(tmp_path / "x.h5", times, units, labels, ["a", "b", "c"])
    with h5py.File(path, "r") as f:
        np.testing.assert_array_equal(f["extra/speaker"][()], np.zeros(len(times)))


@pytest.mark.parametrize(
    "change, match",
    [
        (lambda d: d.update(units=d["units"][:-1]), "one array per sample"),
        (lambda d: d.update(labels=d["labels"][:-1]), "labels must have shape"),
        (lambda d: d.update(labels=d["labels"] + 5), "labels must lie"),
        (lambda d: d.update(speakers=d["speakers"][:-1]), "speakers must have shape"),
        (lambda d: d["times"].__setitem__(1, -d["times"][1] - 1), "times must be finite"),
        (lambda d: d["units"].__setitem__(1, d["units"][1] + 70000), "units must be integers"),
        (lambda d: d["units"].__setitem__(1, d["units"][1][:-1]), "equal length"),
        (lambda d: d["times"].__setitem__(1, d["times"][1] + 70000.0), "overflows"),
        (lambda d: d.update(times_dtype=np.int32), "times_dtype"),
        (lambda d: d.update(compression="zstd"), "compression"),
    ],
)
def test_bad_inputs_raise_before_writing(tmp_path, change, match):
    times, units, labels, speakers = samples()
    d = dict(times=list(times), units=list(units), labels=labels, speakers=speakers)
    change(d)
    kwargs = {k: d.pop(k) for k in ("times_dtype", "compression") if k in d}
    with pytest.raises(ValueError, match=match):
        write_spike_h5(tmp_path / "x.h5", d["times"], d["units"], d["labels"], ["a", "b", "c"], d["speakers"], **kwargs)
    assert not any(tmp_path.iterdir())


def test_keys_must_be_strings(tmp_path):
    times, units, labels, speakers = samples()
    with pytest.raises(TypeError, match="keys"):
        write_spike_h5(tmp_path / "x.h5", times, units, labels, ["a", 1, "c"], speakers)
