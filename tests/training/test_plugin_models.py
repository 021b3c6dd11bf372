"""A model family defined here, outside the library, gets training, bit-exact resume, evaluation and an energy report
through the public API and the CLI; callbacks run in the documented order and their state survives a resume."""
from __future__ import annotations

import copy
import os
import subprocess
import sys
from dataclasses import dataclass
from pathlib import Path

import pytest
import torch
from torch import nn

import snn
import snn.models
from snn.callbacks import Callback
from snn.config import load_config
from snn.models import ParamGroup
from snn.training import Trainer, evaluate_run, load_run, run
from snn.training.checkpoint import load_checkpoint
from snn.training.data import build_datasets
from snn.training.trainer import seed_everything

HERE = Path(__file__).resolve().parent


class ToyNet(nn.Module):
    """Linear → LIF → Linear; scored by the Trainer's default (time-mean of the output over valid steps)."""

    def __init__(self, n_inputs: int, n_classes: int, hidden: int = 12, tau: float = 2.0) -> None:
        super().__init__()
        self.fc1 = nn.Linear(n_inputs, hidden)
        self.lif = snn.LIF(tau=tau, detach_reset=True)
        self.fc2 = nn.Linear(hidden, n_classes)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return self.fc2(self.lif(self.fc1(x)))


class StepCounter(Callback):
    """Counts optimiser steps across epochs (state kept in checkpoints) and logs the count."""

    def __init__(self, log: list | None = None) -> None:
        self.steps = 0
        self.log = log

    def _record(self, name: str) -> None:
        if self.log is not None:
            self.log.append(name)

    def on_fit_start(self, trainer):
        self._record("fit_start")

    def on_epoch_start(self, trainer, epoch):
        self._record(f"epoch_start {epoch}")

    def on_after_optimizer_step(self, trainer):
        self.steps += 1
        self._record("step")

    def on_evaluate_start(self, trainer, split):
        self._record(f"evaluate_start {split}")

    def on_evaluate_end(self, trainer, split, row):
        self._record(f"evaluate_end {split} {'row' if row else 'none'}")

    def on_epoch_end(self, trainer, epoch, row):
        row["toy_steps"] = float(self.steps)
        self._record(f"epoch_end {epoch}")

    def on_fit_end(self, trainer):
        self._record("fit_end")

    def state_dict(self):
        return {"steps": self.steps}

    def load_state_dict(self, state):
        self.steps = state["steps"]


class GroupedToyNet(ToyNet):
    """ToyNet with two parameter groups (the head with its own learning rate) and its own callback."""

    def parameter_groups(self):
        return {"body": ParamGroup(list(self.fc1.parameters())),
                "head": ParamGroup(list(self.fc2.parameters()), lr=5e-3, weight_decay=0.0, scheduler="cosine")}

    def callbacks(self):
        return [StepCounter()]


@dataclass
class GroupedToyConfig:
    hidden: int = 12
    tau_ms: float = 10.0


def build_grouped_toy(config, n_inputs, n_classes):
    return GroupedToyNet(n_inputs, n_classes, hidden=config.model.hidden, tau=config.model.tau_ms / config.data.dt_ms)


snn.models.register("grouped_toy", GroupedToyConfig, build_grouped_toy, replace=True)


def _toy_config(tiny, model: dict, **sections) -> dict:
    cfg = tiny(**sections)
    cfg["model"] = model
    return cfg


def test_registered_user_family_trains_resumes_bit_exactly_and_reloads(tiny, tmp_path):
    cfg = _toy_config(tiny, {"name": "grouped_toy", "hidden": 10}, training={"epochs": 3},
                      optim={"groups": {"body": {"lr": 2e-2}}})
    full = run(cfg, out=tmp_path / "full")
    assert full.history[-1]["train_loss"] < full.history[0]["train_loss"]
    assert [r["toy_steps"] for r in full.history] == [5.0, 10.0, 15.0]  # the model's callback: 36 samples, batches of 8
    ck = load_checkpoint(tmp_path / "full" / "last.pt")
    assert set(ck["optimizers"]) == {"body", "head"}
    assert ck["metadata"] == {"n_inputs": 20, "n_classes": 3}
    assert ck["optimizers"]["head"]["param_groups"][0]["weight_decay"] == 0.0
    # optim.groups override (lr 2e-2 = 2 × optim.lr): the one-cycle peak scales with it, 2 × optim.max_lr
    assert ck["optimizers"]["body"]["param_groups"][0]["max_lr"] == pytest.approx(4e-2)
    assert ck["optimizers"]["head"]["param_groups"][0]["initial_lr"] == 5e-3  # the model's default

    c = load_config(copy.deepcopy(cfg))
    seed_everything(c.training.seed, c.training.deterministic)
    torch.set_num_threads(c.training.threads)
    data = build_datasets(c.data)
    model = snn.models.build_model(c, data.n_inputs, data.n_classes)
    Trainer(model, None, data.train, data.valid, data.test, config=c, run_dir=tmp_path / "cut",
            metadata={"n_inputs": data.n_inputs, "n_classes": data.n_classes}).fit(until=1)
    resumed = run(cfg, resume=tmp_path / "cut")
    a, b = ck, load_checkpoint(tmp_path / "cut" / "last.pt")
    for k in a["model"]:
        assert torch.equal(a["model"][k], b["model"][k]), k
    assert [r["toy_steps"] for r in resumed.history] == [5.0, 10.0, 15.0]  # callback state restored

    model, config, splits = load_run(tmp_path / "full")
    assert isinstance(model, GroupedToyNet) and config.model.hidden == 10
    again = evaluate_run(tmp_path / "full", "test")
    assert again["test_acc"] == pytest.approx(full.test["test_acc"])


def test_unknown_group_override_names_the_models_groups(tiny):
    cfg = _toy_config(tiny, {"name": "grouped_toy"}, optim={"groups": {"positions": {"lr": 0.1}}})
    with pytest.raises(ValueError, match=r"optim\.groups: 'positions' not among the model's parameter groups \('body', 'head'\)"):
        run(cfg)


def test_callbacks_run_in_the_documented_order(tiny):
    c = load_config(_toy_config(tiny, {"name": "grouped_toy"}, training={"epochs": 1, "limit_train_batches": 2}))
    data = build_datasets(c.data)
    log: list[str] = []
    trainer = Trainer(snn.models.build_model(c, data.n_inputs, data.n_classes), None, data.train, data.valid,
                      config=c, callbacks=[StepCounter(log)], default_callbacks=False)
    trainer.fit()
    assert log == ["fit_start", "epoch_start 0", "step", "step", "evaluate_start valid", "evaluate_end valid row",
                   "epoch_end 0", "fit_end"]


def _cli(args: list[str], cwd: Path) -> subprocess.CompletedProcess:
    env = dict(os.environ, PYTHONPATH=str(HERE) + os.pathsep + os.environ.get("PYTHONPATH", ""),
               OMP_NUM_THREADS="1", NUMBA_NUM_THREADS="1")
    return subprocess.run([sys.executable, "-m", "snn.cli.main", *args], cwd=cwd, env=env, capture_output=True,
                          text=True, timeout=600)


@pytest.mark.slow
def test_class_path_model_trains_evaluates_and_reports_energy_from_the_cli(tiny, tmp_path):
    import yaml

    cfg = _toy_config(tiny, {"name": "test_plugin_models:ToyNet", "hidden": 9}, training={"epochs": 2},
                      run={"energy": True, "energy_batches": 1})
    path = tmp_path / "toy.yaml"
    path.write_text(yaml.safe_dump(cfg))
    done = _cli(["train", str(path), "--out", str(tmp_path / "run")], tmp_path)
    assert done.returncode == 0, done.stderr
    assert "test accuracy" in done.stdout and (tmp_path / "run" / "energy.json").is_file()
    done = _cli(["eval", str(tmp_path / "run")], tmp_path)
    assert done.returncode == 0 and "test accuracy" in done.stdout, done.stderr
    done = _cli(["energy", str(tmp_path / "run"), "--batches", "1"], tmp_path)
    assert done.returncode == 0, done.stderr
    assert "fc1" in done.stdout and "fc2" in done.stdout and "lif" in done.stdout
    bad = dict(cfg, model={"name": "test_plugin_models:ToyNet", "hiden": 9})
    path.write_text(yaml.safe_dump(bad))
    done = _cli(["train", str(path)], tmp_path)
    assert done.returncode == 2 and "unknown key 'model.hiden'" in done.stderr and "hidden" in done.stderr
