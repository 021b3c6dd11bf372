"""EventLinear / event_linear against the dense layer (F.linear + autograd, the independent oracle)."""
from __future__ import annotations

import pytest
import torch
import torch.nn.functional as F
from torch import nn

from snn.layers import EventLinear, event_driven
from snn.layers import event_functional
from snn.models import SpikingMLP


def _grads(fn, x, w, b, g):
    x = x.detach().clone().requires_grad_(True)
    w = w.detach().clone().requires_grad_(True)
    b = b.detach().clone().requires_grad_(True) if b is not None else None
    y = fn(x, w, b)
    y.backward(g)
    return y.detach(), x.grad, w.grad, (b.grad if b is not None else None)


def _close(a, b, rtol=1e-5):
    scale = b.abs().max().clamp_min(1.0)
    torch.testing.assert_close(a, b, rtol=rtol, atol=rtol * float(scale))


def _spikes(shape, density, dtype=torch.float32, seed=0):
    g = torch.Generator().manual_seed(seed)
    return (torch.rand(shape, generator=g) < density).to(dtype)


def _spy(monkeypatch):
    calls = []
    original = event_functional._apply
    monkeypatch.setattr(event_functional, "_apply", lambda *a: calls.append(1) or original(*a))
    return calls


@pytest.mark.parametrize("dtype", [torch.float32, torch.float64])
@pytest.mark.parametrize("density", [0.0, 0.01, 0.05, 0.2, 1.0])
@pytest.mark.parametrize("shape", [(9, 5, 37), (1, 1, 1), (3, 17)])
def test_event_path_equals_dense_outputs_and_gradients(dtype, density, shape, monkeypatch):
    calls = _spy(monkeypatch)
    g = torch.Generator().manual_seed(1)
    c_out = 13
    x = _spikes(shape, density, dtype)
    w = torch.randn(c_out, shape[-1], generator=g, dtype=dtype)
    b = torch.randn(c_out, generator=g, dtype=dtype)
    grad = torch.randn(*shape[:-1], c_out, generator=g, dtype=dtype)
    ours = _grads(lambda x, w, b: event_functional.event_linear(x, w, b, threshold=1.0), x, w, b, grad)
    dense = _grads(F.linear, x, w, b, grad)
    assert calls, "the event path did not run"
    rtol = 1e-5 if dtype == torch.float32 else 1e-12
    for a, d in zip(ours, dense):
        _close(a, d, rtol)


@pytest.mark.parametrize("threads", [1, 2])
def test_wide_layers_span_several_weight_gradient_blocks_and_equal_dense(threads, monkeypatch):
    # c_out = 1024 makes a weight-gradient block 32 rows: 210 rows span 7 blocks (the last one partial), rows
    # hold 0 to 40 non-zeros (the four-at-a-time passes and their remainders), split over threads.
    import numba

    calls = _spy(monkeypatch)
    g = torch.Generator().manual_seed(3)
    density = torch.rand(70, 3, 1, generator=g)
    x = (torch.rand(70, 3, 40, generator=g) < density).double() * 1.25
    w = torch.randn(1024, 40, generator=g, dtype=torch.float64)
    b = torch.randn(1024, generator=g, dtype=torch.float64)
    grad = torch.randn(70, 3, 1024, generator=g, dtype=torch.float64)
    before = numba.get_num_threads()
    numba.set_num_threads(min(threads, numba.config.NUMBA_NUM_THREADS))
    try:
        ours = _grads(lambda x, w, b: event_functional.event_linear(x, w, b, threshold=1.0), x, w, b, grad)
    finally:
        numba.set_num_threads(before)
    dense = _grads(F.linear, x, w, b, grad)
    assert calls, "the event path did not run"
    for a, d in zip(ours, dense):
        _close(a, d, 1e-12)


def test_dropout_scaled_spikes_and_integer_counts_are_exact_on_the_event_path(monkeypatch):
    calls = _spy(monkeypatch)
    x = _spikes((20, 4, 50), 0.05) * 1.25 + _spikes((20, 4, 50), 0.03, seed=3) * 3.0  # values 0, 1.25, 3, 4.25
    w, b, grad = torch.randn(30, 50), torch.randn(30), torch.randn(20, 4, 30)
    ours = _grads(lambda x, w, b: event_functional.event_linear(x, w, b, threshold=0.5), x, w, b, grad)
    for a, d in zip(ours, _grads(F.linear, x, w, b, grad)):
        _close(a, d)
    assert calls


def test_dense_real_valued_input_takes_the_dense_path(monkeypatch):
    calls = _spy(monkeypatch)
    x, w, b, grad = torch.randn(10, 3, 40), torch.randn(8, 40), torch.randn(8), torch.randn(10, 3, 8)
    ours = _grads(lambda x, w, b: event_functional.event_linear(x, w, b), x, w, b, grad)
    for a, d in zip(ours, _grads(F.linear, x, w, b, grad)):
        torch.testing.assert_close(a, d, rtol=0, atol=0)
    assert not calls


def test_density_above_threshold_is_dense_and_below_is_event(monkeypatch):
    calls = _spy(monkeypatch)
    x = torch.zeros(10, 100)
    x[:, :20] = 1.0  # density exactly 0.2
    w = torch.randn(64, 100)
    event_functional.event_linear(x, w, None, threshold=0.19)
    assert not calls
    event_functional.event_linear(x, w, None, threshold=0.2)
    assert len(calls) == 1


def test_unsupported_inputs_fall_back_to_f_linear():
    x = _spikes((4, 3, 8), 0.1).to(torch.bfloat16)
    w = torch.randn(5, 8, dtype=torch.bfloat16)
    torch.testing.assert_close(event_functional.event_linear(x, w, None, 1.0), F.linear(x, w))
    with pytest.raises(RuntimeError):  # mismatched shapes: torch's own error, not a wrong answer
        event_functional.event_linear(torch.zeros(2, 7), torch.zeros(5, 8), None, 1.0)
    with pytest.raises(ValueError, match="threshold"):
        event_functional.event_linear(x, w, None, 1.5)


def test_negative_zero_and_nan_are_treated_as_dense_would():
    x = torch.zeros(3, 40)
    x[0, 5] = -0.0
    x[1, 33] = float("nan")
    w = torch.randn(6, 40)
    ours = event_functional.event_linear(x, w, None, 1.0)
    torch.testing.assert_close(ours, F.linear(x, w), equal_nan=True)


def test_crossover_density_rule():
    # below every measured break-even density (700->256: 0.39, 256->256: 0.42, 256->20: 0.07; one thread)
    assert event_functional.crossover_density(20) == pytest.approx(0.07)
    assert 0.33 < event_functional.crossover_density(256) < 0.36
    assert event_functional.crossover_density(1) == 0.0


def test_event_linear_module_matches_nn_linear_api_and_state_dict():
    torch.manual_seed(0)
    ref = nn.Linear(12, 7)
    ours = EventLinear(12, 7, threshold=0.5)
    ours.load_state_dict(ref.state_dict())
    assert set(ours.state_dict()) == set(ref.state_dict())
    x = _spikes((6, 2, 12), 0.1)
    torch.testing.assert_close(ours(x), ref(x))
    assert isinstance(ours, nn.Linear)
    with pytest.raises(ValueError, match="threshold"):
        EventLinear(3, 4, threshold=-0.1)


def test_event_driven_converts_in_place_keeping_parameters():
    model = nn.Sequential(nn.Linear(5, 4), nn.ReLU(), nn.Sequential(nn.Linear(4, 3)))
    params = [id(p) for p in model.parameters()]
    first = model[0]
    assert event_driven(model, threshold=0.3) is model
    assert model[0] is first and type(first) is EventLinear and first.threshold == 0.3
    assert type(model[2][0]) is EventLinear
    assert [id(p) for p in model.parameters()] == params
    with pytest.raises(TypeError, match="model"):
        event_driven("not a model")


def test_snn_mlp_gradients_with_event_layers_equal_the_dense_model(monkeypatch):
    calls = _spy(monkeypatch)
    torch.manual_seed(0)
    dense = SpikingMLP(60, 5, hidden=32, layers=2, dropout=0.0, event_driven=False).double()
    ours = SpikingMLP(60, 5, hidden=32, layers=2, dropout=0.0, event_driven=True).double()
    ours.load_state_dict(dense.state_dict())
    assert any(type(m) is EventLinear for m in ours.modules())
    assert not any(type(m) is EventLinear for m in dense.modules())
    x = _spikes((25, 4, 60), 0.05, torch.float64)
    y = torch.tensor([0, 1, 2, 3])
    for m in (dense, ours):
        m.loss(m(x), y).backward()
    assert calls
    for (name, p), q in zip(dense.named_parameters(), ours.parameters()):
        assert p.grad is not None, name
        torch.testing.assert_close(q.grad, p.grad, rtol=1e-9, atol=1e-11, msg=name)


@pytest.mark.parametrize("family,first", [("snn_mlp", "synapses.0"), ("rsnn", "recurrent_layers.0.input")])
def test_energy_counter_sees_the_same_operations_as_for_nn_linear(family, first):
    from snn.energy.counter import OperationCounter
    from snn.models import RecurrentSNN

    x = _spikes((20, 3, 50), 0.05)
    build = SpikingMLP if family == "snn_mlp" else RecurrentSNN
    found = []
    for event in (True, False):
        torch.manual_seed(0)
        model = build(50, 4, hidden=32, event_driven=event).eval()
        counter = OperationCounter(model)
        with counter:
            counter.begin(20, 3)
            model(x)
            counter.end()
        found.append({k: (v.kind, v.total("synops"), v.total("macs_dense"), v.params)
                      for k, v in counter.layers.items() if v.is_synaptic})
    assert found[0] == found[1] and found[0][first][1] == float((x != 0).sum()) * 32
