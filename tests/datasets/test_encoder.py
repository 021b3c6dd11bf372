"""The encoder's presets: `spoken-digits` reproduces the embedded set's chain byte for byte, settings travel in the
file, parallel encoding equals serial, and data encoded differently is warned about."""
from __future__ import annotations

import dataclasses
import json
import warnings
from pathlib import Path

import h5py
import numpy as np
import pytest
from scipy.io import wavfile

import snn.datasets
from snn.cli.main import main
from snn.datasets import spoken_digits_make
from snn.datasets.encoder import PRESETS, EncoderSettings, encode_many, encode_waveform, preset
from snn.datasets.encoding import EncodingMismatchWarning, check_compatible, encoding_of
from snn.datasets.h5_writer import write_spike_h5

RATE = 22050  # espeak-ng's rate: the spoken-digits chain resamples it to 16 kHz


def _utterance(seed: int = 0, lead_s: float = 0.2, tail_s: float = 0.15) -> np.ndarray:
    """A speech-like clip: two formant-like tones under a syllable envelope, framed by near-silence."""
    rng = np.random.default_rng(seed)
    t = np.arange(int(0.45 * RATE)) / RATE
    envelope = np.sin(np.pi * t / t[-1]) ** 2
    voiced = envelope * (0.5 * np.sin(2 * np.pi * 320 * t) + 0.3 * np.sin(2 * np.pi * 1250 * t * (1 + 0.2 * t)))
    floor = lambda n: 1e-4 * rng.standard_normal(n)  # noqa: E731  (60 dB below the speech: trimmed)
    return np.concatenate([floor(int(lead_s * RATE)), voiced + floor(t.size), floor(int(tail_s * RATE))])


def _wav(path, wave) -> str:
    wavfile.write(path, RATE, wave.astype(np.float64))  # float64 WAV: the waveform arrives bit for bit
    return str(path)


def _read(path):
    with h5py.File(path, "r") as f:
        return [t[()] for t in f["spikes/times"]], [u[()] for u in f["spikes/units"]], dict(f.attrs)


def test_default_preset_is_byte_identical_to_make_digits_for_a_clean_recording(tmp_path, monkeypatch):
    wave = _utterance()
    # make-digits' own chain on this waveform, made clean: no onset, level 0 dB, no noise (an SNR so high that
    # the noise gain underflows to exactly 0)
    monkeypatch.setattr(spoken_digits_make, "synthesize", lambda *a, **k: (wave.copy(), RATE))
    config = dataclasses.replace(spoken_digits_make.DigitsConfig(), onset_range=(0.0, 0.0), level_db=(0.0, 0.0),
                                 snr_db=(1e4, 1e4))
    voice = spoken_digits_make.Voice(speaker=0, variant="m1", english="en", german="de", speed=175.0, pitch=50.0)
    t_ref, u_ref = spoken_digits_make.render_utterance(config, voice, label=3, index=0)
    assert len(t_ref) > 100
    # the library call
    t, u = encode_waveform(wave, RATE, preset("spoken-digits"))
    assert t.tobytes() == t_ref.tobytes() and u.tobytes() == u_ref.tobytes()
    # the command line with its defaults, through the file
    out = tmp_path / "mine.h5"
    assert main(["data", "encode", _wav(tmp_path / "clip.wav", wave), "--out", str(out), "--quiet"]) == 0
    ref = write_spike_h5(tmp_path / "ref.h5", [t_ref.astype(np.float32)], [u_ref.astype(np.uint16)], [0], ["0"])
    times, units, attrs = _read(out)
    times_ref, units_ref, _ = _read(ref)
    assert times[0].tobytes() == times_ref[0].tobytes() and units[0].tobytes() == units_ref[0].tobytes()
    assert attrs["encoder_preset"] == "spoken-digits"
    assert EncoderSettings.from_json(attrs["encoder_settings"]) == PRESETS["spoken-digits"]


def test_silence_around_the_speech_is_trimmed():
    short, long = _utterance(lead_s=0.05, tail_s=0.05), _utterance(lead_s=0.6, tail_s=0.4)
    a = encode_waveform(short, RATE, preset("spoken-digits"))
    b = encode_waveform(long, RATE, preset("spoken-digits"))
    # the same speech: about the same spikes, starting at the same time after trimming (to a 5-ms frame; the
    # noise floors differ, so not bit for bit)
    assert len(a[0]) > 100 and abs(len(a[0]) - len(b[0])) < 0.05 * len(a[0])
    assert abs(a[0][0] - b[0][0]) < 0.006
    untrimmed = encode_waveform(long, RATE, dataclasses.replace(preset("spoken-digits"), trim_db=None))
    assert untrimmed[0][0] > b[0][0] + 0.4  # without trimming the first spike comes after the silence


def test_shd_like_is_denser_than_spoken_digits():
    wave = _utterance(seed=1)
    digits = encode_waveform(wave, RATE, preset("spoken-digits"))[0].size
    shd_like = encode_waveform(wave, RATE, preset("shd-like"))[0].size
    assert shd_like > 2 * digits


def test_parallel_encoding_equals_serial_and_shows_progress(tmp_path, capsys):
    files = [_wav(tmp_path / f"c{i}.wav", _utterance(seed=i) * (0.5 + 0.2 * i)) for i in range(4)]
    serial = encode_many(files, _load, preset("spoken-digits"), processes=1)
    parallel = encode_many(files, _load, preset("spoken-digits"), processes=2)
    for (t1, u1), (t2, u2) in zip(serial, parallel):
        assert t1.tobytes() == t2.tobytes() and u1.tobytes() == u2.tobytes()
    out = tmp_path / "all.h5"
    assert main(["data", "encode", *files, "--out", str(out), "--jobs", "2", "--preset", "shd-like"]) == 0
    assert "4/4" in capsys.readouterr().err  # the tqdm bar reached the end
    times, _, attrs = _read(out)
    assert len(times) == 4 and attrs["encoder_preset"] == "shd-like"


def _load(path):
    rate, data = wavfile.read(path)
    return data.astype(np.float64), int(rate)


def test_overriding_a_setting_is_recorded(tmp_path):
    out = tmp_path / "o.h5"
    wav = _wav(tmp_path / "c.wav", _utterance())
    assert main(["data", "encode", wav, "--out", str(out), "--threshold-db", "-30", "--quiet"]) == 0
    _, _, attrs = _read(out)
    assert attrs["encoder_preset"] == "spoken-digits (modified)"
    assert json.loads(attrs["encoder_settings"])["threshold_db"] == -30.0


def test_bad_preset_and_settings_are_rejected():
    with pytest.raises(ValueError, match=r"preset: expected one of \['shd-like', 'spoken-digits'\], got 'shd'"):
        preset("shd")
    with pytest.raises(ValueError, match="trim_db"):
        EncoderSettings(trim_db=3.0)
    with pytest.raises(ValueError, match="sample_rate"):
        EncoderSettings(sample_rate=0)


def test_data_encoded_differently_from_the_embedded_set_is_warned_about(tmp_path):
    embedded = Path(snn.datasets.__file__).parent / "data" / "spoken_digits_test.h5"  # ships with the package
    assert encoding_of(embedded) == PRESETS["spoken-digits"]  # read from the generator's stored config
    same = tmp_path / "same.h5"
    other = tmp_path / "other.h5"
    wav = _wav(tmp_path / "c.wav", _utterance())
    assert main(["data", "encode", wav, "--out", str(same), "--quiet"]) == 0
    assert main(["data", "encode", wav, "--out", str(other), "--preset", "shd-like", "--quiet"]) == 0
    with warnings.catch_warnings():
        warnings.simplefilter("error")
        assert check_compatible(embedded, same) == {}
    with pytest.warns(EncodingMismatchWarning, match=r"tau: 0.02 vs 0.01.*snn data encode --preset"):
        diff = check_compatible(embedded, other)
    assert set(diff) == {"threshold_db", "tau", "refractory"}
    unknown = write_spike_h5(tmp_path / "shd.h5", [np.zeros(1)], [np.zeros(1, np.uint16)], [0], ["0"])
    assert encoding_of(unknown) is None and check_compatible(embedded, unknown) == {}
