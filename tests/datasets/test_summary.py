import numpy as np

from snn.datasets import SHD, SpikeTrainH5, ToFrames, summarize
from snn.datasets.summary import spike_statistics


def test_summary_of_path_reports_counts_durations_spikes_channels(shd_file):
    path, (times, units, labels, speakers) = shd_file
    text = summarize(path)
    n_spikes = np.array([t.size for t in times])
    assert f"samples            {len(times)}" in text
    assert f"max {n_spikes.max()}" in text and f"min {n_spikes.min()}" in text
    assert f"channels used      {np.unique(np.concatenate(units)).size}" in text
    counts = np.bincount(labels, minlength=20)
    assert f"  digit-3   {counts[3]}\n" in text  # names padded to the longest (digit-19)
    assert "classes            20" in text


def test_spike_statistics_follow_dataset_indices(tmp_path, shd_tools):
    make_samples, write = shd_tools
    t, u, y, s = make_samples(30, seed=9)
    write(tmp_path / "shd_train.h5", t, u, y, s)
    va = SHD(tmp_path, "valid", frames=None)
    st = spike_statistics(va)
    np.testing.assert_array_equal(st["spikes"], [t[j].size for j in va.indices])
    np.testing.assert_allclose(st["duration_s"], [t[j].max() for j in va.indices])
    assert st["counts"].sum() == len(va)


def test_summary_of_frames_dataset(shd_file, cache_dir):
    path, (times, _, _, _) = shd_file
    ds = SpikeTrainH5(path, frames=ToFrames(pool=5), cache_dir=cache_dir)

    class Frames:  # a plain frames dataset (not SpikeTrainH5)
        classes = ds.classes

        def __len__(self):
            return len(ds)

        def __getitem__(self, i):
            return ds[i]

    text = summarize(Frames())
    assert "duration (steps)" in text and f"max {max(t.size for t in times)}" in text
