"""Local rules under torch.distributed: 2 gloo processes on localhost, each recording its share of a batch, end
with the Δw one process computes on the concatenated batch (the documented reduction: updates and row counts are
summed over processes before the batch reduction, so ``mean``, SoftHebb's ``normalise`` and its ``centre`` are
exact even for unequal shares)."""
from __future__ import annotations

import os
import socket

import pytest
import torch
import torch.multiprocessing as mp
from torch import nn

import snn
from snn.rules import RSTDP, STDP, SoftHebb

T, B = 6, 7  # B odd: the two processes get 3 and 4 samples
SHARES = (slice(0, 3), slice(3, B))


class SeqConv(nn.Module):
    """A Conv2d applied to every step of ``[T, B, C, H, W]`` (the rule sees ``[T·B, C, H, W]``)."""

    def __init__(self) -> None:
        super().__init__()
        self.conv = nn.Conv2d(2, 3, kernel_size=3, padding=1, stride=2, bias=False)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        y = self.conv(x.flatten(0, 1))
        return y.view(x.shape[0], x.shape[1], *y.shape[1:])


def _case(name: str):
    """(model, rule, input [T, B, ...], record T, write_grads kwargs) of one case, the same in every process."""
    torch.manual_seed(0)
    if name == "conv_stdp":
        model = nn.Sequential(SeqConv(), snn.LIF(tau=2.0, v_threshold=0.3)).double()
        x = (torch.rand(T, B, 2, 6, 6) < 0.3).double()
        return model, STDP(layers="0.conv", a_plus=0.01, a_minus=0.012, batch_reduction="mean"), x, T, {}
    model = nn.Sequential(nn.Linear(6, 4), snn.LIF(tau=2.0, v_threshold=0.4)).double()
    x = (torch.rand(T, B, 6) < 0.4).double()
    rules = {
        "stdp_sum": STDP(layers="0", a_plus=0.01, a_minus=0.012),
        "stdp_mult_mean": STDP(layers="0", a_plus=0.01, a_minus=0.012, weight_dependence="multiplicative",
                               w_min=-1.0, w_max=1.0, batch_reduction="mean"),
        "softhebb_centre_mean": SoftHebb(layers="0", tau=0.5, centre=True, anti_hebbian=True,
                                         batch_reduction="mean"),
        "softhebb_normalise": SoftHebb(layers="0", tau=0.5, normalise=True, anti_hebbian=False),
        "rstdp": RSTDP(layers="0", a_plus=0.01, a_minus=0.012),
    }
    kwargs = {"reward": torch.linspace(-1.0, 1.0, B, dtype=torch.float64)} if name == "rstdp" else {}
    return model, rules[name], x, None, kwargs


CASES = ["stdp_sum", "stdp_mult_mean", "conv_stdp", "softhebb_centre_mean", "softhebb_normalise", "rstdp"]


def _delta(name: str, share: slice | None) -> torch.Tensor:
    model, rule, x, steps, kwargs = _case(name)
    rule.attach(model)
    part = slice(None) if share is None else share
    kwargs = {k: v[part] for k, v in kwargs.items()}
    with rule.record(steps):
        model(x[:, part])
    (dw,) = rule.write_grads(**kwargs).values()
    return dw


def _free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def _worker(rank: int, world: int, port: int, out: str) -> None:
    import torch.distributed as dist

    os.environ.update(MASTER_ADDR="127.0.0.1", MASTER_PORT=str(port))
    torch.set_num_threads(1)
    dist.init_process_group("gloo", rank=rank, world_size=world)
    try:
        torch.save({name: _delta(name, SHARES[rank]) for name in CASES}, os.path.join(out, f"rank{rank}.pt"))
    finally:
        dist.destroy_process_group()


@pytest.mark.slow  # two spawned interpreters importing torch: ~30 s on a loaded machine
def test_two_gloo_processes_reduce_dw_like_one_process_on_the_concatenated_batch(tmp_path):
    mp.spawn(_worker, args=(2, _free_port(), str(tmp_path)), nprocs=2, join=True)
    ranks = [torch.load(tmp_path / f"rank{r}.pt") for r in range(2)]
    for name in CASES:
        single = _delta(name, None)
        alone = _delta(name, SHARES[0])  # what rank 0 would apply without the reduction
        assert single.abs().sum() > 0, name
        assert not torch.allclose(alone, single), f"{name}: the shares alone already agree; the test cannot fail"
        for r, got in enumerate(ranks):
            torch.testing.assert_close(got[name], single, rtol=1e-10, atol=1e-12, msg=f"{name}, rank {r}")
