"""Preflight: out-of-range values and unresolvable resources are reported together, before any work."""
from __future__ import annotations

import pytest
import torch

from snn.config import ConfigError, load_config
from snn.energy import available_profiles
from snn.training.preflight import preflight, preflight_problems


def test_the_default_config_with_the_embedded_data_is_ready(tmp_path):
    preflight(load_config({"training": {"device": "cpu"}, "data": {"cache_dir": str(tmp_path / "c")}}))


def test_an_unknown_energy_profile_is_caught_before_the_run_and_lists_the_known_ones():
    cfg = load_config({"run": {"energy_profile": "bogus"}})
    with pytest.raises(ConfigError, match=r"run\.energy_profile: profile: unknown name 'bogus'") as info:
        preflight(cfg)
    assert available_profiles()[0] in str(info.value)
    off = load_config({"run": {"energy_profile": "bogus", "energy": False, "log_energy": False}})
    assert not any("energy_profile" in p for p in preflight_problems(off))  # not used: not resolved


def test_missing_dataset_files_and_root_are_reported(tmp_path):
    problems = preflight_problems(load_config({"data": {"dataset": "shd"}}))
    assert any(p.startswith("data.root: the SHD dataset needs the folder holding shd_test.h5, shd_train.h5")
               for p in problems)
    (tmp_path / "shd_train.h5").write_bytes(b"")
    problems = preflight_problems(load_config({"data": {"dataset": "shd", "root": str(tmp_path)}}))
    assert len([p for p in problems if "not found" in p]) == 1 and "'shd_test.h5'" in problems[-1]
    ssc = preflight_problems(load_config({"data": {"dataset": "ssc", "root": str(tmp_path)}, "run": {"test_at_end": False}}))
    assert {p.split("'")[1] for p in ssc if "not found" in p} == {"ssc_train.h5", "ssc_valid.h5"}


@pytest.mark.skipif(torch.cuda.is_available(), reason="checks the message of a machine without CUDA")
def test_an_unavailable_or_malformed_device_is_reported():
    assert preflight_problems(load_config({"training": {"device": "cuda:1"}})) == [
        "training.device: 'cuda:1' requested but CUDA is not available on this machine; use 'cpu' or 'auto'"]
    assert "is not a device" in preflight_problems(load_config({"training": {"device": "gpu0"}}))[0]


def test_an_unusable_cache_folder_is_reported(tmp_path):
    blocker = tmp_path / "file"
    blocker.write_text("x")
    problems = preflight_problems(load_config({"data": {"cache_dir": str(blocker / "cache")}}))
    assert problems and problems[0].startswith("data.cache_dir: cannot create")


def test_every_problem_is_listed_at_once():
    cfg = load_config({"run": {"energy_profile": "bogus"}, "data": {"dataset": "shd"},
                       "training": {"device": "tpu"}})
    with pytest.raises(ConfigError) as info:
        preflight(cfg)
    text = str(info.value)
    assert "run.energy_profile" in text and "data.root" in text and "training.device" in text
