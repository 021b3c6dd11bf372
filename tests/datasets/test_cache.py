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


# ------------------------------------------------------------------ every trusted byte is checksummed
def _cache_with_gaps(tmp_path):
    """A cache whose samples 1 and 2 have different lengths, so moving their boundary swaps frames between them."""
    frames = np.arange(7 * 3 * 2, dtype=np.uint16).reshape(7, 3, 2)
    path = tmp_path / "x.frames"
    write_frame_cache(path, "k1", [(frames, np.array([2, 1, 4]), np.array([0, 1, 2]))], frame_shape=(3, 2),
                      dtype=np.uint16)
    return path, frames


_FRAMES_END = 4096 + 7 * 3 * 2 * 2  # header + frames of _cache_with_gaps; then offsets [0, 2, 3, 7], labels


def _flip_offset(raw):
    raw[_FRAMES_END + 8 * 2] ^= 0x01  # offsets[2]: 3 -> 2, still non-decreasing and ending at n_rows
    assert np.frombuffer(bytes(raw[_FRAMES_END:_FRAMES_END + 32]), np.int64).tolist() == [0, 2, 2, 7]


def _flip_label(raw):
    raw[_FRAMES_END + 8 * 4 + 8] ^= 0x04  # label of sample 1: 1 -> 5


def _edit_header(raw):
    at = raw.index(b'"n_rows": 7')
    raw[at + len('"n_rows": ')] = ord("6")  # still valid JSON, and a plausible header


def _old_format(raw):
    raw[:8] = b"SNNFRM01"


@pytest.mark.parametrize("damage,message", [(_flip_offset, "offsets or labels fail"),
                                            (_flip_label, "offsets or labels fail"),
                                            (_edit_header, "header fails"), (_old_format, "stale")])
def test_every_byte_the_reader_trusts_is_checked_on_open(tmp_path, damage, message):
    path, _ = _cache_with_gaps(tmp_path)
    raw = bytearray(path.read_bytes())
    damage(raw)
    path.write_bytes(bytes(raw))
    with pytest.raises(CacheError, match=message):
        FrameCache(path, "k1")  # even without verify=True


_KILLED_BUILDER = r"""
import sys, time
import numpy as np
from snn.datasets.cache import write_frame_cache
def chunks():
    yield np.ones((5, 3, 2), np.uint16), np.array([5]), np.array([1])
    print("half written", flush=True)
    time.sleep(120)
    yield np.ones((5, 3, 2), np.uint16), np.array([5]), np.array([1])
write_frame_cache(sys.argv[1], "k1", chunks(), frame_shape=(3, 2), dtype=np.uint16)
"""


def test_a_build_killed_midway_leaks_nothing_and_the_reload_is_correct(tmp_path):
    import os
    import signal
    import subprocess
    import sys

    from snn.datasets.cache import open_or_build

    path = tmp_path / "x.frames"
    env = dict(os.environ, PYTHONPATH=os.pathsep.join(sys.path))
    proc = subprocess.Popen([sys.executable, "-c", _KILLED_BUILDER, str(path)], stdout=subprocess.PIPE, text=True,
                            env=env)
    assert proc.stdout.readline().strip() == "half written"
    proc.send_signal(signal.SIGKILL)
    proc.wait()
    leaked = [p for p in tmp_path.iterdir() if p.name.startswith(".x.frames.")]
    assert len(leaked) == 1 and not path.exists()
    data = list(chunks(np.random.default_rng(2)))
    cache = open_or_build(path, "k1", lambda: iter(data), frame_shape=(3, 2), dtype=np.uint16)
    assert sorted(p.name for p in tmp_path.iterdir()) == ["x.frames"]  # the dead builder's file is gone
    rows = np.concatenate([d[0] for d in data])
    offsets = np.r_[0, np.cumsum(np.concatenate([d[1] for d in data]))]
    for i in range(len(cache)):
        np.testing.assert_array_equal(cache[i], rows[offsets[i]:offsets[i + 1]])
    np.testing.assert_array_equal(cache.labels, np.concatenate([d[2] for d in data]))


def test_open_or_build_rebuilds_a_corrupt_cache_with_a_warning(tmp_path):
    from snn.datasets.cache import open_or_build

    path, frames = _cache_with_gaps(tmp_path)
    raw = bytearray(path.read_bytes())
    _flip_label(raw)
    path.write_bytes(bytes(raw))
    data = [(frames, np.array([2, 1, 4]), np.array([0, 1, 2]))]
    with pytest.warns(RuntimeWarning, match="rebuilding frame cache"):
        cache = open_or_build(path, "k1", lambda: iter(data), frame_shape=(3, 2), dtype=np.uint16)
    assert cache.labels.tolist() == [0, 1, 2]
    np.testing.assert_array_equal(cache[1], frames[2:3])
