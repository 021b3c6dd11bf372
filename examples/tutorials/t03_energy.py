"""Tutorial 3 — energy estimation and the accuracy–energy trade-off (CPU, a few minutes).

``snn.energy.estimate(model, data, profile)`` runs the model on real batches and counts what neuromorphic hardware
would do: synaptic operations (each spike × its fan-out), MACs where inputs are real-valued, neuron updates and
memory traffic; a hardware profile turns the counts into energy. ``training.synops_penalty`` adds the expected
synaptic operations to the loss, trading accuracy for fewer spikes. This tutorial trains the same small network
without and with the penalty and compares accuracy, operations and energy per sample.
"""
from __future__ import annotations

from snn.energy import available_profiles, estimate
from snn.training import RunSplits, run

try:
    from _common import QUICK, epochs
except ImportError:
    from examples.tutorials._common import QUICK, epochs

print("hardware profiles:", ", ".join(available_profiles()))
base = {
    "data": {"dataset": "spoken_digits", "dt_ms": 10.0, "pool": 10, "valid_fraction": 0.15},
    "model": {"name": "snn_mlp", "hidden": 64, "layers": 1, "tau_ms": 20.0, "dropout": 0.1},
    "training": {"epochs": epochs(10), "batch_size": 32, "threads": 1, "limit_train_batches": 4 if QUICK else None},
    "optim": {"lr": 1e-3, "max_lr": 1e-2},
    "run": {"progress": False, "plots": False, "energy": False, "tensorboard": False, "out_dir": "runs/tutorials"},
}
for penalty in (0.0, 3e-6):
    result = run({**base, "training": {**base["training"], "synops_penalty": penalty}},
                 run={"name": f"tutorial3_penalty{penalty:g}"})
    loader = RunSplits(result.config).test_loader()
    report = estimate(result.model, loader, profile="45nm_fp32", max_batches=2)
    print(f"synops_penalty {penalty:g}: test accuracy {result.test['test_acc']:.3f}, "
          f"{report.synops / 1e3:.1f}k synaptic operations and {report.total_pj / 1e3:.1f} nJ per sample")
print(report.table())
