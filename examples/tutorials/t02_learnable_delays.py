"""Tutorial 2 — learnable delays and why they matter (CPU, a few minutes).

The digits of the embedded set differ in the *order* of spectral events 100–250 ms apart. A feed-forward LIF layer
only sees the present plus a leak of a few tens of ms; a synapse with a learnable delay can line up an early event
with a late one. This tutorial trains the delay network (``delaynet``, the DCLS model) twice through the config
system — delays learned, and delays frozen at zero — with everything else equal, then looks at the learned delays.

Full-length runs (40 epochs, ``examples/configs/spoken_digits.yaml`` and ``spoken_digits_frozen.yaml``) reach 0.854
and 0.556 test accuracy (README, "Measured"); the short runs here show the same ordering.
"""
from __future__ import annotations

from snn.training import run

try:
    from _common import QUICK, epochs
except ImportError:
    from examples.tutorials._common import QUICK, epochs

base = {
    "data": {"dataset": "spoken_digits", "dt_ms": 10.0, "pool": 10, "valid_fraction": 0.15},
    "model": {"name": "delaynet", "hidden": 64 if QUICK else 128, "layers": 2, "max_delay": 25, "tau_ms": 20.0,
              "dropout": 0.2},
    "training": {"epochs": epochs(12), "batch_size": 32, "threads": 1,
                 "limit_train_batches": 4 if QUICK else None},
    "optim": {"lr": 1e-3, "max_lr": 1e-2},
    "run": {"progress": False, "plots": False, "energy": False, "tensorboard": False, "log_energy": False},
}
results = {}
for delays in ("learned", "frozen_zero"):
    cfg = {**base, "model": {**base["model"], "delays": delays}}
    result = run(cfg, run={"name": f"tutorial2_{delays}", "out_dir": "runs/tutorials"})
    results[delays] = result
    print(f"delays {delays}: test accuracy {result.test['test_acc']:.3f}")

# The delays the network learned (integer steps of 10 ms after rounding, as evaluation uses them).
model = results["learned"].model
for i, layer in enumerate(model.synapses):
    d = layer.rounded_delays().flatten().float() * 10.0
    print(f"delay layer {i}: mean {d.mean():.0f} ms, spread (std) {d.std():.0f} ms, max {d.max():.0f} ms")
print("plots of a full run (delay histograms included): snn train examples/configs/spoken_digits.yaml")
