"""The ``elm`` model family: built from configs (ms → Δt), input dropout, last-step readout, example configs load."""
from pathlib import Path

import pytest
import torch
import torch.nn.functional as F

from snn.config import ConfigError, load_config
from snn.models import ELMNet, build_model

CONFIGS = Path(__file__).resolve().parents[2] / "examples" / "configs"


def test_family_builds_from_a_config_with_dt_from_the_data_section():
    cfg = load_config({"data": {"dt_ms": 10.0}, "model": {"name": "elm", "memory": 6, "tau_m_max_ms": 500.0,
                                                           "branches": 3, "synapses_per_branch": 4,
                                                           "routing": "window"}})
    net = build_model(cfg, 11, 4)
    assert isinstance(net, ELMNet)
    assert net.elm.dt == 10.0 and net.elm.tau_m_max == 500.0 and net.elm.branches == 3
    assert net(torch.rand(7, 2, 11)).shape == (7, 2, 4)
    assert set(net.parameter_groups()) == {"weights"}


def test_bad_model_keys_are_config_errors():
    with pytest.raises(ConfigError, match="tau_m_min_ms"):
        load_config({"model": {"name": "elm", "tau_m_min_ms": 600.0, "tau_m_max_ms": 500.0}})
    with pytest.raises(ConfigError, match="input_dropout"):
        load_config({"model": {"name": "elm", "input_dropout": 1.0}})


def test_loss_reads_each_samples_last_valid_step():
    torch.manual_seed(0)
    net = ELMNet(5, 3, memory=4, backend="torch").eval()
    x = torch.rand(6, 2, 5)
    lengths = torch.tensor([6, 4])
    out = net(x, lengths)
    labels = torch.tensor([2, 0])
    want = F.cross_entropy(torch.stack([out[5, 0], out[3, 1]]), labels)
    torch.testing.assert_close(net.loss(out, labels, lengths), want)


def test_input_dropout_zeroes_in_training_and_scales_in_evaluation():
    net = ELMNet(4, 2, memory=3, input_dropout=0.5, backend="torch")
    seen = []
    net.elm.register_forward_pre_hook(lambda m, args: seen.append(args[0].clone()))
    x = torch.ones(50, 4, 4)
    net.train()(x)
    assert set(seen[-1].unique().tolist()) == {0.0, 1.0}
    assert 0.4 < seen[-1].mean().item() < 0.6
    net.eval()(x)
    assert torch.equal(seen[-1], torch.full_like(x, 0.5))


@pytest.mark.parametrize("name", ["spoken_digits_elm.yaml", "spoken_digits_branch_elm.yaml", "shd_elm.yaml"])
def test_example_configs_load_and_build(name):
    cfg = load_config(CONFIGS / name)
    assert cfg.model.name == "elm"
    n_inputs = 700 // cfg.data.pool
    net = build_model(cfg, n_inputs, 20)
    assert net(torch.rand(3, 2, n_inputs)).shape == (3, 2, 20)
