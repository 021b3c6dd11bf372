"""Checkpoints written before model families (snn 0.1: sigma keys under training, positions_lr under optim, no
n_inputs/n_classes metadata, one optimiser for weights + norm) still load for evaluation; resuming them says why not."""
from __future__ import annotations

import pytest
import torch

from snn.config import config_to_dict, load_config
from snn.models import DelayNet
from snn.training import evaluate_run, load_run, run
from snn.training.checkpoint import CheckpointMismatchError, save_atomic


def _legacy_config(cfg: dict) -> dict:
    """The 0.1 layout of ``cfg``'s resolved config, as its checkpoints stored it."""
    d = config_to_dict(load_config(cfg))
    m, o = d["model"], d["optim"]
    d["training"].update(sigma_init=m.pop("sigma_init"), sigma_final=m.pop("sigma_final"),
                         sigma_decay_fraction=m.pop("sigma_decay_fraction"),
                         eval_integer_delays=m.pop("eval_integer_delays"))
    o.pop("groups"), o.pop("optimizer")
    o.update(positions_lr=0.1, positions_scheduler="cosine")
    return d


def test_legacy_checkpoint_loads_for_evaluation_and_refuses_resume_with_a_reason(tiny, tmp_path):
    cfg = tiny(model={"sigma_final": 0.5})
    torch.manual_seed(0)
    net = DelayNet(20, 3, hidden=16, layers=1, max_delay=5, tau=2.0, dropout=0.1, sigma_final=0.5)
    old = {"model": net.state_dict(), "epoch": 2, "config": _legacy_config(cfg), "model_class": "DelayNet",
           "optimizers": {"weights": {}, "positions": {}}, "history": [], "metrics": {}}
    folder = tmp_path / "old_run"
    save_atomic(old, folder / "best.pt")
    save_atomic(old, folder / "last.pt")

    model, config, _ = load_run(folder)
    assert isinstance(model, DelayNet) and (model.n_inputs, model.n_classes) == (20, 3)  # read from the weights
    assert config.model.sigma_final == 0.5 and config.optim.groups["positions"].lr == 0.1
    for k, v in net.state_dict().items():
        assert torch.equal(model.state_dict()[k], v), k
    assert 0.0 <= evaluate_run(folder, "test")["test_acc"] <= 1.0
    with pytest.raises(CheckpointMismatchError, match=r"written by snn 0\.1.*cannot be resumed.*snn eval"):
        run(cfg, resume=folder)
