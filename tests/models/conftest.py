"""Shared checks of the model tests."""
from __future__ import annotations

import pytest
import torch


@pytest.fixture
def run_dense_and_event(monkeypatch):
    """``run(dense, ours, x, y)``: forward + loss + backward of both models on ``(x, y)``; asserts the event-driven
    model actually took the event conv path and gave the dense model's outputs (float64 tolerances)."""
    from snn.layers import event_conv_functional

    calls = []
    original = event_conv_functional._apply_conv
    monkeypatch.setattr(event_conv_functional, "_apply_conv", lambda *a: calls.append(1) or original(*a))

    def run(dense: torch.nn.Module, ours: torch.nn.Module, x: torch.Tensor, y: torch.Tensor) -> None:
        outs = []
        for m in (dense, ours):
            out = m(x)
            m.loss(out, y).backward()
            outs.append(out.detach())
        assert calls
        torch.testing.assert_close(outs[1], outs[0], rtol=1e-10, atol=1e-12)

    return run
