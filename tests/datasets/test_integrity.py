"""A damaged HDF5 heap fails fast instead of hanging libhdf5; published files are checked against their archive."""
from __future__ import annotations

import gzip
import hashlib
import subprocess
import sys
import zipfile

import numpy as np
import pytest

from snn.datasets import integrity
from snn.datasets.integrity import heap_problems, published_checksums, published_problems, verify_h5


def _zero_block_in_heap(path, out):
    """Copy ``path`` to ``out`` with 4 KiB zeroed inside its largest global heap collection (the spike arrays)."""
    raw = bytearray(path.read_bytes())
    starts = [i for i in range(len(raw) - 4) if raw[i:i + 4] == b"GCOL"]
    sizes = [int.from_bytes(raw[s + 8:s + 16], "little") for s in starts]
    start, size = max(zip(starts, sizes), key=lambda p: p[1])
    assert size > 3 * 4096, "the test file's heap is too small to hold a zeroed block"
    at = start + size // 3
    raw[at:at + 4096] = bytes(4096)
    out.write_bytes(bytes(raw))
    return out


@pytest.fixture
def big_file(tmp_path, shd_tools):
    make_samples, write_shd_file = shd_tools
    times, units, labels, speakers = make_samples(80, seed=3, max_events=400)
    return write_shd_file(tmp_path / "src.h5", times, units, labels, speakers)


_OPEN = """
import sys
from snn.datasets import SpikeTrainH5
try:
    ds = SpikeTrainH5(sys.argv[1], frames=None, cache=False, cache_dir=sys.argv[2])
    [ds[i] for i in range(len(ds))]
except Exception as err:
    print(type(err).__name__, err)
    sys.exit(1)
print("read everything")
"""


def test_a_zeroed_block_in_the_heap_fails_instead_of_hanging(big_file, tmp_path):
    bad = _zero_block_in_heap(big_file, tmp_path / "bad.h5")
    assert heap_problems(big_file) == []
    assert "loop forever" in heap_problems(bad)[0]
    # the loader, in a child process so that a hang fails the test instead of stalling the suite
    out = subprocess.run([sys.executable, "-c", _OPEN, str(bad), str(tmp_path / "cache")], capture_output=True,
                         text=True, timeout=120)
    assert out.returncode == 1 and "DatasetFormatError" in out.stdout and "bad.h5" in out.stdout, out
    ok = subprocess.run([sys.executable, "-c", _OPEN, str(big_file), str(tmp_path / "cache")], capture_output=True,
                        text=True, timeout=120)
    assert ok.stdout.strip() == "read everything", ok


def test_published_checksums_are_tonics():
    import tonic.datasets

    table = published_checksums()
    assert table["shd_train.h5"] == ("shd_train.h5.zip", tonic.datasets.SHD.train_md5)
    assert table["ssc_valid.h5"] == ("ssc_valid.h5.zip", tonic.datasets.SSC.valid_md5)
    assert len(table) == 5


def _publish(h5, monkeypatch):
    """Zip ``h5`` as tonic's download would be, and pretend that archive's MD5 is the published one."""
    archive = h5.parent / f"{h5.name}.zip"
    with zipfile.ZipFile(archive, "w", compression=zipfile.ZIP_DEFLATED) as zf:
        zf.write(h5, h5.name)
    md5 = hashlib.md5(archive.read_bytes()).hexdigest()
    monkeypatch.setattr(integrity, "published_checksums", lambda: {h5.name: (archive.name, md5)})
    return archive


def test_a_published_file_is_checked_against_its_archive_once(big_file, tmp_path, monkeypatch):
    h5 = big_file.rename(tmp_path / "shd_train.h5")
    _publish(h5, monkeypatch)
    assert published_problems(h5) == ([], f"{h5}.zip (published MD5 {integrity.published_checksums()[h5.name][1]})")
    records = tmp_path / "records"
    assert verify_h5(h5, records) == []
    assert len(list((records / "verified").iterdir())) == 1

    def no_rehash(*args):
        raise AssertionError("hashed again")

    monkeypatch.setattr(integrity, "_digest", no_rehash)
    monkeypatch.setattr(integrity, "heap_problems", no_rehash)
    assert verify_h5(h5, records) == []  # remembered


def test_a_file_that_differs_from_its_published_archive_is_reported(big_file, tmp_path, monkeypatch):
    h5 = big_file.rename(tmp_path / "shd_train.h5")
    _publish(h5, monkeypatch)
    raw = bytearray(h5.read_bytes())
    raw[len(raw) // 2] ^= 0x10  # one bit, anywhere
    h5.write_bytes(bytes(raw))
    problems, _ = published_problems(h5)
    assert len(problems) == 1 and "differs from the published file" in problems[0]
    (tmp_path / "shd_train.h5.zip").write_bytes(b"PK" + bytes(100))
    assert "fails the published MD5" in published_problems(h5)[0][0]


def test_a_gzip_download_beside_the_file_vouches_for_it(big_file, tmp_path, monkeypatch):
    h5 = big_file.rename(tmp_path / "shd_test.h5")
    monkeypatch.setattr(integrity, "published_checksums", lambda: {h5.name: ("shd_test.h5.zip", "0" * 32)})
    with gzip.open(tmp_path / "shd_test.h5.gz", "wb") as g:
        g.write(h5.read_bytes())
    assert published_problems(h5)[0] == []
    raw = bytearray(h5.read_bytes())
    raw[100] ^= 1
    h5.write_bytes(bytes(raw))
    assert "differs from the published file" in published_problems(h5)[0][0]


def test_files_without_an_archive_and_other_files_pass_on_structure_alone(big_file, tmp_path):
    assert published_problems(big_file) == ([], "not a published file")
    h5 = big_file.rename(tmp_path / "ssc_test.h5")
    assert published_problems(h5) == ([], "no archive beside it")
    assert verify_h5(h5, None) == []
    empty = tmp_path / "empty.h5"
    empty.write_bytes(b"")
    assert heap_problems(empty) == ["the file is empty"]
    assert np.isscalar(len(heap_problems(h5)))


def test_a_chance_gcol_in_spike_data_is_not_a_collection_but_a_real_header_is_checked(tmp_path):
    rng = np.random.default_rng(0)
    chance = tmp_path / "chance.bin"
    chance.write_bytes(rng.bytes(100) + b"GCOL\x01\x07\x00\x00" + rng.bytes(200))  # reserved bytes not zero
    assert heap_problems(chance) == []
    cut = tmp_path / "cut.bin"
    cut.write_bytes(rng.bytes(100) + b"GCOL\x01\x00\x00\x00" + (4096).to_bytes(8, "little") + rng.bytes(200))
    assert "truncated or corrupt" in heap_problems(cut)[0]
