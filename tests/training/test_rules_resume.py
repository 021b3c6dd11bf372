"""A local-rule run (STDP on the hidden layer with hard bounds, backprop readout) selected from the config resumes
bit for bit; the rule section is checked and reaches the rule."""
from __future__ import annotations

import copy

import torch

from snn.config import load_config
from snn.models import build_model
from snn.training import Trainer, run
from snn.training.checkpoint import load_checkpoint
from snn.training.data import build_datasets
from snn.training.trainer import seed_everything
from snn.rules import STDP, rule_from_config


def _cfg(tiny) -> dict:
    cfg = tiny(training={"epochs": 3})
    cfg["model"] = {"name": "snn_mlp", "hidden": 12, "layers": 1, "tau_ms": 10.0, "dropout": 0.0,
                    "batchnorm": False, "backend": "torch"}
    cfg["training"]["rule"] = {"name": "stdp", "layers": "synapses.0", "supervised": True, "a_plus": 0.01,
                               "a_minus": 0.012, "w_min": -0.5, "w_max": 0.5, "lr": 0.1}
    return cfg


def test_stdp_run_from_config_resumes_bit_exactly(tiny, tmp_path):
    cfg = _cfg(tiny)
    full = run(cfg, out=tmp_path / "full")
    a = load_checkpoint(tmp_path / "full" / "last.pt")
    assert set(a["optimizers"]) == {"local", "weights"}
    w = a["model"]["synapses.0.weight"]
    assert w.min() >= -0.5 and w.max() <= 0.5  # hard bounds held after every step
    assert len(full.history) == 3

    c = load_config(copy.deepcopy(cfg))
    rule = rule_from_config(c.training)
    assert isinstance(rule, STDP) and rule.a_minus == 0.012 and rule.w_max == 0.5
    seed_everything(c.training.seed, c.training.deterministic)
    torch.set_num_threads(c.training.threads)
    data = build_datasets(c.data)
    model = build_model(c, data.n_inputs, data.n_classes)
    init = {k: v.clone() for k, v in model.state_dict().items()}
    Trainer(model, rule, data.train, data.valid, data.test, config=c, run_dir=tmp_path / "cut",
            metadata={"n_inputs": data.n_inputs, "n_classes": data.n_classes}).fit(until=1)
    assert not torch.equal(model.state_dict()["synapses.0.weight"], init["synapses.0.weight"])  # STDP moved it
    run(cfg, resume=tmp_path / "cut")
    b = load_checkpoint(tmp_path / "cut" / "last.pt")
    for k in a["model"]:
        assert torch.equal(a["model"][k], b["model"][k]), k
