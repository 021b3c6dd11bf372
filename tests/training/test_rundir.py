"""Run folders: a non-empty folder is refused, the lock excludes a second run, racing runs never mix."""
from __future__ import annotations

import json
import os
import socket
import subprocess
import sys
import time

import pytest

from snn.training.rundir import (LOCK_NAME, RunDirLock, RunDirLockedError, RunDirNotEmptyError, claim_run_dir,
                                 prepare_run_dir)


def _previous_run(folder):
    folder.mkdir(parents=True, exist_ok=True)
    for name in ("config.yaml", "metrics.csv", "last.pt", "best.pt"):
        (folder / name).write_text(f"old {name}")
    (folder / "plots").mkdir()
    (folder / "plots" / "curves.png").write_bytes(b"png")
    (folder / "energy_loihi.json").write_text("{}")  # written by `snn energy RUN`


def test_an_existing_run_is_refused_with_how_to_resume_or_pick_another_folder(tmp_path):
    run = tmp_path / "run"
    _previous_run(run)
    with pytest.raises(RunDirNotEmptyError) as info:
        prepare_run_dir(run)
    msg = str(info.value)
    assert str(run) in msg and "--resume" in msg and "--out" in msg and "--overwrite" in msg
    assert (run / "last.pt").read_text() == "old last.pt"  # nothing touched


def test_a_folder_with_foreign_files_is_refused_without_a_resume_hint(tmp_path):
    (tmp_path / "notes.txt").write_text("mine")
    with pytest.raises(RunDirNotEmptyError) as info:
        prepare_run_dir(tmp_path)
    assert "notes.txt" in str(info.value) and "--resume" not in str(info.value)


def test_overwrite_deletes_the_old_runs_outputs_only(tmp_path):
    run = tmp_path / "run"
    _previous_run(run)
    (run / "notes.txt").write_text("mine")
    prepare_run_dir(run, overwrite=True)
    assert sorted(p.name for p in run.iterdir()) == ["notes.txt"]


def test_empty_missing_and_resumed_folders_are_accepted(tmp_path):
    assert prepare_run_dir(tmp_path / "new").is_dir()
    (tmp_path / "empty").mkdir()
    prepare_run_dir(tmp_path / "empty")
    run = tmp_path / "run"
    _previous_run(run)
    assert prepare_run_dir(run, resume=True) == run
    with pytest.raises(FileNotFoundError, match="no last.pt"):
        prepare_run_dir(tmp_path / "empty", resume=True)
    with pytest.raises(ValueError, match="exclude each other"):
        prepare_run_dir(run, resume=True, overwrite=True)


def test_stale_checkpoint_temps_do_not_make_a_folder_non_empty_and_are_removed(tmp_path):
    proc = subprocess.Popen([sys.executable, "-c", "pass"])
    proc.wait()
    from snn.atomic import _host

    leak = tmp_path / f".last.pt.{proc.pid}-{_host()}.abcd1234.tmp"
    leak.write_bytes(b"half a checkpoint")
    prepare_run_dir(tmp_path)
    assert not leak.exists()


def test_the_lock_names_its_holder_and_is_released_after_use(tmp_path):
    with RunDirLock(tmp_path) as lock:
        assert lock.locked
        record = json.loads((tmp_path / LOCK_NAME).read_text())
        assert record["pid"] == os.getpid() and record["host"] == socket.gethostname()
        with pytest.raises(RunDirLockedError) as info:  # a second open file description, as another process has
            RunDirLock(tmp_path).acquire()
        assert f"pid {os.getpid()}" in str(info.value) and socket.gethostname() in str(info.value)
    assert not lock.locked
    with RunDirLock(tmp_path):  # free again
        pass
    prepare_run_dir(tmp_path)  # the lock file alone does not make the folder non-empty


def test_claim_releases_the_lock_when_the_folder_is_refused(tmp_path):
    _previous_run(tmp_path)
    with pytest.raises(RunDirNotEmptyError):
        claim_run_dir(tmp_path)
    RunDirLock(tmp_path).acquire().release()


def _wait_until_ready(folder, tags, timeout=180.0):
    """Both racers have imported everything and wait for the start signal: the race is the lock, not start-up."""
    end = time.monotonic() + timeout
    while not all((folder / f"ready-{t}").exists() for t in tags):
        assert time.monotonic() < end, "a racer did not get ready"
        time.sleep(0.01)


# both racers: say "ready", wait for the start signal, claim the folder (exit code 3 on the lock error)
_START_AND_CLAIM = r"""
(go.parent / f"ready-{tag}").touch()
while not go.exists():
    time.sleep(0.001)
try:
    lock = claim_run_dir(folder)
except RunDirLockedError as err:
    print("LOCKED", err, flush=True)
    sys.exit(3)
"""

_RACER = r"""
import sys, time
from pathlib import Path
from snn.training.rundir import RunDirLockedError, claim_run_dir
folder, tag, go = Path(sys.argv[1]), sys.argv[2], Path(sys.argv[3])
""" + _START_AND_CLAIM + r"""
for name in ("config.yaml", "last.pt", "best.pt", "metrics.csv"):  # what a run writes, spread over time
    (folder / name).write_text(tag)
    time.sleep(0.2)
lock.release()
print("WON", flush=True)
"""


def test_two_runs_racing_for_one_folder_one_wins_one_gets_the_lock_error_nothing_mixed(tmp_path):
    folder, go = tmp_path / "run", tmp_path / "go"
    env = dict(os.environ, PYTHONPATH=os.pathsep.join(sys.path))
    procs = [subprocess.Popen([sys.executable, "-c", _RACER, str(folder), tag, str(go)], stdout=subprocess.PIPE,
                              stderr=subprocess.PIPE, text=True, env=env) for tag in ("A", "B")]
    _wait_until_ready(tmp_path, ("A", "B"))
    go.touch()
    outs = [p.communicate(timeout=60) for p in procs]
    codes = sorted(p.returncode for p in procs)
    assert codes == [0, 3], outs
    winner = "A" if procs[0].returncode == 0 else "B"
    loser_out = outs[1][0] if winner == "A" else outs[0][0]
    winner_pid = procs[0].pid if winner == "A" else procs[1].pid
    assert f"pid {winner_pid}" in loser_out and "--out" in loser_out
    for name in ("config.yaml", "last.pt", "best.pt", "metrics.csv"):
        assert (folder / name).read_text() == winner


_TRAINER = r"""
import sys, time
from pathlib import Path
import yaml
from snn.config import load_config
from snn.models import build_model
from snn.training import Trainer
from snn.training.data import build_datasets
from snn.training.rules import Backprop
from snn.training.rundir import RunDirLockedError, claim_run_dir
cfg, folder, go = yaml.safe_load(sys.argv[1]), Path(sys.argv[2]), Path(sys.argv[3])
c = load_config(cfg)
data = build_datasets(c.data)
model = build_model(c, data.n_inputs, data.n_classes)
tag = str(c.training.seed)
""" + _START_AND_CLAIM + r"""
with lock:
    Trainer(model, Backprop(), data.train, data.valid, config=c, run_dir=folder).fit()
print("WON", flush=True)
"""


def test_two_trainers_racing_for_one_folder_leave_one_consistent_run(tiny, tmp_path):
    import yaml

    from snn.config import load_config
    from snn.training.checkpoint import load_checkpoint

    folder, go = tmp_path / "run", tmp_path / "go"
    env = dict(os.environ, PYTHONPATH=os.pathsep.join(sys.path), OMP_NUM_THREADS="1", NUMBA_NUM_THREADS="1")
    procs = []
    for seed in (1, 2):
        cfg = tiny(training={"epochs": 2, "seed": seed})
        procs.append(subprocess.Popen([sys.executable, "-c", _TRAINER, yaml.safe_dump(cfg), str(folder), str(go)],
                                      stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True, env=env))
    _wait_until_ready(tmp_path, ("1", "2"))
    go.touch()
    outs = [p.communicate(timeout=300) for p in procs]
    assert sorted(p.returncode for p in procs) == [0, 3], outs
    winner_seed = 1 if procs[0].returncode == 0 else 2
    loser_out = outs[1 if winner_seed == 1 else 0][0]
    assert "is in use by another run: pid" in loser_out
    assert load_config(folder / "config.yaml").training.seed == winner_seed
    for name in ("last.pt", "best.pt"):
        assert load_checkpoint(folder / name)["config"]["training"]["seed"] == winner_seed
    assert load_checkpoint(folder / "last.pt")["epoch"] == 2
