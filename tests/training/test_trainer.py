"""Trainer: convergence on a separable task, bit-exact resume, mismatch errors, early stopping, rule protocol."""
from __future__ import annotations

import pytest
import torch

from snn.config import load_config
from snn.training import Trainer, run
from snn.training.checkpoint import CheckpointMismatchError, check_model_state, load_checkpoint
from snn.training.data import build_datasets
from snn.training.experiment import evaluate_run
from snn.models import build_model
from snn.training.rules import Backprop


def test_converges_on_separable_task_and_writes_run_folder(tiny):
    cfg = tiny(training={"epochs": 5}, run={"plots": True})
    result = run(cfg, out=cfg["run"]["out_dir"] + "/r")
    assert result.test["test_acc"] >= 0.9
    assert result.history[-1]["train_loss"] < result.history[0]["train_loss"]
    d = result.run_dir
    for name in ("config.yaml", "metrics.csv", "last.pt", "best.pt", "test_metrics.json",
                 "plots/curves.png", "plots/raster.png", "plots/firing_rates.png", "plots/delays.png"):
        assert (d / name).is_file(), name
    rates = [v for k, v in result.history[-1].items() if k.startswith("train_rate/")]
    assert rates and all(0.0 < r < 1.0 for r in rates)
    assert load_config(d / "config.yaml") == result.config
    # eval of the saved run reproduces the test accuracy of the best model
    again = evaluate_run(d, "test")
    assert again["test_acc"] == pytest.approx(result.test["test_acc"])


def test_resume_gives_the_same_final_weights(tiny, tmp_path, interrupted_run):
    cfg = tiny(training={"epochs": 2}, model={"dropout": 0.3})
    run(cfg, out=tmp_path / "full")
    interrupted_run(cfg, tmp_path / "cut")  # the same construction as run(), stopped after epoch 1
    assert load_checkpoint(tmp_path / "cut" / "last.pt")["epoch"] == 1
    resumed = run(cfg, resume=tmp_path / "cut")
    assert resumed.run_dir == tmp_path / "cut"
    a = load_checkpoint(tmp_path / "full" / "last.pt")
    b = load_checkpoint(tmp_path / "cut" / "last.pt")
    assert b["epoch"] == 2
    assert a["model"].keys() == b["model"].keys()
    for k in a["model"]:
        assert torch.equal(a["model"][k], b["model"][k]), k
    assert [r["train_loss"] for r in a["history"]] == [r["train_loss"] for r in b["history"]]


def test_checkpoint_from_other_config_says_what_differs(tiny, tmp_path):
    cfg = tiny(training={"epochs": 1})
    run(cfg, out=tmp_path / "a")
    other = tiny(training={"epochs": 1}, model={"hidden": 12})
    with pytest.raises(CheckpointMismatchError, match=r"model\.hidden: 16 != 12"):
        run(other, resume=tmp_path / "a")
    c = load_config(other)
    data = build_datasets(c.data)
    model = build_model(c, data.n_inputs, data.n_classes)
    with pytest.raises(CheckpointMismatchError, match=r"synapses\.0\.weight: checkpoint shape \(16, 20, 1\), model shape \(12, 20, 1\)"):
        check_model_state(model, load_checkpoint(tmp_path / "a" / "last.pt")["model"])


def test_dataset_model_mismatch_caught_before_training(tiny):
    with pytest.raises(ValueError, match=r"data has 20 input channels.*model\.n_inputs is 30"):
        run(tiny(model={"n_inputs": 30}))
    with pytest.raises(ValueError, match=r"data has 3 classes, model\.n_classes is 5"):
        run(tiny(model={"n_classes": 5}))


def test_early_stopping_stops_and_best_is_chosen_on_validation(tiny):
    cfg = tiny(training={"epochs": 6, "early_stopping_patience": 1, "select_metric": "valid_loss"},
               optim={"lr": 0.0, "max_lr": 1e-12, "scheduler": "none",
                      "groups": {"positions": {"lr": 0.0, "scheduler": "none"}}})
    result = run(cfg)
    assert len(result.history) < 6  # nothing improves with zero learning rates
    best = load_checkpoint(result.run_dir / "best.pt")
    assert best["epoch"] == result.history[-1]["best_epoch"]


class _CountingRule(Backprop):
    """A rule that records how the Trainer calls it (protocol check for local rules)."""

    def attach(self, model):
        super().attach(model)
        self.attached, self.steps = True, 0

    def training_step(self, model, batch, ctx):
        self.steps += 1
        return super().training_step(model, batch, ctx)


def test_rule_protocol_attach_and_steps(tiny):
    c = load_config(tiny(training={"epochs": 1, "limit_train_batches": 2}))
    data = build_datasets(c.data)
    rule = _CountingRule()
    trainer = Trainer(build_model(c, data.n_inputs, data.n_classes), rule, data.train, data.valid, config=c)
    trainer.fit()
    assert rule.attached and rule.steps == 2
    assert set(trainer.optimizers) == {"weights", "norm", "positions"}


def test_flush_denormals_zeroes_denormals_inside_and_restores_after():
    from snn.training.trainer import _denormals_flushed, flush_denormals

    tiny = torch.tensor([1e-39], dtype=torch.float32)
    assert not _denormals_flushed() and float(tiny * 1.0) != 0.0
    with flush_denormals():
        assert float(tiny * 1.0) == 0.0
    assert float(tiny * 1.0) != 0.0
    with flush_denormals(enabled=False):
        assert float(tiny * 1.0) != 0.0
