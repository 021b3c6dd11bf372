"""``snn data``: encode WAV folders, make-digits on a tiny config, info, help and error exits."""
from __future__ import annotations

import shutil

import h5py
import numpy as np
import pytest
from scipy.io import wavfile

from snn.cli.main import main


def write_tone(path, freq, rate=16000, dtype=np.int16, stereo=False, seconds=0.25):
    t = np.arange(int(seconds * rate)) / rate
    x = 0.3 * np.sin(2 * np.pi * freq * t)
    if dtype == np.int16:
        x = np.round(x * 32767).astype(np.int16)
    else:
        x = x.astype(dtype)
    if stereo:
        x = np.stack([x, x], axis=1)
    path.parent.mkdir(parents=True, exist_ok=True)
    wavfile.write(path, rate, x)
    return path


def test_encode_labels_from_folder_names(tmp_path, capsys):
    files = [
        write_tone(tmp_path / "low" / "a.wav", 300),
        write_tone(tmp_path / "high" / "b.wav", 3000, dtype=np.float32),
        write_tone(tmp_path / "low" / "c.wav", 320, rate=8000, stereo=True),
    ]
    out = tmp_path / "out.h5"
    rc = main(["data", "encode", *map(str, files), "--out", str(out), "--labels-from", "dirname", "--channels", "100"])
    assert rc == 0 and "3 samples" in capsys.readouterr().out
    with h5py.File(out, "r") as f:
        assert [k.decode() for k in f["extra/keys"][()]] == ["high", "low"]
        np.testing.assert_array_equal(f["labels"][()], [1, 0, 1])
        units = f["spikes/units"][()]
        times = f["spikes/times"][()]
    assert all(len(u) > 0 for u in units)
    # the 3 kHz tone sits on higher channels than the 300 Hz tones
    assert np.median(units[1]) > np.median(units[0]) + 20
    assert max(t.max() for t in times) <= 0.26


def test_encode_with_fixed_label_and_resampling(tmp_path):
    wav = write_tone(tmp_path / "x.wav", 1000, rate=22050)
    out = tmp_path / "out.h5"
    rc = main(["data", "encode", str(wav), "--out", str(out), "--label", "2", "--sample-rate", "16000",
               "--channels", "50", "--times-dtype", "float32"])
    assert rc == 0
    with h5py.File(out, "r") as f:
        assert f["labels"][()].tolist() == [2]
        assert len(f["extra/keys"]) == 3
        assert h5py.check_vlen_dtype(f["spikes/times"].dtype) == np.float32


def test_encode_missing_file_exits_with_2(tmp_path, capsys):
    rc = main(["data", "encode", str(tmp_path / "nope.wav"), "--out", str(tmp_path / "o.h5")])
    assert rc == 2 and "nope.wav" in capsys.readouterr().err
    assert not (tmp_path / "o.h5").exists()


def test_info_prints_the_summary(tmp_path, capsys):
    wav = write_tone(tmp_path / "x.wav", 500)
    out = tmp_path / "out.h5"
    assert main(["data", "encode", str(wav), "--out", str(out), "--channels", "40"]) == 0
    capsys.readouterr()
    assert main(["data", "info", str(out)]) == 0
    text = capsys.readouterr().out
    with h5py.File(out, "r") as f:  # the numbers, read independently of the summary code
        units = f["spikes/units"][0]
        n_spikes = len(units)
    fields = {line[:19].strip(): line[19:].strip() for line in text.splitlines() if line[:19].strip()}
    assert fields["samples"] == "1" and fields["classes"] == "1"
    assert fields["spikes/sample"].startswith(f"mean {n_spikes} ")
    assert fields["channels used"] == f"{len(set(units.tolist()))} (ids {units.min()}..{units.max()})"
    assert main(["data", "info", str(tmp_path / "missing.h5")]) == 2


def test_help_texts(capsys):
    for argv in (["data", "--help"], ["data", "make-digits", "--help"], ["data", "encode", "--help"]):
        with pytest.raises(SystemExit) as exc:
            main(argv)
        assert exc.value.code == 0
    out = capsys.readouterr().out
    assert "make-digits" in out and "--labels-from" in out and "--seed" in out
    assert main(["data"]) == 2


def test_make_digits_rejects_bad_classes(tmp_path, capsys):
    assert main(["data", "make-digits", "--out", str(tmp_path), "--classes", "0,x"]) == 2
    assert main(["data", "make-digits", "--out", str(tmp_path), "--classes", "0,25"]) == 2
    assert "classes" in capsys.readouterr().err


@pytest.mark.skipif(shutil.which("espeak-ng") is None, reason="espeak-ng is not installed")
@pytest.mark.slow
def test_make_digits_writes_both_splits(tmp_path, capsys):
    rc = main(["data", "make-digits", "--out", str(tmp_path), "--seed", "1", "--voices", "2", "--repeats", "1",
               "--classes", "3,13", "--test-fraction", "0.5", "--jobs", "1", "--quiet"])
    assert rc == 0
    with h5py.File(tmp_path / "spoken_digits_train.h5", "r") as tr, h5py.File(tmp_path / "spoken_digits_test.h5", "r") as te:
        assert sorted(tr["labels"][()].tolist()) == [3, 13] and sorted(te["labels"][()].tolist()) == [3, 13]
        assert set(tr["extra/speaker"][()].tolist()).isdisjoint(te["extra/speaker"][()].tolist())
        assert len(tr["extra/keys"]) == 20
