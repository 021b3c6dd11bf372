"""The ``snn`` entry point: ``python -m snn``, and one clear line plus a non-zero exit for every kind of failure."""
from __future__ import annotations

import errno
import os
import subprocess
import sys
from pathlib import Path

import h5py
import numpy as np
import pytest
import torch

from snn.cli.main import main

ENV = dict(os.environ, PYTHONPATH=os.pathsep.join(sys.path), OMP_NUM_THREADS="1")


def _snn(*args, timeout=120, **kw):
    return subprocess.run([sys.executable, "-m", "snn", *map(str, args)], capture_output=True, text=True,
                          timeout=timeout, env=ENV, **kw)


def _write(path: Path, times, units, labels, keys=None):
    with h5py.File(path, "w") as f:
        d = f.create_dataset("spikes/times", (len(times),), dtype=h5py.vlen_dtype(np.float32))
        for i, t in enumerate(times):
            d[i] = np.asarray(t, np.float32)
        d = f.create_dataset("spikes/units", (len(units),), dtype=h5py.vlen_dtype(np.uint16))
        for i, u in enumerate(units):
            d[i] = np.asarray(u).astype(np.uint16)  # -1 wraps to 65535, as a careless writer's would
        f.create_dataset("labels", data=np.asarray(labels, np.uint16))
        if keys is not None:
            f.create_dataset("extra/keys", data=np.array(keys, dtype="S"))
    return path


def _good_samples(n, seed=0):
    rng = np.random.default_rng(seed)
    times = [np.sort(rng.uniform(0, 0.5, 30)) for _ in range(n)]
    units = [rng.integers(0, 700, 30) for _ in range(n)]
    return times, units


def test_python_dash_m_snn_works_like_the_snn_command():
    out = _snn("--help")
    assert out.returncode == 0 and "train" in out.stdout and "energy" in out.stdout


def test_data_info_lists_every_invalid_sample_and_exits_non_zero(tmp_path, capsys):
    times, units = _good_samples(8)
    times[1] = times[1] - 1.0  # negative times
    times[3] = np.r_[times[3][:-1], np.nan]
    units[5] = np.r_[units[5][:-1], -1]  # channel -1, stored as 65535
    times[6], units[6] = times[6][:0], units[6][:0]  # empty sample
    path = _write(tmp_path / "bad.h5", times, units, [0, 1, 0, 1, 0, 1, 0, 1])
    assert main(["data", "info", str(path)]) == 1
    err = capsys.readouterr().err
    assert "4 problems:" in err
    for needle in ("sample 1 has negative spike times", "sample 3 has non-finite spike times",
                   "sample 5 has channel id 65535 outside [0, 700) (a -1 written as uint16 reads as 65535)",
                   "sample 6 has no spikes"):
        assert needle in err
    assert "Traceback" not in err


def test_data_info_holds_a_file_named_like_shd_to_shds_classes_and_durations(tmp_path, capsys):
    times, units = _good_samples(6)
    times[2] = times[2] * 1000  # milliseconds
    path = _write(tmp_path / "shd_test.h5", times, units, [0, 1, 25, 0, 1, 2])
    assert main(["data", "info", str(path)]) == 1
    err = capsys.readouterr().err
    assert "sample 2 has label 25, but the dataset has 20 classes" in err
    assert "sample 2 lasts" in err and "times look like milliseconds" in err


def test_data_info_on_a_valid_file_prints_the_summary(tmp_path, capsys):
    path = _write(tmp_path / "ok.h5", *_good_samples(6), [0, 1, 2, 0, 1, 2], keys=["a", "b", "c"])
    assert main(["data", "info", str(path)]) == 0
    assert "samples            6" in capsys.readouterr().out


def test_data_info_on_random_bytes_is_one_line(tmp_path):
    path = tmp_path / "noise.h5"
    path.write_bytes(np.random.default_rng(0).bytes(10000))
    out = _snn("data", "info", path)
    assert out.returncode == 1 and "Traceback" not in out.stderr
    assert len(out.stderr.strip().splitlines()) == 1 and "cannot be read as HDF5" in out.stderr


def test_data_info_on_a_damaged_heap_reports_instead_of_hanging(tmp_path):
    times, units = _good_samples(80)
    path = _write(tmp_path / "heap.h5", times, units, np.arange(80) % 3)
    raw = bytearray(path.read_bytes())
    gcols = [i for i in range(len(raw) - 4) if raw[i:i + 4] == b"GCOL"]
    big = max(gcols, key=lambda s: int.from_bytes(raw[s + 8:s + 16], "little"))
    raw[big + 2048:big + 2048 + 4096] = bytes(4096)
    path.write_bytes(bytes(raw))
    out = _snn("data", "info", path, timeout=120)
    assert out.returncode == 1 and "loop forever" in out.stderr and "Traceback" not in out.stderr


def test_energy_on_random_bytes_is_one_line(tmp_path):
    path = tmp_path / "model.pt"
    path.write_bytes(np.random.default_rng(1).bytes(5000))
    out = _snn("energy", path, "--data", path)
    assert out.returncode == 2 and "Traceback" not in out.stderr
    assert len(out.stderr.strip().splitlines()) == 1 and "cannot be read" in out.stderr


def test_energy_on_wrongly_shaped_data_is_one_line(tmp_path, capsys):
    model = torch.nn.Sequential(torch.nn.Linear(12, 5))
    torch.save(model, tmp_path / "model.pt")
    torch.save(torch.rand(12), tmp_path / "flat.pt")
    assert main(["energy", str(tmp_path / "model.pt"), "--trust-checkpoint", "--data", str(tmp_path / "flat.pt")]) == 2
    err = capsys.readouterr().err
    assert "batch 0 must hold a non-empty real tensor x [T, B, ...]" in err and "shape [12]" in err
    torch.save(torch.rand(4, 3, 7), tmp_path / "wide.pt")  # right rank, wrong channel count
    assert main(["energy", str(tmp_path / "model.pt"), "--trust-checkpoint", "--data", str(tmp_path / "wide.pt")]) == 2
    err = capsys.readouterr().err
    assert err.count("\n") == 1 and "the model cannot run on this data" in err


def test_a_full_disk_is_one_line_and_exit_code_1(monkeypatch, capsys, tmp_path):
    import snn.datasets.summary as summary

    def full(*args, **kwargs):
        raise OSError(errno.ENOSPC, os.strerror(errno.ENOSPC), str(tmp_path / "out.h5"))

    monkeypatch.setattr(summary, "validate_file", full)
    path = _write(tmp_path / "ok.h5", *_good_samples(2), [0, 1])
    assert main(["data", "info", str(path)]) == 1
    err = capsys.readouterr().err
    assert err.startswith("snn data: error: no space left on the device") and "out.h5" in err and err.count("\n") == 1


def test_ctrl_c_is_one_line_and_exit_code_130(monkeypatch, capsys, tmp_path):
    import snn.datasets.summary as summary

    def interrupted(*args, **kwargs):
        raise KeyboardInterrupt

    monkeypatch.setattr(summary, "validate_file", interrupted)
    path = _write(tmp_path / "ok.h5", *_good_samples(2), [0, 1])
    assert main(["data", "info", str(path)]) == 130
    assert capsys.readouterr().err.strip() == "snn data: interrupted"


def test_a_closed_pipe_is_one_line_not_a_traceback(tmp_path):
    n = 3000  # a summary longer than a pipe's buffer: one class line each
    times, units = _good_samples(n)
    keys = [f"class-{i:05d}-" + "x" * 100 for i in range(n)]
    path = _write(tmp_path / "many.h5", times, units, np.arange(n), keys=keys)
    proc = subprocess.Popen([sys.executable, "-m", "snn", "data", "info", str(path)], stdout=subprocess.PIPE,
                            stderr=subprocess.PIPE, text=True, env=ENV)
    assert proc.stdout.readline().startswith("file")
    proc.stdout.close()  # `| head -1`
    err = proc.stderr.read()
    assert proc.wait(timeout=120) == 141
    assert "Traceback" not in err and err.strip() == "snn data: output closed (broken pipe)"


@pytest.mark.parametrize("flag", ["--overwrite", "--trust-checkpoint"])
def test_train_has_the_safety_flags(flag):
    from snn.cli.main import build_parser

    assert flag in build_parser()._subparsers._group_actions[0].choices["train"].format_help()
