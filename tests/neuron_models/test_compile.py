"""torch.compile on models of Linear + LIF layers: same spikes and gradients as eager.

The tests use dynamo's ``aot_eager`` backend (dynamo tracing + AOT autograd, no C++ code generation) to keep CI
fast; the inductor backend was run by hand on the same model (see benchmarks/README.md, "torch.compile").

* backend="torch" (the reference loop): dynamo traces the time loop into one graph (``fullgraph=True`` works:
  the declarations and generated step functions are cached with a dynamo-transparent dict, see kernels/memo.py).
* backend="numba": the fused kernel is wrapped in ``torch._dynamo.disable`` (neuron_models/base.py), so the
  compiled model graph-breaks around it and calls it eagerly; results must still equal eager.
"""
from __future__ import annotations

import pytest
import torch
from torch import nn

import snn

T, B, N_IN, N_HID, N_OUT = 5, 3, 12, 16, 6


def _model(backend: str) -> nn.Module:
    torch.manual_seed(0)
    model = nn.Sequential(
        nn.Linear(N_IN, N_HID),
        snn.LIF(tau=2.0, v_threshold=0.5, backend=backend),
        nn.Linear(N_HID, N_OUT),
        snn.LIF(tau=2.0, v_threshold=0.5, v_reset=None, backend=backend),
    )
    nn.init.uniform_(model[2].weight, -1.0, 1.0)  # strong enough for the output layer to fire
    return model


def _forward_backward(model: nn.Module, x: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor, torch.Tensor]:
    model.zero_grad()
    x = x.clone().requires_grad_(True)
    out = model(x)
    weights = torch.linspace(-1.0, 1.0, out.numel()).view_as(out)
    (out * weights).sum().backward()
    first = getattr(model, "_orig_mod", model)[0]
    return out.detach(), x.grad, first.weight.grad.clone()


def _inputs() -> torch.Tensor:
    return torch.randn(T, B, N_IN, generator=torch.Generator().manual_seed(1)) * 3.0


def _assert_same(compiled: nn.Module, eager: nn.Module) -> None:
    x = _inputs()
    s_e, gx_e, gw_e = _forward_backward(eager, x)
    s_c, gx_c, gw_c = _forward_backward(compiled, x)
    assert 0 < s_e.sum() < s_e.numel(), "the inputs must make the output layer fire sometimes"
    assert torch.equal(s_c, s_e)
    torch.testing.assert_close(gx_c, gx_e, rtol=1e-5, atol=1e-6)
    torch.testing.assert_close(gw_c, gw_e, rtol=1e-5, atol=1e-6)


@pytest.mark.slow
def test_reference_model_compiles_and_matches_eager():
    torch._dynamo.reset()
    model = _model("torch")
    _assert_same(torch.compile(model, backend="aot_eager"), model)


@pytest.mark.slow
def test_reference_model_compiles_as_one_graph():
    torch._dynamo.reset()
    model = _model("torch")
    _assert_same(torch.compile(model, backend="aot_eager", fullgraph=True), model)


@pytest.mark.slow
def test_numba_model_compiles_with_a_graph_break_and_matches_eager():
    torch._dynamo.reset()
    model = _model("numba")
    compiled = torch.compile(model, backend="aot_eager")
    _assert_same(compiled, model)
    # and the fused path equals the reference, so compiled-numba equals eager-torch
    reference = _model("torch")
    x = _inputs()
    assert torch.equal(compiled(x), reference(x))
