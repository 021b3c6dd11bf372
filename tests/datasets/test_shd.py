import numpy as np
import pytest

from snn.datasets import SHD, SSC, SpokenDigits, ToFrames, holdout_split


@pytest.fixture
def shd_root(tmp_path, shd_tools):
    make_samples, write = shd_tools
    root = tmp_path / "data"
    (root / "SHD").mkdir(parents=True)
    t, u, y, s = make_samples(60, seed=1)
    write(root / "SHD" / "shd_train.h5", t, u, y, s)  # tonic's folder layout
    t, u, y, s = make_samples(12, seed=2)
    write(root / "shd_test.h5", t, u, y, s)
    return root


def test_shd_train_valid_are_disjoint_speaker_split(shd_root, tmp_path):
    kw = dict(cache_dir=tmp_path / "c", frames=ToFrames(pool=5))
    tr, va = SHD(shd_root, "train", **kw), SHD(shd_root, "valid", **kw)
    full = SHD(shd_root, "full_train", **kw)
    assert len(tr) + len(va) == len(full) == 60
    assert set(tr.speakers).isdisjoint(set(va.speakers))
    assert len(va) >= 6
    assert len(SHD(shd_root, "test", **kw)) == 12
    # same seed → same split; other seed → (here) another split
    assert np.array_equal(SHD(shd_root, "valid", **kw).indices, va.indices)
    x, y = va[0]
    assert x.shape[1] == 140 and y == full.labels[va.indices[0]]


def test_holdout_by_fraction_is_stratified_and_seeded():
    labels = np.repeat(np.arange(4), 25)
    tr, va = holdout_split(labels, None, fraction=0.2, by="fraction", seed=3)
    assert np.bincount(labels[va]).tolist() == [5, 5, 5, 5]
    assert np.intersect1d(tr, va).size == 0 and tr.size + va.size == 100
    assert np.array_equal(va, holdout_split(labels, None, fraction=0.2, by="fraction", seed=3)[1])
    assert not np.array_equal(va, holdout_split(labels, None, fraction=0.2, by="fraction", seed=4)[1])


def test_split_argument_errors(shd_root):
    with pytest.raises(ValueError, match="split must be one of"):
        SHD(shd_root, "validation")
    with pytest.raises(ValueError, match="valid_fraction"):
        SHD(shd_root, "valid", valid_fraction=1.5)
    with pytest.raises(ValueError, match="valid_by"):
        SHD(shd_root, "valid", valid_by="age")
    with pytest.raises(ValueError, match="speaker ids"):
        holdout_split(np.zeros(4), None, by="speaker")


def test_missing_files_error_names_path_files_and_source(tmp_path):
    with pytest.raises(FileNotFoundError) as err:
        SHD(tmp_path, "test")
    msg = str(err.value)
    assert str(tmp_path / "shd_test.h5") in msg and "shd_train.h5" in msg
    assert "zenkelab.org/datasets" in msg and "download=True" in msg and "tonic" in msg
    with pytest.raises(FileNotFoundError, match="ssc_valid.h5"):
        SSC(tmp_path, "valid")


def test_ssc_reads_its_own_valid_file(tmp_path, shd_tools):
    make_samples, write = shd_tools
    t, u, y, s = make_samples(7, seed=5)
    write(tmp_path / "ssc_valid.h5", t, u, y % 35, s, keys=[f"w{i}".encode() for i in range(35)])
    ds = SSC(tmp_path, "valid", cache_dir=tmp_path / "c")
    assert len(ds) == 7 and len(ds.classes) == 35 and ds[6][1] == y[6] % 35


def test_spoken_digits_with_root_override(tmp_path, shd_tools):
    make_samples, write = shd_tools
    t, u, y, s = make_samples(30, seed=6)
    write(tmp_path / "spoken_digits_train.h5", t, u, y, s)
    write(tmp_path / "spoken_digits_test.h5", t[:5], u[:5], y[:5], s[:5])
    tr = SpokenDigits("train", root=tmp_path, cache_dir=tmp_path / "c")
    va = SpokenDigits("valid", root=tmp_path, cache_dir=tmp_path / "c")
    te = SpokenDigits("test", root=tmp_path, cache_dir=tmp_path / "c")
    assert len(tr) + len(va) == 30 and len(te) == 5 and len(tr.classes) == 20
    assert set(tr.speakers).isdisjoint(va.speakers)
    with pytest.raises(FileNotFoundError, match="make-digits"):
        SpokenDigits("test", root=tmp_path / "none")
