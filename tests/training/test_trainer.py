"""Trainer: convergence on a separable task, bit-exact resume, mismatch errors, early stopping, rule protocol."""
from __future__ import annotations

import numpy as np
import pytest
import torch

from snn.config import load_config
from snn.training import Trainer, run
from snn.training.checkpoint import CheckpointMismatchError, check_model_state, load_checkpoint
from snn.training.data import build_datasets
from snn.training.experiment import evaluate_run
from snn.models import build_model
from snn.training.rules import Backprop, LearningRule


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


class _MeanLinear(torch.nn.Module):
    """A readout on the time-mean input: ``[T, B, C] -> [T, B, K]`` (scores: the time mean)."""

    def __init__(self, n_in: int, n_out: int):
        super().__init__()
        self.linear = torch.nn.Linear(n_in, n_out, bias=False)

    def forward(self, x):
        return self.linear(x)


class _HebbianRule(LearningRule):
    """A local rule, no backprop: ``Δw = η · onehot(y)ᵀ · x̄ / B`` (x̄: each sample's time-mean input), written as
    ``-Δw`` into ``.grad``. Records every batch and every call so the test can recompute the update by hand."""

    def __init__(self, eta: float):
        self.eta, self.batches, self.attached = eta, [], 0

    def attach(self, model):
        super().attach(model)
        self.attached += 1

    def training_step(self, model, batch, ctx):
        x, labels, lengths = batch
        self.batches.append((x.clone(), labels.clone(), lengths.clone()))
        pre = x.sum(0) / lengths[:, None].to(x.dtype)
        onehot = torch.nn.functional.one_hot(labels, model.linear.out_features).to(x.dtype)
        model.linear.weight.grad = -(self.eta * onehot.T @ pre / x.shape[1])
        with torch.no_grad():
            out = model(x)
        scores = out.mean(0)
        return {"loss": torch.nn.functional.cross_entropy(scores, labels), "scores": scores}


def test_a_local_rule_writes_minus_delta_w_and_the_trainer_applies_one_adam_step(tiny):
    lr, eta = 0.01, 0.5
    c = load_config(tiny(training={"epochs": 1, "limit_train_batches": 1},
                         optim={"lr": lr, "weight_decay": 0.0, "scheduler": "none", "grad_clip": None}))
    data = build_datasets(c.data)
    torch.manual_seed(0)
    model = _MeanLinear(data.n_inputs, data.n_classes)
    w0 = model.linear.weight.detach().double().numpy().copy()
    rule = _HebbianRule(eta)
    Trainer(model, rule, data.train, config=c).fit()
    assert rule.attached == 1 and len(rule.batches) == 1
    # by hand, in float64 numpy: the rule's Δw from the batch the Trainer fed it, then Adam's first step
    # (m̂ = g, v̂ = g²: w ← w - lr · g / (|g| + eps)) on g = -Δw
    x, labels, lengths = (t.double().numpy() for t in rule.batches[0])
    pre = x.sum(0) / lengths[:, None]
    onehot = np.eye(data.n_classes)[labels.astype(int)]
    g = -(eta * onehot.T @ pre / x.shape[1])
    expected = w0 - lr * g / (np.abs(g) + 1e-8)
    assert np.abs(g).max() > 0
    np.testing.assert_allclose(model.linear.weight.detach().double().numpy(), expected, rtol=0, atol=1e-6)
    # and the update is the rule's, not backprop's: a class's row moves towards its inputs
    assert (model.linear.weight.detach().numpy() - w0)[labels[0].astype(int)].sum() > 0


def test_flush_denormals_zeroes_denormals_inside_and_restores_after():
    from snn.training.trainer import _denormals_flushed, flush_denormals

    tiny = torch.tensor([1e-39], dtype=torch.float32)
    assert not _denormals_flushed() and float(tiny * 1.0) != 0.0
    with flush_denormals():
        assert float(tiny * 1.0) == 0.0
    assert float(tiny * 1.0) != 0.0
    with flush_denormals(enabled=False):
        assert float(tiny * 1.0) != 0.0
