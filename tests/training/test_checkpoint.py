"""Checkpoints: nothing executes on load, trajectory-neutral settings may differ on resume, schedules extend."""
from __future__ import annotations

import json
import os
import random
import subprocess
import sys
import warnings
from pathlib import Path

import numpy as np
import pytest
import torch

from snn.config import config_to_dict, load_config
from snn.kernels.cpu_threads import set_threads
from snn.training import run
from snn.training.checkpoint import (CheckpointMismatchError, UntrustedCheckpointError, capture_rng, check_config,
                                     load_checkpoint, load_torch_file, restore_rng, resume_scheduler, save_atomic,
                                     trust_checkpoints)


class _Payload:
    """Unpickling this runs ``open(marker, 'w')``: the shape of a malicious checkpoint."""

    def __init__(self, marker):
        self.marker = str(marker)

    def __reduce__(self):
        return (exec, (f"open({self.marker!r}, 'w').write('pwned')",))


def test_a_pickle_payload_checkpoint_is_refused_without_executing(tmp_path):
    marker = tmp_path / "pwned"
    path = tmp_path / "evil.pt"
    torch.save({"model": {"w": torch.zeros(2)}, "config": _Payload(marker)}, path)
    with pytest.raises(UntrustedCheckpointError, match=r"exec.*--trust-checkpoint"):
        load_checkpoint(path)
    assert not marker.exists()
    with pytest.raises(UntrustedCheckpointError):  # a whole pickled module is refused the same way
        torch.save(torch.nn.Linear(2, 2), tmp_path / "module.pt")
        load_torch_file(tmp_path / "module.pt")
    assert not marker.exists()


def test_trusting_a_file_is_an_explicit_opt_in(tmp_path):
    torch.save(torch.nn.Linear(2, 3), tmp_path / "module.pt")
    assert isinstance(load_torch_file(tmp_path / "module.pt", trust=True), torch.nn.Linear)
    with trust_checkpoints():
        assert isinstance(load_torch_file(tmp_path / "module.pt"), torch.nn.Linear)
    with pytest.raises(UntrustedCheckpointError):  # the opt-in ends with the block
        load_torch_file(tmp_path / "module.pt")


def test_random_bytes_are_an_unreadable_checkpoint_not_a_crash(tmp_path):
    path = tmp_path / "noise.pt"
    path.write_bytes(np.random.default_rng(0).bytes(4096))
    with pytest.raises(CheckpointMismatchError, match="cannot be read"):
        load_checkpoint(path)


def test_rng_state_and_numpy_values_round_trip_through_a_weights_only_file(tmp_path):
    random.seed(3)
    np.random.seed(4)
    np.random.standard_normal()  # leaves a cached gaussian in the state
    torch.manual_seed(5)
    state = capture_rng()
    expected = (random.random(), np.random.standard_normal(), torch.rand(1).item())
    save_atomic({"model": {}, "rng": state, "metrics": {"acc": np.float64(0.5), "n": np.int64(3)},
                 "arr": np.arange(3)}, tmp_path / "c.pt")
    ckpt = load_checkpoint(tmp_path / "c.pt")  # weights_only=True: raises if anything unsafe were inside
    assert ckpt["metrics"] == {"acc": 0.5, "n": 3} and type(ckpt["metrics"]["n"]) is int
    assert torch.equal(ckpt["arr"], torch.arange(3))
    random.seed(0), np.random.seed(0), torch.manual_seed(0)
    restore_rng(ckpt["rng"])
    assert (random.random(), np.random.standard_normal(), torch.rand(1).item()) == expected


def test_checkpoints_in_the_old_format_with_numpy_rng_state_still_load(tmp_path):
    np.random.seed(7)
    old = {"model": {"w": torch.ones(1)}, "rng": {"python": random.getstate(), "numpy": np.random.get_state(),
                                                  "torch": torch.get_rng_state(), "cuda": None, "generator": None},
           "history": [{"valid_acc": np.float64(0.25)}]}
    torch.save(old, tmp_path / "old.pt")  # as torch.save wrote them before: numpy objects inside
    ckpt = load_checkpoint(tmp_path / "old.pt")
    assert ckpt["history"][0]["valid_acc"] == 0.25
    expected = np.random.random()
    np.random.seed(0)
    restore_rng(ckpt["rng"])
    assert np.random.random() == expected


# ---------------------------------------------------------------------------------------------- config on resume
def _cfg(**training):
    return config_to_dict(load_config({"training": training}))


def test_settings_that_do_not_change_the_trajectory_may_differ():
    if torch.cuda.is_available():
        pytest.skip("auto resolves to CUDA here")
    saved = config_to_dict(load_config({"training": {"device": "auto"}, "data": {"num_workers": 0}}))
    now = config_to_dict(load_config({"training": {"device": "cpu"}, "data": {"num_workers": 4, "cache_dir": "/x"}}))
    accepted = check_config(saved, now)
    assert sorted(line.split(":")[0] for line in accepted) == ["data.cache_dir", "data.num_workers", "training.device"]


def test_thread_count_differences_are_accepted_with_a_warning():
    with pytest.warns(RuntimeWarning, match="last bits"):
        check_config(_cfg(threads=1), _cfg(threads=2))


def test_settings_that_change_the_trajectory_are_refused():
    with pytest.raises(CheckpointMismatchError, match=r"training.batch_size: 256 != 128"):
        check_config(_cfg(), _cfg(batch_size=128))
    with pytest.raises(CheckpointMismatchError, match=r"--epochs N together with --resume"):
        check_config(_cfg(epochs=5), _cfg(epochs=8))


def test_epochs_may_grow_only_when_extending_and_never_shrink():
    assert check_config(_cfg(epochs=5), _cfg(epochs=8), extend_epochs=True) == ["training.epochs: 5 != 8"]
    with pytest.raises(CheckpointMismatchError, match="extend it, not shorten it"):
        check_config(_cfg(epochs=5), _cfg(epochs=3), extend_epochs=True)


# ---------------------------------------------------------------------------------------------- schedule extension
def _sched(kind, total):
    opt = torch.optim.Adam([torch.nn.Parameter(torch.zeros(2))], lr=1e-3)
    if kind == "one_cycle":
        return torch.optim.lr_scheduler.OneCycleLR(opt, max_lr=5e-3, total_steps=total)
    return torch.optim.lr_scheduler.CosineAnnealingLR(opt, T_max=total)


def _lrs(s, steps):
    out = []
    for _ in range(steps):
        s.optimizer.step()
        s.step()
        g = s.optimizer.param_groups[0]
        out += [g["lr"], g["betas"][0]]
    return out


@pytest.mark.parametrize("kind", ["one_cycle", "cosine"])
def test_an_extended_schedule_continues_as_if_the_new_length_had_been_configured(kind):
    old_run = _sched(kind, 10)
    _lrs(old_run, 10)  # a finished 10-step run
    resumed = _sched(kind, 15)
    resumed.optimizer.load_state_dict(old_run.optimizer.state_dict())
    resume_scheduler(resumed, old_run.state_dict())
    oracle = _sched(kind, 15)  # torch's own schedule configured with 15 steps from the start
    _lrs(oracle, 10)
    g, o = resumed.optimizer.param_groups[0], oracle.optimizer.param_groups[0]
    assert g["lr"] == pytest.approx(o["lr"], rel=1e-12) and g["betas"][0] == pytest.approx(o["betas"][0])
    assert _lrs(resumed, 4) == pytest.approx(_lrs(oracle, 4), rel=1e-9)  # up to the last step of 15


def test_an_unchanged_schedule_resumes_bit_exactly():
    a = _sched("one_cycle", 10)
    _lrs(a, 4)
    b = _sched("one_cycle", 10)
    b.optimizer.load_state_dict(a.optimizer.state_dict())
    resume_scheduler(b, a.state_dict())
    assert _lrs(b, 6) == _lrs(a, 6)


def _assert_same_final_weights(full: Path, cut: Path) -> None:
    a, b = load_checkpoint(full / "last.pt"), load_checkpoint(cut / "last.pt")
    assert b["epoch"] == 2
    for k in a["model"]:
        assert torch.equal(a["model"][k], b["model"][k]), k


def test_resume_with_other_device_spelling_and_workers_gives_the_same_final_weights(tiny, tmp_path, interrupted_run):
    if torch.cuda.is_available():
        pytest.skip("auto resolves to CUDA here")
    cfg = tiny(training={"epochs": 2, "device": "cpu"}, data={"num_workers": 0})
    run(cfg, out=tmp_path / "full")
    interrupted_run(tiny(training={"epochs": 2, "device": "auto"}, data={"num_workers": 2}), tmp_path / "cut")
    with warnings.catch_warnings():
        warnings.simplefilter("error", RuntimeWarning)  # no thread warning: threads are equal
        run(cfg, resume=tmp_path / "cut")
    _assert_same_final_weights(tmp_path / "full", tmp_path / "cut")


def test_a_resume_restores_the_thread_counts_the_checkpoint_ran_with(tiny, tmp_path, interrupted_run):
    cfg = tiny(training={"epochs": 2, "device": "cpu", "threads": None}, data={"num_workers": 0})
    before = torch.get_num_threads()
    try:
        set_threads(1)
        run(cfg, out=tmp_path / "full")
        interrupted_run(cfg, tmp_path / "cut")
        torch.set_num_threads(2)  # BatchNorm's statistics would sum in another order
        run(cfg, resume=tmp_path / "cut")
        resumed_at = torch.get_num_threads()
    finally:
        torch.set_num_threads(before)
    _assert_same_final_weights(tmp_path / "full", tmp_path / "cut")
    assert resumed_at == 1


# A fresh interpreter at NUMBA_NUM_THREADS=2 that has run a torch op before its first run (as an earlier test in the
# same process had): numba's OpenMP pool, started inside the first run's set_threads, used to reset torch to 2
# threads for that run only, and BatchNorm's per-thread sums then made it differ in the last bits from its resumed copy.
_RUN_AFTER_TORCH_WORK = """
import importlib.util, json, sys
import torch
torch.get_num_threads()
spec = importlib.util.spec_from_file_location("training_conftest", sys.argv[1])
conftest = importlib.util.module_from_spec(spec)
spec.loader.exec_module(conftest)
from snn.training import run
cfg, out = json.loads(sys.argv[2]), sys.argv[3]
run(cfg, out=out + "/full")
conftest.interrupt_after_first_epoch(cfg, out + "/cut")
run(cfg, resume=out + "/cut")
"""


def test_a_resumed_run_is_bit_exact_at_two_numba_threads_whatever_ran_before_in_the_process(tiny, tmp_path):
    cfg = tiny(training={"epochs": 2, "device": "cpu", "threads": 1}, data={"num_workers": 0})
    env = dict(os.environ, NUMBA_NUM_THREADS="2", OMP_NUM_THREADS="1")
    proc = subprocess.run([sys.executable, "-c", _RUN_AFTER_TORCH_WORK, str(Path(__file__).with_name("conftest.py")),
                           json.dumps(cfg), str(tmp_path)], env=env, capture_output=True, text=True, timeout=600)
    assert proc.returncode == 0, proc.stderr[-3000:]
    _assert_same_final_weights(tmp_path / "full", tmp_path / "cut")
