import pytest

from snn.datasets import SHD, DATASETS, SpokenDigits, get_dataset


def test_registry_names_and_construction(tmp_path, shd_tools):
    assert set(DATASETS) == {"shd", "ssc", "spoken_digits", "dvs_gesture", "cifar10_dvs", "nmnist"}
    make_samples, write = shd_tools
    t, u, y, s = make_samples(10)
    write(tmp_path / "shd_test.h5", t, u, y, s)
    write(tmp_path / "spoken_digits_test.h5", t, u, y, s)
    ds = get_dataset("SHD", "test", root=str(tmp_path), cache_dir=tmp_path / "c")
    assert isinstance(ds, SHD) and len(ds) == 10
    assert isinstance(get_dataset("spoken-digits", "test", root=str(tmp_path), frames=None), SpokenDigits)
    with pytest.raises(ValueError, match="unknown dataset 'mnist'"):
        get_dataset("mnist", "train")
    with pytest.raises(ValueError, match="needs root="):
        get_dataset("ssc", "train")
    with pytest.raises(FileNotFoundError, match="ibmGestureTest"):
        get_dataset("dvs_gesture", "test", root=str(tmp_path))
