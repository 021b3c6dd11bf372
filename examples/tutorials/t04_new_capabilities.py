"""Tutorial 4 — the newer capabilities through the same config system: a spike-driven transformer, local
learning rules and the ELM neuron (CPU, a few minutes; CI runs it with quick settings).

1. ``examples/configs/digits8x8_sdt.yaml`` trains a spike-driven transformer (SDSA v1: ``Q ⊙ SN(Σ_tokens K ⊙ V)``,
   no softmax, every neuron our LIF) — a full run reaches 0.967 test accuracy (README, "Spike-driven transformers").
2. The learning rule is a config key too: the same ``snn.run`` trains a spiking network with a local rule
   (``training.rule``; see README, "Learning rules", for STDP, R-STDP, SoftHebb and forward-forward).
3. ``examples/configs/spoken_digits_elm.yaml`` trains the ELM neuron (README, "ELM neuron"; 0.82 test accuracy on
   the embedded set with 18k parameters).
"""
from __future__ import annotations

from pathlib import Path

from snn.models import available_models
from snn.training import run

try:
    from _common import QUICK, epochs
except ImportError:
    from examples.tutorials._common import QUICK, epochs

CONFIGS = Path(__file__).resolve().parents[1] / "configs"
print("model families:", ", ".join(available_models()))

quick = {"training.epochs": epochs(30), "run.progress": False, "run.plots": False, "run.tensorboard": False,
         "run.out_dir": "runs/tutorials", "run.energy_batches": 1}
if QUICK:
    quick.update({"training.limit_train_batches": 3, "model.dim": 32, "model.heads": 4})
result = run(CONFIGS / "digits8x8_sdt.yaml", quick)
print(f"spike-driven transformer: test accuracy {result.test['test_acc']:.3f}, "
      f"{sum(p.numel() for p in result.model.parameters()):,} parameters")

# 2. A local rule from the config: STDP trains the first synapse layer of a feed-forward LIF network while backprop
#    trains the rest in the same step (supervised: true); the rule writes -Δw into .grad, the optimisers do the rest.
rule_run = run({
    "data": {"dataset": "spoken_digits", "dt_ms": 10.0, "pool": 10, "valid_fraction": 0.15},
    "model": {"name": "snn_mlp", "hidden": 64, "layers": 1, "tau_ms": 20.0, "dropout": 0.1},
    "training": {"epochs": epochs(10), "batch_size": 32, "threads": 1, "limit_train_batches": 3 if QUICK else None,
                 "rule": {"name": "stdp", "layers": "synapses.0", "supervised": True, "a_plus": 1e-4,
                          "a_minus": 1e-4, "w_min": -1.0, "w_max": 1.0}},
    "optim": {"lr": 1e-3, "max_lr": 1e-2},
    "run": {"progress": False, "plots": False, "energy": False, "tensorboard": False, "out_dir": "runs/tutorials"},
})
print(f"STDP (layer 1) + backprop (readout): test accuracy {rule_run.test['test_acc']:.3f}")

# 3. The Expressive Leaky Memory neuron (ELM) as a model family: synapse traces, branch sums, an MLP on
#    [input, decayed memory] and a leaky memory of d_m units; fused numba forward and backward on CPU.
elm_overrides = {"training.epochs": epochs(40), "run.progress": False, "run.plots": False, "run.energy": False,
                 "run.tensorboard": False, "run.out_dir": "runs/tutorials"}
if QUICK:
    elm_overrides["training.limit_train_batches"] = 3
elm_run = run(CONFIGS / "spoken_digits_elm.yaml", elm_overrides)
print(f"ELM on spoken digits: test accuracy {elm_run.test['test_acc']:.3f}, "
      f"{sum(p.numel() for p in elm_run.model.parameters()):,} parameters")
