"""Cochlear front end: tonotopy, level dependence, silence, determinism, calibration and input checks."""
from __future__ import annotations

import numpy as np
import pytest
from scipy import signal

from snn.datasets import cochlea

FS = 16000


def tone(freq: float, db: float, duration: float = 0.3, fs: int = FS) -> np.ndarray:
    t = np.arange(int(duration * fs)) / fs
    return 10 ** (db / 20) * np.sin(2 * np.pi * freq * t)


def test_erb_space_is_ascending_and_hits_the_end_points():
    fc = cochlea.erb_space(50.0, 7000.0, 700)
    assert fc.shape == (700,)
    assert fc[0] == pytest.approx(50.0) and fc[-1] == pytest.approx(7000.0)
    assert np.all(np.diff(fc) > 0)
    # equal steps on the ERB-number scale: more channels per Hz at low frequencies
    assert np.diff(fc)[0] < np.diff(fc)[-1]


@pytest.mark.parametrize("fs", [8000, 16000, 44100])
def test_filterbank_is_stable_with_unit_gain_at_the_centre_frequency(fs):
    f_max = 0.45 * fs
    sos = cochlea.filterbank_sos(fs, 50.0, f_max, 64)
    fc = cochlea.erb_space(50.0, f_max, 64)
    for c in (0, 31, 63):
        _, poles, _ = signal.sos2zpk(np.array(sos[c]))
        assert np.abs(poles).max() < 1.0
        _, h = signal.sosfreqz(np.array(sos[c]), worN=[fc[c], 2 * fc[c]], fs=fs)
        assert abs(h[0]) == pytest.approx(1.0, rel=1e-9)
        assert abs(h[1]) < 0.5  # an octave above the centre the channel is attenuated


@pytest.mark.parametrize("freq", [250.0, 1000.0, 4000.0])
def test_a_pure_tone_drives_the_channels_tuned_to_it(freq):
    t, u = cochlea.encode(tone(freq, -20), FS, n_channels=200, f_max=7000.0)
    fc = cochlea.erb_space(50.0, 7000.0, 200)
    assert len(u) > 50
    assert abs(np.log2(np.median(fc[u]) / freq)) < 0.15
    near = np.abs(np.log2(fc[u] / freq)) < 0.5  # within half an octave
    assert near.mean() > 0.9


def test_louder_input_gives_more_spikes():
    counts = [len(cochlea.encode(tone(1000, db), FS, n_channels=100)[0]) for db in (-35, -25, -15)]
    assert 0 < counts[0] < counts[1] < counts[2]


def test_silence_gives_no_spikes():
    t, u = cochlea.encode(np.zeros(FS // 2), FS, n_channels=100)
    assert t.size == 0 and u.size == 0
    t, u = cochlea.encode(np.zeros(FS // 2), FS, n_channels=100, rms_level=0.05)
    assert t.size == 0


def test_threshold_db_is_the_level_of_a_centre_frequency_sine_that_starts_firing():
    fc = cochlea.erb_space(50.0, 7000.0, 50)[30]
    below = cochlea.encode(tone(fc, -41.0, 0.5), FS, n_channels=50, f_max=7000.0, threshold_db=-40.0)[0]
    above = cochlea.encode(tone(fc, -38.0, 0.5), FS, n_channels=50, f_max=7000.0, threshold_db=-40.0)[0]
    assert below.size == 0 and above.size > 0


def test_encode_is_deterministic_and_sorted():
    rng = np.random.default_rng(0)
    x = 0.05 * rng.standard_normal(FS // 4)
    t1, u1 = cochlea.encode(x, FS, n_channels=80)
    t2, u2 = cochlea.encode(x, FS, n_channels=80)
    np.testing.assert_array_equal(t1, t2)
    np.testing.assert_array_equal(u1, u2)
    assert t1.size > 0 and np.all(np.diff(t1) >= 0)
    assert u1.min() >= 0 and u1.max() < 80 and t1.max() < 0.25
    # spikes fall on the sample grid
    np.testing.assert_allclose(t1 * FS, np.round(t1 * FS), atol=1e-6)


def test_integer_input_is_scaled_to_full_scale_and_rms_level_normalises():
    x = tone(800, -20)
    pcm = np.round(x * 32767).astype(np.int16)
    ti, ui = cochlea.encode(pcm, FS, n_channels=60)
    tf, uf = cochlea.encode(pcm / 32767.0, FS, n_channels=60)
    np.testing.assert_array_equal(ti, tf)
    np.testing.assert_array_equal(ui, uf)
    quiet = cochlea.encode(0.1 * x, FS, n_channels=60, rms_level=0.05)
    loud = cochlea.encode(10 * x, FS, n_channels=60, rms_level=0.05)
    np.testing.assert_allclose(quiet[0], loud[0])
    np.testing.assert_array_equal(quiet[1], loud[1])


def test_longer_refractory_period_caps_the_rate():
    x = tone(1000, -10, 0.5)
    t, u = cochlea.encode(x, FS, n_channels=40, refractory=0.02)
    busy = [c for c in np.unique(u) if np.sum(u == c) >= 2]
    assert busy
    for c in busy:
        assert np.diff(t[u == c]).min() >= 0.02 - 1e-9


@pytest.mark.parametrize(
    "kwargs, match",
    [
        (dict(waveform=np.zeros((2, 100))), "1-D"),
        (dict(sample_rate=0), "sample_rate"),
        (dict(sample_rate=-16000), "sample_rate"),
        (dict(sample_rate=16000.0), "sample_rate"),
        (dict(waveform=np.array([0.0, np.nan, 0.0])), "NaN"),
        (dict(waveform=np.array([0.0, np.inf])), "NaN"),
        (dict(f_max=9000.0), "sample_rate / 2"),
        (dict(f_min=0.0), "f_min"),
        (dict(n_channels=0), "n_channels"),
        (dict(compression=0.0), "compression"),
        (dict(tau=-1.0), "tau"),
        (dict(refractory=-1e-3), "refractory"),
        (dict(rms_level=0.0), "rms_level"),
        (dict(threshold_db=float("nan")), "threshold_db"),
    ],
)
def test_bad_arguments_raise_value_error_naming_them(kwargs, match):
    args = dict(waveform=np.zeros(160), sample_rate=FS)
    args.update(kwargs)
    waveform = args.pop("waveform")
    sample_rate = args.pop("sample_rate")
    with pytest.raises(ValueError, match=match):
        cochlea.encode(waveform, sample_rate, **args)


def test_non_numeric_waveform_raises_type_error():
    with pytest.raises(TypeError, match="dtype"):
        cochlea.encode(np.array(["a", "b"]), FS)
