"""The diehl_cook family: config keys checked, input checked, STDP training from a config learns, and a run
(weights, adaptive thresholds, label assignments) resumes bit for bit."""
from __future__ import annotations

import copy

import pytest
import torch

from snn.config import ConfigError, load_config
from snn.models import DiehlCookNetwork, build_model
from snn.rules import rule_from_config
from snn.training import Trainer, evaluate_run, run
from snn.training.checkpoint import load_checkpoint
from snn.training.data import build_datasets
from snn.training.trainer import seed_everything


def _cfg(tmp_path, **model) -> dict:
    return {
        "data": {"dataset": "digits8x8", "valid_fraction": 0.1, "dt_ms": 1.0},
        "model": {"name": "diehl_cook", "image_size": 8, "n_neurons": 16, "presentation_ms": 40, "max_rate_hz": 128,
                  **model},
        "training": {"epochs": 2, "batch_size": 16, "seed": 0, "threads": 1, "limit_train_batches": 6,
                     "rule": {"name": "stdp", "layers": "synapse", "tau_pre": 20, "tau_post": 20, "a_plus": 0.01,
                              "a_minus": 0.0001, "w_min": 0.0, "w_max": 1.0, "normalise": 20.0, "lr": 0.1}},
        "optim": {"scheduler": "none", "weight_decay": 0.0},
        "run": {"name": "dc", "out_dir": str(tmp_path / "runs"), "progress": False, "tensorboard": False,
                "plots": False, "energy": False},
    }


def test_config_keys_are_checked(tmp_path):
    with pytest.raises(ConfigError, match="unknown key 'model.neurons'.*Did you mean 'model.n_neurons'"):
        load_config({"model": {"name": "diehl_cook", "neurons": 10}})
    with pytest.raises(ConfigError, match=r"model.n_neurons: expected a value > 0, got 0"):
        load_config({"model": {"name": "diehl_cook", "n_neurons": 0}})
    with pytest.raises(ConfigError, match=r"model.v_reset: expected a value below v_threshold \(-52.0\), got -50.0"):
        load_config({"model": {"name": "diehl_cook", "v_reset": -50.0}})
    with pytest.raises(ConfigError, match="training.rule.normalise: expected a value > 0 or null, got 0.0"):
        load_config({"training": {"rule": {"name": "stdp", "normalise": 0.0}}})
    cfg = load_config(_cfg(tmp_path))
    model = build_model(cfg, 1, 10)  # digits8x8: 1 channel of 8×8 pixels
    assert model.synapse.weight.shape == (16, 64) and model.encoder.steps == 40
    assert model.excitatory.refractory == 5 and model.excitatory.tau == 100.0


def test_input_with_the_wrong_number_of_features_is_named():
    model = DiehlCookNetwork(64, 10, n_neurons=4, time_steps=5)
    with pytest.raises(ValueError, match=r"expected n_inputs=64 input features per step .*got 49 from x of shape "
                                         r"\(1, 2, 1, 7, 7\)"):
        model(torch.rand(1, 2, 1, 7, 7))
    with pytest.raises(ValueError, match="x must be a tensor"):
        model(torch.rand(2, 64))


def test_unassigned_network_votes_for_nothing_and_its_loss_is_log_k():
    model = DiehlCookNetwork(4, 3, n_neurons=5, time_steps=10)
    out = torch.ones(10, 2, 5)
    assert torch.equal(model.scores(out), torch.zeros(2, 3))
    torch.testing.assert_close(model.loss(out, torch.tensor([0, 2])), torch.log(torch.tensor(3.0)))


@pytest.mark.slow
def test_stdp_run_learns_far_above_chance(tmp_path):
    cfg = _cfg(tmp_path, n_neurons=40, presentation_ms=100)
    cfg["training"].update(epochs=1, limit_train_batches=None)
    result = run(cfg, out=tmp_path / "learn")
    assert result.test["test_acc"] > 0.5  # chance is 0.1 (measured 0.6-0.7 for this small, short run)
    assert result.history[-1]["assigned_neurons"] >= 30
    w = result.model.synapse.weight.detach()
    assert w.min() >= 0.0 and w.max() <= 1.0
    torch.testing.assert_close(w.sum(1), torch.full((40,), 20.0), rtol=1e-5, atol=1e-4)  # normalised rows
    assert (result.model.excitatory.theta > 0).all()  # every neuron fired and raised its threshold
    # evaluation draws each sample's Poisson trains from its own intensities: `snn eval` repeats the run's test
    assert evaluate_run(tmp_path / "learn")["test_acc"] == result.test["test_acc"]


def _interrupted(cfg: dict, folder) -> None:
    """What :func:`snn.training.run` builds, stopped after epoch 1."""
    c = load_config(cfg)
    seed_everything(c.training.seed, c.training.deterministic)
    torch.set_num_threads(c.training.threads)
    data = build_datasets(c.data)
    model = build_model(c, data.n_inputs, data.n_classes)
    Trainer(model, rule_from_config(c.training), data.train, data.valid, data.test, config=c, run_dir=folder,
            metadata={"n_inputs": data.n_inputs, "n_classes": data.n_classes}).fit(until=1)


@pytest.mark.slow
def test_run_resumes_bit_exactly_with_thresholds_and_assignments(tmp_path):
    cfg = _cfg(tmp_path)
    run(cfg, out=tmp_path / "full")
    a = load_checkpoint(tmp_path / "full" / "last.pt")["model"]
    assert a["excitatory.theta"].abs().sum() > 0 and (a["assignments"] >= 0).any()
    _interrupted(copy.deepcopy(cfg), tmp_path / "cut")
    run(cfg, resume=tmp_path / "cut")
    b = load_checkpoint(tmp_path / "cut" / "last.pt")["model"]
    assert set(a) == set(b) == {"synapse.weight", "excitatory.theta", "assignments"}
    for k in a:
        assert torch.equal(a[k], b[k]), k


def test_the_shipped_config_builds_the_network_and_its_stdp_rule():
    from pathlib import Path

    from snn.rules import STDP

    cfg = load_config(Path(__file__).resolve().parents[2] / "examples" / "configs" / "digits8x8_diehl_cook.yaml")
    rule = rule_from_config(cfg.training)
    assert isinstance(rule, STDP) and rule.normalise == 20.0 and (rule.w_min, rule.w_max) == (0.0, 1.0)
    model = build_model(cfg, 1, 10)
    rule.attach(model)
    assert list(rule.synapses) == ["synapse"] and model.synapse.weight.shape == (200, 64)
    assert model.encoder.steps == 250 and [type(c).__name__ for c in model.callbacks()] == ["AssignLabels"]
    rule.detach()


def test_backprop_on_a_model_without_a_gradient_path_names_the_rule(tmp_path):
    cfg = _cfg(tmp_path)
    cfg["training"]["rule"] = {"name": "backprop"}
    cfg["training"]["epochs"] = 1
    cfg["training"]["limit_train_batches"] = 1
    with pytest.raises(RuntimeError, match=r"training.rule: backprop needs a loss .*DiehlCookNetwork.*training.rule: "
                                           r"stdp"):
        run(load_config(cfg))


def test_rate_coding_averages_each_window_over_the_real_steps_only():
    x = torch.arange(1.0, 7.0).view(6, 1, 1).repeat(1, 2, 1)  # values 1..6 over 6 steps, 2 samples, 1 feature
    lengths = torch.tensor([6, 3])
    whole = DiehlCookNetwork(1, 2, n_neurons=2, time_steps=5)
    torch.testing.assert_close(whole.window_means(x, lengths), torch.tensor([[3.5], [2.0]]))  # (1+…+6)/6, (1+2+3)/3
    windows = DiehlCookNetwork(1, 2, n_neurons=2, time_steps=5, time_windows=2)
    assert windows.synapse.in_features == 2
    # sample 0: steps {0,1,2} and {3,4,5} -> 2, 5; sample 1 (3 real steps): floor(2t/3) -> {0,1}, {2} -> 1.5, 3
    torch.testing.assert_close(windows.window_means(x, lengths), torch.tensor([[2.0, 5.0], [1.5, 3.0]]))
    torch.testing.assert_close(windows.window_means(x), torch.tensor([[2.0, 5.0], [2.0, 5.0]]))  # no lengths: all real
    with pytest.raises(ValueError, match="time_windows: expected 1 with encoding='none'"):
        DiehlCookNetwork(1, 2, encoding="none", time_windows=2)


def test_energy_report_charges_the_ann_one_frame_and_the_snn_every_poisson_step():
    from snn.energy import estimate

    torch.manual_seed(0)
    model = DiehlCookNetwork(4, 2, n_neurons=3, time_steps=10, max_rate_hz=400.0).eval()
    x = torch.rand(5, 2, 4)
    lengths = torch.tensor([5, 2])
    report = estimate(model, [(x, torch.tensor([0, 1]), lengths)])
    rows = {r["name"]: r for r in report.layers}
    spikes_in = model.input_spikes(x, lengths)  # eval draws are a fixed function of each sample's intensities
    # all 10 presented steps are real for both samples (the audio's lengths 5 and 2 do not apply to them)
    assert rows["synapse"]["steps_per_sample"] == 10
    assert rows["synapse"]["synops"] == pytest.approx(float(spikes_in.sum()) * 3 / 2)
    # ANN with the same architecture on the one frame of intensities: 4·3 input MACs + 3·2 inhibition MACs, once
    assert report.ann_frames_per_sample == 1
    assert report.ann["per_step"] == pytest.approx((4 * 3 + 3 * 2) * 4.6)
    assert report.ann["once"] == report.ann["per_step"]
