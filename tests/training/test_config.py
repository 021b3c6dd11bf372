"""Config files: defaults, round trip, typed overrides, and rejection messages naming the key path."""
from __future__ import annotations

from pathlib import Path

import pytest

from snn.config import Config, ConfigError, apply_overrides, config_to_dict, load_config, save_config

CONFIGS = Path(__file__).resolve().parents[2] / "examples" / "configs"


def test_round_trip_through_yaml_is_identity(tmp_path):
    cfg = load_config({"model": {"hidden": 64}, "training": {"epochs": 3}})
    save_config(cfg, tmp_path / "c.yaml")
    again = load_config(tmp_path / "c.yaml")
    assert again == cfg
    assert config_to_dict(again)["model"]["hidden"] == 64


@pytest.mark.parametrize("name", sorted(p.name for p in CONFIGS.glob("*.yaml")))
def test_example_configs_load(name):
    assert isinstance(load_config(CONFIGS / name), Config)


def test_reference_configs_match_the_paper():
    shd, ssc = load_config(CONFIGS / "shd_delays.yaml"), load_config(CONFIGS / "ssc_delays.yaml")
    assert (shd.model.hidden, shd.model.layers, shd.model.max_delay, shd.model.dropout) == (256, 2, 25, 0.4)
    assert (shd.training.batch_size, shd.training.epochs) == (256, 150)
    assert shd.model.tau_ms / shd.data.dt_ms == pytest.approx(1.005)
    assert (ssc.model.hidden, ssc.model.layers, ssc.model.max_delay, ssc.model.dropout) == (512, 3, 31, 0.25)
    assert (ssc.training.batch_size, ssc.training.epochs, ssc.model.tau_ms) == (128, 60, 15.0)
    for c in (shd, ssc):
        assert (c.optim.lr, c.optim.weight_decay, c.optim.max_lr, c.optim.groups["positions"].lr) == (1e-3, 1e-5, 5e-3, 0.1)
        assert (c.optim.scheduler, c.optim.groups["positions"].scheduler, c.optim.scheduler_interval) == ("one_cycle", "cosine", "epoch")
        assert (c.data.pool, c.model.surrogate_alpha, c.model.sigma_final, c.model.sigma_decay_fraction) == (5, 5.0, 0.23, 0.25)


def test_overrides_are_parsed_by_type():
    cfg = apply_overrides(Config(), ["model.hidden=512", "model.dropout=0.1", "training.early_stopping_patience=null",
                                     "model.batchnorm=false", "data.dt_ms=4"])
    assert cfg.model.hidden == 512 and cfg.model.dropout == 0.1 and cfg.model.batchnorm is False
    assert cfg.training.early_stopping_patience is None
    assert cfg.data.dt_ms == 4.0 and isinstance(cfg.data.dt_ms, float)


def test_unknown_key_names_path_and_allowed_keys():
    with pytest.raises(ConfigError, match=r"unknown key 'model\.hiden'.*allowed keys in model: .*hidden.*Did you mean 'model\.hidden'"):
        load_config({"model": {"hiden": 3}})
    with pytest.raises(ConfigError, match=r"unknown key 'modle'"):
        load_config({"modle": {}})


def test_wrong_type_names_path_expected_and_received():
    with pytest.raises(ConfigError, match=r"model\.hidden: expected int, got 'big' \(str\)"):
        load_config({"model": {"hidden": "big"}})
    with pytest.raises(ConfigError, match=r"training\.amp: expected bool, got 1 \(int\)"):
        apply_overrides(Config(), ["training.amp=1"])
    with pytest.raises(ConfigError, match=r"model\.hidden: expected int, got 2\.5"):
        apply_overrides(Config(), {"model.hidden": 2.5})


def test_disallowed_choice_lists_allowed_values():
    with pytest.raises(ConfigError, match=r"model\.delays: expected one of 'learned', 'frozen_zero', 'frozen_random'; got 'frozen'"):
        load_config({"model": {"delays": "frozen"}})


def test_out_of_range_values_rejected():
    with pytest.raises(ConfigError, match=r"model\.dropout: expected a value in \[0, 1\)"):
        load_config({"model": {"dropout": 1.5}})
    with pytest.raises(ConfigError, match=r"training\.epochs: expected a value > 0"):
        load_config({"training": {"epochs": 0}})


def test_bad_override_syntax():
    with pytest.raises(ConfigError, match="KEY=VALUE"):
        apply_overrides(Config(), ["model.hidden"])
    with pytest.raises(ConfigError, match="SECTION.KEY"):
        apply_overrides(Config(), ["hidden=3"])


def test_file_errors_name_the_file(tmp_path):
    p = tmp_path / "bad.yaml"
    p.write_text("model:\n  layerz: 2\n")
    with pytest.raises(ConfigError, match=r"bad\.yaml: unknown key 'model\.layerz'"):
        load_config(p)
    with pytest.raises(FileNotFoundError):
        load_config(tmp_path / "missing.yaml")


def test_float_keys_accept_exponents_that_yaml_reads_as_strings():
    from snn.config import ConfigError, load_config

    cfg = load_config({}, ["training.synops_penalty=1e-6", "optim.lr=2e-3"])
    assert cfg.training.synops_penalty == 1e-6 and cfg.optim.lr == 2e-3
    with pytest.raises(ConfigError, match="optim.lr"):
        load_config({}, ["optim.lr=fast"])


def test_group_overrides_are_checked_by_path():
    cfg = load_config({}, ["optim.groups.positions.lr=0.05", "optim.groups.norm.weight_decay=0"])
    assert cfg.optim.groups["positions"].lr == 0.05 and cfg.optim.groups["norm"].weight_decay == 0.0
    with pytest.raises(ConfigError, match=r"optim\.groups\.positions\.scheduler: expected one of"):
        load_config({}, ["optim.groups.positions.scheduler=linear"])
    with pytest.raises(ConfigError, match=r"optim\.groups\.weights\.lr: expected a finite value >= 0, got -1"):
        load_config({}, ["optim.groups.weights.lr=-1"])
    with pytest.raises(ConfigError, match=r"optim\.weight_decay: expected a finite value >= 0"):
        load_config({}, ["optim.weight_decay=-1"])


def test_legacy_keys_move_with_a_warning_in_files_and_an_error_in_overrides(tmp_path):
    p = tmp_path / "old.yaml"
    p.write_text("training:\n  sigma_final: 0.5\noptim:\n  positions_lr: 0.2\n  positions_scheduler: none\n")
    with pytest.warns(DeprecationWarning, match=r"training\.sigma_final -> model\.sigma_final"):
        cfg = load_config(p)
    assert cfg.model.sigma_final == 0.5
    assert (cfg.optim.groups["positions"].lr, cfg.optim.groups["positions"].scheduler) == (0.2, "none")
    with pytest.raises(ConfigError, match=r"'optim\.positions_lr' moved to 'optim\.groups\.positions\.lr'"):
        load_config({}, ["optim.positions_lr=0.3"])


def test_model_name_selects_the_family_and_its_keys():
    cfg = load_config({"model": {"name": "delaynet", "hidden": 64}})
    assert type(cfg.model).__name__ == "DelayNetConfig" and cfg.model.hidden == 64
    with pytest.raises(ConfigError, match=r"unknown model family 'delaynett'.*Did you mean 'delaynet'"):
        load_config({"model": {"name": "delaynett"}})
    with pytest.raises(ConfigError, match=r"cannot import module 'no_such_package_xyz\.mod'"):
        load_config({"model": {"name": "no_such_package_xyz.mod:Net"}})


def test_a_key_given_twice_is_rejected_with_its_lines(tmp_path):
    path = tmp_path / "twice.yaml"
    path.write_text("model:\n  hidden: 64\ntraining:\n  epochs: 3\nmodel:\n  hidden: 128\n")
    with pytest.raises(ConfigError, match=r"twice\.yaml: key 'model' appears twice in one section \(lines 1 and 5\)"):
        load_config(path)
    path.write_text("optim:\n  lr: 0.1\n  lr: 0.2\n")
    with pytest.raises(ConfigError, match=r"key 'lr' appears twice .*lines 2 and 3"):
        load_config(path)


@pytest.mark.parametrize("key,value", [("optim.max_lr", "nan"), ("optim.grad_clip", ".nan"),
                                       ("model.sigma_final", "nan"), ("optim.lr", ".inf"),
                                       ("optim.weight_decay", "-.inf")])
def test_non_finite_floats_are_rejected_naming_the_key(key, value):
    with pytest.raises(ConfigError, match=rf"{key}: expected a finite number"):
        load_config({}, [f"{key}={value}"])


def test_non_finite_floats_in_a_file_are_rejected(tmp_path):
    path = tmp_path / "nan.yaml"
    path.write_text("model:\n  sigma_final: .nan\n")
    with pytest.raises(ConfigError, match=r"nan\.yaml: model\.sigma_final: expected a finite number"):
        load_config(path)
