"""DDP on CPU (gloo): 2 processes give the same weights as 1 process on the same global batches.

BatchNorm would normalise with per-rank statistics (different from one process's statistics over the global
batch), and dropout masks depend on each rank's RNG, so the compared model has ``batchnorm: false`` and
``dropout: 0``; ``shuffle: false`` makes each global batch the same set of samples in both runs (rank r takes
samples r, r+2, … of it). Gradients are averaged over ranks, equal to the global mean because local batches have
equal sizes; ``DelayNet.forward(x, lengths)`` masks each sample's padded steps, so the different padding of
local and global batches changes nothing. Delays are frozen at zero: Adam's first step moves every parameter by
about ``±lr`` whatever the gradient's size, so a position whose gradient is rounding noise (~1e-7; sums run in
a different order) can step either way, and spikes then diverge; weights alone stay within the tolerance.
"""
from __future__ import annotations

import os
import socket

import pytest
import torch
import torch.multiprocessing as mp

from snn.training import run
from snn.training.checkpoint import load_checkpoint


def _free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def _worker(rank: int, world: int, port: int, cfg: dict, out: str) -> None:
    os.environ.update(MASTER_ADDR="127.0.0.1", MASTER_PORT=str(port), RANK=str(rank), WORLD_SIZE=str(world),
                      LOCAL_RANK=str(rank))
    import torch.distributed as dist

    try:
        run(cfg, out=out)
    finally:
        if dist.is_initialized():
            dist.destroy_process_group()


def _assert_two_processes_match_one(cfg: dict, tmp_path) -> None:
    """Train ``cfg`` in one process and in two gloo processes; the final weights agree."""
    run(cfg, out=tmp_path / "single")
    mp.spawn(_worker, args=(2, _free_port(), cfg, str(tmp_path / "ddp")), nprocs=2, join=True)
    a = load_checkpoint(tmp_path / "single" / "last.pt")["model"]
    b = load_checkpoint(tmp_path / "ddp" / "last.pt")["model"]
    assert a.keys() == b.keys()
    for k in a:
        assert torch.allclose(a[k].float(), b[k].float(), atol=1e-4, rtol=1e-4), (k, (a[k] - b[k]).abs().max())


@pytest.mark.slow
def test_two_gloo_processes_match_one_process(tiny, tmp_path):
    cfg = tiny(model={"batchnorm": False, "dropout": 0.0, "delays": "frozen_zero"},
               training={"epochs": 2, "batch_size": 8, "shuffle": False, "device": "cpu"},
               run={"energy": False, "plots": False, "test_at_end": False})
    _assert_two_processes_match_one(cfg, tmp_path)
    assert not (tmp_path / "ddp" / "last.pt.tmp").exists()


@pytest.mark.slow
def test_a_local_rule_under_two_gloo_processes_matches_one_process(tiny, tmp_path):
    """SoftHebb (centred rates, batch mean) on the hidden layer, readout by backprop in the same step, through
    ``snn.run`` and the Trainer's DDP wrapper: the same weights as one process on the same global batches."""
    cfg = tiny(training={"epochs": 2, "batch_size": 8, "shuffle": False, "device": "cpu",
                         "rule": {"name": "softhebb", "layers": "synapses.0", "centre": True, "tau": 0.5,
                                  "batch_reduction": "mean", "lr": 0.05}},
               run={"energy": False, "plots": False, "test_at_end": False, "log_energy": False})
    cfg["model"] = {"name": "snn_mlp", "hidden": 16, "layers": 1, "tau_ms": 10.0, "dropout": 0.0, "batchnorm": False}
    _assert_two_processes_match_one(cfg, tmp_path)
    w = load_checkpoint(tmp_path / "single" / "last.pt")["model"]["synapses.0.weight"]
    assert w.norm(dim=1).min() > 0.1, "SoftHebb rows collapsed: the comparison would be trivial"
