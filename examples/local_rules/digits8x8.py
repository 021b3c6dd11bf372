"""Each learning rule beside surrogate-gradient backprop on scikit-learn's 8×8 digits, same architecture.

    python examples/local_rules/digits8x8.py --rules backprop softhebb forward_forward --epochs 20

Architecture (every rule): ``SpikingMLP`` (Linear → LIF hidden layers, LI readout; no BatchNorm, no dropout) on
``Digits8x8Spikes(steps=16, label_channels=10)`` (74 inputs: 10 label slots + 64 pixels). Writes one JSON line per rule
(test accuracy, epochs, wall time) to ``--out``.
"""
from __future__ import annotations

import argparse
import json
import time

import torch

from snn.config import load_config
from snn.datasets.digits8x8_spikes import Digits8x8Spikes
from snn.models import SpikingMLP
from snn.rules import rule_from_config
from snn.training import Trainer, seed_everything

#: per-rule settings found on this task (rule section, optimiser overrides, epochs)
RECIPES = {
    "backprop": {"rule": {"name": "backprop"}, "optim": {"lr": 2e-3, "max_lr": 5e-3}},
    "softhebb": {"rule": {"name": "softhebb", "layers": "synapses.0", "tau": 0.02, "norm": 0.25,
                          "anti_hebbian": True, "normalise": False, "lr": 0.05},
                 "optim": {"lr": 2e-3, "max_lr": 5e-3}},
    # SoftHebb after the diagnosis (README): centred rates, plain soft-WTA Hebbian; use with --batchnorm
    "softhebb_centred": {"rule": {"name": "softhebb", "layers": "synapses.0", "tau": 0.1, "norm": 0.25,
                                  "centre": True, "anti_hebbian": False, "lr": 0.05},
                         "optim": {"lr": 2e-3, "max_lr": 5e-3}},
    # control: the same readout on the frozen random hidden layer (STDP with zero amplitudes: Δw = 0)
    "readout_only": {"rule": {"name": "stdp", "layers": "synapses.0", "supervised": True, "a_plus": 0.0,
                              "a_minus": 0.0}, "optim": {"lr": 2e-3, "max_lr": 5e-3}},
    "stdp": {"rule": {"name": "stdp", "layers": "synapses.0", "supervised": True, "a_plus": 1e-4, "a_minus": 1e-4,
                      "weight_dependence": "multiplicative", "w_min": -1.0, "w_max": 1.0, "batch_reduction": "mean"},
             "optim": {"lr": 2e-3, "max_lr": 5e-3}},
    "forward_forward": {"rule": {"name": "forward_forward"}, "optim": {"lr": 2e-3, "max_lr": 5e-3}},
    "forward_forward_collab": {"rule": {"name": "forward_forward", "collaborative": True},
                               "optim": {"lr": 2e-3, "max_lr": 5e-3}},
}


def run_rule(name: str, epochs: int, hidden: int, layers: int, seed: int, threads: int, batchnorm: bool = False,
             rule_options: dict | None = None, bias: bool = True, local_scheduler: str | None = None) -> dict:
    recipe = RECIPES[name]
    cfg = load_config({"training": {"epochs": epochs, "batch_size": 32, "seed": seed, "threads": threads,
                                    "device": "cpu", "rule": {**recipe["rule"], **(rule_options or {})}},
                       "optim": {**recipe["optim"],
                                 **({"groups": {"local": {"scheduler": local_scheduler}}} if local_scheduler else {})},
                       "run": {"progress": False, "tensorboard": False, "plots": False, "energy": False,
                               "log_energy": False}})
    torch.set_num_threads(threads)
    seed_everything(seed)
    train, test = Digits8x8Spikes("train", label_channels=10), Digits8x8Spikes("test", label_channels=10)
    model = SpikingMLP(train.n_channels, 10, hidden=hidden, layers=layers, tau=2.0, batchnorm=batchnorm, dropout=0.0, bias=bias,
                       readout="mean", backend="torch")
    trainer = Trainer(model, rule_from_config(cfg.training), train, None, test, config=cfg, run_dir=None)
    t0 = time.perf_counter()
    history = trainer.fit()
    wall = time.perf_counter() - t0
    test_row = trainer.test(use_best=False)
    trainer.close()
    return {"rule": name, "test_acc": test_row["test_acc"], "epochs": epochs, "wall_s": round(wall, 1),
            "train_acc": history[-1]["train_acc"], "hidden": hidden, "layers": layers, "threads": threads,
            "batchnorm": batchnorm, "bias": bias, "local_scheduler": local_scheduler, "rule_options": rule_options or {}}


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--rules", nargs="+", default=list(RECIPES))
    ap.add_argument("--epochs", type=int, default=20)
    ap.add_argument("--hidden", type=int, default=256)
    ap.add_argument("--layers", type=int, default=1)
    ap.add_argument("--seed", type=int, default=0)
    ap.add_argument("--threads", type=int, default=1)
    ap.add_argument("--batchnorm", action="store_true", help="BatchNorm1d on each hidden layer's currents")
    ap.add_argument("--no-bias", dest="bias", action="store_false", help="no biases in the Linear layers")
    ap.add_argument("--local-scheduler", choices=["one_cycle", "cosine", "none"], default=None,
                    help="learning-rate schedule of the locally trained weights (default: the rule's, none)")
    ap.add_argument("--set", nargs="*", default=[], metavar="KEY=VALUE",
                    help="override options of the rule section (values parsed as YAML)")
    ap.add_argument("--out", default=None)
    args = ap.parse_args()
    import yaml

    options = {k: yaml.safe_load(v) for k, v in (item.split("=", 1) for item in args.set)}
    for name in args.rules:
        row = run_rule(name, args.epochs, args.hidden, args.layers, args.seed, args.threads, args.batchnorm, options, args.bias,
                       args.local_scheduler)
        print(json.dumps(row), flush=True)
        if args.out:
            with open(args.out, "a") as f:
                f.write(json.dumps(row) + "\n")


if __name__ == "__main__":
    main()
