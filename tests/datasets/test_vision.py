
import numpy as np
import pytest
import tonic  # a required dependency: imported plainly, never skipped
import torch
from torch.utils.data import DataLoader

from snn.datasets.collate import pad_collate
from snn.datasets.vision import CIFAR10DVS, NMNIST, DVSGesture, EventFramesDataset, ToFrames2D, bin_events_2d

DT = np.dtype([("t", np.int64), ("x", np.int64), ("y", np.int64), ("p", np.int64)])


def fake_events(n, seed, W=8, H=6, t_max=50_000):
    rng = np.random.default_rng(seed)
    ev = np.zeros(n, dtype=DT)
    ev["t"] = np.sort(rng.integers(1000, t_max, n))
    ev["x"], ev["y"], ev["p"] = rng.integers(0, W, n), rng.integers(0, H, n), rng.integers(0, 2, n)
    return ev


class FakeSource:
    """A tiny event source with the tonic interface (len, getitem → (events, label))."""

    def __init__(self, n=6):
        self.items = [(fake_events(200 + 10 * i, i), i % 3) for i in range(n)]
        self.reads = 0

    def __len__(self):
        return len(self.items)

    def __getitem__(self, i):
        self.reads += 1
        return self.items[i]


def loop_ref(ev, W, H, P, n_frames):
    t0 = ev["t"].min()
    w = max((ev["t"].max() - t0) // n_frames, 1)
    out = np.zeros((n_frames, P, H, W))
    for e in ev:
        k = (e["t"] - t0) // w
        if k < n_frames:
            out[k, e["p"], e["y"], e["x"]] += 1
    return out


def test_bin_events_2d_matches_loop_reference():
    ev = fake_events(500, 1)
    np.testing.assert_array_equal(bin_events_2d(ev, (8, 6, 2), n_frames=7), loop_ref(ev, 8, 6, 2, 7))
    f = bin_events_2d(ev, (8, 6, 2), dt_ms=5.0)
    assert f.shape[1:] == (2, 6, 8) and f.sum() == 500 and f.shape[0] == (ev["t"].max() - ev["t"].min()) // 5000 + 1


@pytest.mark.peers
def test_bin_events_2d_matches_tonic_to_frame():
    ev = fake_events(800, 2)
    ref = tonic.transforms.ToFrame(sensor_size=(8, 6, 2), n_time_bins=5)(ev.copy())
    np.testing.assert_array_equal(bin_events_2d(ev, (8, 6, 2), n_frames=5), ref)


def test_out_of_sensor_events_are_rejected():
    ev = fake_events(10, 3)
    ev["x"][4] = 8
    with pytest.raises(ValueError, match="outside sensor_size"):
        bin_events_2d(ev, (8, 6, 2), n_frames=2)
    with pytest.raises(ValueError, match="exactly one"):
        ToFrames2D((8, 6, 2))


def test_event_frames_cache_reads_source_once_and_rebuilds_when_corrupt(tmp_path):
    src = FakeSource()
    frames = ToFrames2D((8, 6, 2), n_frames=4)
    ds = EventFramesDataset(src, frames, identity="fake-v1", name="fake", cache_dir=tmp_path)
    assert src.reads == 6
    for i in range(6):
        x, y = ds[i]
        assert x.shape == (4, 2, 6, 8) and x.dtype == torch.float32 and y == i % 3
        np.testing.assert_array_equal(x.numpy(), bin_events_2d(src.items[i][0], (8, 6, 2), n_frames=4))
    assert src.reads == 6  # items came from the cache
    ds2 = EventFramesDataset(src, frames, identity="fake-v1", name="fake", cache_dir=tmp_path)
    assert src.reads == 6
    other = EventFramesDataset(src, ToFrames2D((8, 6, 2), n_frames=5), identity="fake-v1", name="fake", cache_dir=tmp_path)
    assert other.cache_path() != ds2.cache_path() and src.reads == 12
    raw = bytearray(ds.cache_path().read_bytes())
    raw[4096 + 10] ^= 0x7F
    ds.cache_path().write_bytes(bytes(raw))
    with pytest.warns(RuntimeWarning, match="rebuilding"):
        ds3 = EventFramesDataset(src, frames, identity="fake-v1", name="fake", cache_dir=tmp_path)
    np.testing.assert_array_equal(ds3[0][0].numpy(), bin_events_2d(src.items[0][0], (8, 6, 2), n_frames=4))
    x, y, lengths = next(iter(DataLoader(ds3, batch_size=3, num_workers=0, collate_fn=pad_collate)))
    assert x.shape == (4, 3, 2, 6, 8) and lengths.tolist() == [4, 4, 4]


@pytest.mark.parametrize("cls,archive", [(DVSGesture, "ibmGestureTrain.tar.gz"), (NMNIST, "train.zip"),
                                         (CIFAR10DVS, "CIFAR10DVS.zip")])
def test_missing_vision_dataset_error_is_clear_and_does_not_download(tmp_path, cls, archive):
    with pytest.raises(FileNotFoundError) as err:
        cls(tmp_path, "train")
    msg = str(err.value)
    assert archive in msg and str(tmp_path) in msg and "download=True" in msg
    assert not any(tmp_path.iterdir())  # nothing was fetched or created


def test_a_flipped_cached_label_is_rebuilt_not_used(tmp_path):
    src = FakeSource()
    frames = ToFrames2D((8, 6, 2), n_frames=4)
    ds = EventFramesDataset(src, frames, identity="fake-v1", name="fake", cache_dir=tmp_path)
    raw = bytearray(ds.cache_path().read_bytes())
    labels_at = len(raw) - 8 * 6
    assert raw[labels_at + 8 * 2] == 2  # label of item 2
    raw[labels_at + 8 * 2] = 1
    ds.cache_path().write_bytes(bytes(raw))
    with pytest.warns(RuntimeWarning, match="rebuilding"):
        again = EventFramesDataset(src, frames, identity="fake-v1", name="fake", cache_dir=tmp_path)
    assert [again[i][1] for i in range(6)] == [i % 3 for i in range(6)]
