import pickle

import numpy as np
import pytest

from snn.datasets.cache import CacheError, FrameCache, cache_key, default_cache_dir, source_identity, write_frame_cache


def chunks(rng, n_chunks=3):
    for _ in range(n_chunks):
        lengths = rng.integers(1, 6, 4)
        yield rng.integers(0, 9, (int(lengths.sum()), 3, 2)).astype(np.uint16), lengths, rng.integers(0, 5, 4)


def test_round_trip_frames_offsets_labels(tmp_path):
    data = list(chunks(np.random.default_rng(0)))
    path = tmp_path / "x.frames"
    write_frame_cache(path, "k1", iter(data), frame_shape=(3, 2), dtype=np.uint16, meta={"a": 1})
    c = FrameCache(path, "k1", verify=True)
    frames = np.concatenate([d[0] for d in data])
    lengths = np.concatenate([d[1] for d in data])
    assert len(c) == 12 and c.meta == {"a": 1}
    np.testing.assert_array_equal(c.lengths, lengths)
    np.testing.assert_array_equal(c.labels, np.concatenate([d[2] for d in data]))
    rows = np.r_[0, np.cumsum(lengths)]
    for i in range(12):
        np.testing.assert_array_equal(c[i], frames[rows[i]:rows[i + 1]])
    c2 = pickle.loads(pickle.dumps(c))
    np.testing.assert_array_equal(c2[5], c[5])


def test_stale_key_truncation_and_bitflip_raise_cache_error(tmp_path):
    path = tmp_path / "x.frames"
    write_frame_cache(path, "k1", chunks(np.random.default_rng(1)), frame_shape=(3, 2), dtype=np.uint16)
    with pytest.raises(CacheError, match="stale"):
        FrameCache(path, "other")
    raw = path.read_bytes()
    path.write_bytes(raw[:-8])
    with pytest.raises(CacheError, match="truncated"):
        FrameCache(path, "k1")
    flipped = bytearray(raw)
    flipped[4096] ^= 1
    path.write_bytes(bytes(flipped))
    FrameCache(path, "k1")  # header and size still fine ...
    with pytest.raises(CacheError, match="CRC"):
        FrameCache(path, "k1", verify=True)  # ... the checksum is not


def test_failing_writer_leaves_nothing(tmp_path):
    def bad():
        yield np.zeros((2, 3, 2), np.uint16), np.array([2]), np.array([0])
        raise RuntimeError("source broke")

    with pytest.raises(RuntimeError, match="source broke"):
        write_frame_cache(tmp_path / "y.frames", "k", bad(), frame_shape=(3, 2), dtype=np.uint16)
    assert list(tmp_path.iterdir()) == []


def test_keys_and_identity(tmp_path, monkeypatch):
    f = tmp_path / "a.h5"
    f.write_bytes(b"abc")
    ident = source_identity(f)
    assert ident["size"] == 3 and cache_key(ident, {"dt": 1}) != cache_key(ident, {"dt": 2})
    assert cache_key({"a": 1, "b": 2}) == cache_key({"b": 2, "a": 1})
    monkeypatch.setenv("SNN_CACHE_DIR", str(tmp_path / "cc"))
    assert default_cache_dir() == tmp_path / "cc"
