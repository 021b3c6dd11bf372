"""Tutorial 1 — your first spiking network, on the embedded spoken-digits set (CPU, about a minute).

What you learn: the data's shape (time-major ``[T, B, C]`` frames and per-sample ``lengths``), a network built from
``nn.Linear`` and ``snn.LIF`` / ``snn.LI``, one training loop in plain PyTorch, then the same network trained by
``snn.training.Trainer`` (progress, validation, checkpoints) without changing the model.

Run it: ``python examples/tutorials/t01_first_snn.py``.
"""
from __future__ import annotations

import torch
from torch import nn
from torch.utils.data import DataLoader

import snn
from snn.config import load_config
from snn.datasets import SpokenDigits, ToFrames, pad_collate
from snn.training import Trainer

try:
    from _common import epochs
except ImportError:  # run from another folder
    from examples.tutorials._common import epochs

torch.manual_seed(0)
torch.set_num_threads(1)

# 1. Data: the embedded set ships with the package (20 classes: digits 0-9 in English and German, SHD's layout).
#    700 cochlea channels are summed in groups of 10 (70 inputs) and binned into 10 ms frames.
frames = ToFrames(dt_ms=10.0, n_channels=700, pool=10)
train = SpokenDigits("train", frames=frames, valid_fraction=0.15, valid_by="speaker")
valid = SpokenDigits("valid", frames=frames, valid_fraction=0.15, valid_by="speaker")
loader = DataLoader(train, batch_size=32, shuffle=True, collate_fn=pad_collate)
x, labels, lengths = next(iter(loader))
print(f"a batch: x {tuple(x.shape)} = [T, B, C] spike counts, labels {tuple(labels.shape)}, lengths {lengths[:4].tolist()}...")

# 2. A network: nn.Linear acts on the last dimension, so it applies to every time step of [T, B, C] at once.
#    snn.LIF runs all T steps from rest (numba kernels on CPU); snn.LI is a leaky readout that never spikes.
model = nn.Sequential(
    nn.Linear(70, 128), snn.LIF(tau=2.0, detach_reset=True),
    nn.Linear(128, 20), snn.LI(tau=2.0),
)

# 3. Plain PyTorch: the class score is the readout membrane averaged over each sample's real (unpadded) steps.
def scores(v: torch.Tensor, lengths: torch.Tensor) -> torch.Tensor:
    mask = (torch.arange(v.shape[0])[:, None] < lengths[None, :]).float()
    return (v * mask[:, :, None]).sum(0) / lengths[:, None]

optimizer = torch.optim.Adam(model.parameters(), lr=2e-3)
for step, (x, labels, lengths) in enumerate(loader):
    loss = nn.functional.cross_entropy(scores(model(x), lengths), labels)
    optimizer.zero_grad()
    loss.backward()
    optimizer.step()
    if step % 20 == 0:
        print(f"step {step}: loss {loss.item():.3f}")

# 4. The same model through the Trainer: it picks the same default scores (time-mean over valid steps) and adds
#    validation, best-model selection, checkpoints and per-epoch metrics. Nothing in the model changes.
config = load_config({"training": {"epochs": epochs(5), "batch_size": 32, "threads": 1},
                      "optim": {"lr": 2e-3, "max_lr": 5e-3},
                      "run": {"progress": False, "tensorboard": False, "log_energy": False}})
trainer = Trainer(model, None, train, valid, config=config)
history = trainer.fit()
print(f"after {len(history)} more epochs: validation accuracy {history[-1]['valid_acc']:.3f} (chance 0.05)")
