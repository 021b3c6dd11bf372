"""EventConv2d / event_conv2d against the dense convolution (F.conv2d + autograd, the independent oracle)."""
from __future__ import annotations

import pytest
import torch
import torch.nn.functional as F
from torch import nn

from snn.layers import EventConv2d, event_driven
from snn.layers import event_conv_functional, event_functional

from .test_event_linear import _close, _grads, _spikes


@pytest.fixture
def calls(monkeypatch):
    """Counts the runs of both event paths (k×k kernels, and 1×1 through EventLinear's)."""
    seen = []
    conv, linear = event_conv_functional._apply_conv, event_conv_functional._apply
    monkeypatch.setattr(event_conv_functional, "_apply_conv", lambda *a: seen.append("conv") or conv(*a))
    monkeypatch.setattr(event_conv_functional, "_apply", lambda *a: seen.append("pointwise") or linear(*a))
    return seen


GEOMETRIES = [  # (C_in, C_out, H, W, kernel, stride, padding, dilation, bias)
    (5, 7, 9, 11, 3, 1, 1, 1, True),      # the stem / RPE / conv block 3x3
    (4, 6, 10, 7, 3, 2, 1, 1, False),     # strided downsampling, odd width
    (3, 5, 8, 8, (3, 5), (2, 1), (0, 2), 1, True),  # rectangular kernel, mixed stride and padding
    (3, 4, 11, 9, 3, 1, 2, 2, True),      # dilation
    (6, 9, 5, 4, 1, 1, 0, 1, True),       # 1x1 (EventLinear's kernels)
    (6, 9, 7, 7, 1, 2, 0, 1, False),      # strided 1x1 (conv kernels)
    (2, 3, 5, 6, 5, 1, 0, 1, True),       # kernel as tall as the input: one output row
]


@pytest.mark.parametrize("dtype", [torch.float32, torch.float64])
@pytest.mark.parametrize("density", [0.0, 0.05, 0.3, 1.0])
@pytest.mark.parametrize("geometry", GEOMETRIES)
def test_event_path_equals_dense_outputs_and_gradients(geometry, density, dtype, calls):
    c_in, c_out, H, W, k, s, p, d, bias = geometry
    g = torch.Generator().manual_seed(1)
    kh, kw = (k, k) if isinstance(k, int) else k
    x = _spikes((6, c_in, H, W), density, dtype)
    w = torch.randn(c_out, c_in, kh, kw, generator=g, dtype=dtype)
    b = torch.randn(c_out, generator=g, dtype=dtype) if bias else None
    out_shape = F.conv2d(x, w, b, s, p, d).shape
    grad = torch.randn(out_shape, generator=g, dtype=dtype)
    ours = _grads(lambda x, w, b: event_conv_functional.event_conv2d(x, w, b, s, p, d, threshold=1.0), x, w, b, grad)
    dense = _grads(lambda x, w, b: F.conv2d(x, w, b, s, p, d), x, w, b, grad)
    assert calls, "the event path did not run"
    assert ours[0].is_contiguous() and ours[0].shape == out_shape
    rtol = 1e-5 if dtype == torch.float32 else 1e-12
    for a, ref in zip(ours, dense):
        if ref is not None:
            _close(a, ref, rtol)


def test_pointwise_takes_eventlinear_kernels_and_strided_takes_conv_kernels(calls):
    x = _spikes((4, 6, 5, 5), 0.1)
    event_conv_functional.event_conv2d(x, torch.randn(3, 6, 1, 1), None, threshold=1.0)
    event_conv_functional.event_conv2d(x, torch.randn(3, 6, 3, 3), None, padding=1, threshold=1.0)
    assert calls == ["pointwise", "conv"]


@pytest.mark.parametrize("threads", [1, 2])
def test_threads_split_frames_and_equal_dense(threads, calls):
    # wide output (four-at-a-time scatter and its remainder: 0-13 non-zeros per pixel), frames split over threads
    import numba

    g = torch.Generator().manual_seed(3)
    density = torch.rand(7, 1, 1, 1, generator=g)
    x = (torch.rand(7, 13, 6, 5, generator=g) < density).double() * 1.25
    w = torch.randn(70, 13, 3, 3, generator=g, dtype=torch.float64)
    b = torch.randn(70, generator=g, dtype=torch.float64)
    grad = torch.randn(7, 70, 3, 3, generator=g, dtype=torch.float64)
    before = numba.get_num_threads()
    numba.set_num_threads(min(threads, numba.config.NUMBA_NUM_THREADS))
    try:
        ours = _grads(lambda x, w, b: event_conv_functional.event_conv2d(x, w, b, 2, 1, threshold=1.0), x, w, b, grad)
    finally:
        numba.set_num_threads(before)
    assert calls
    for a, ref in zip(ours, _grads(lambda x, w, b: F.conv2d(x, w, b, 2, 1), x, w, b, grad)):
        _close(a, ref, 1e-12)


def test_event_counts_and_scaled_spikes_are_exact_on_the_event_path(calls):
    x = _spikes((5, 4, 8, 8), 0.05) * 1.25 + _spikes((5, 4, 8, 8), 0.03, seed=3) * 3.0  # 0, 1.25, 3, 4.25
    w, b, grad = torch.randn(6, 4, 3, 3), torch.randn(6), torch.randn(5, 6, 8, 8)
    ours = _grads(lambda x, w, b: event_conv_functional.event_conv2d(x, w, b, 1, 1, threshold=0.5), x, w, b, grad)
    for a, ref in zip(ours, _grads(lambda x, w, b: F.conv2d(x, w, b, 1, 1), x, w, b, grad)):
        _close(a, ref)
    assert calls


def test_dense_real_valued_input_takes_the_dense_path_bit_for_bit(calls):
    x, w, b, grad = torch.randn(3, 4, 6, 6), torch.randn(5, 4, 3, 3), torch.randn(5), torch.randn(3, 5, 6, 6)
    ours = _grads(lambda x, w, b: event_conv_functional.event_conv2d(x, w, b, 1, 1), x, w, b, grad)
    for a, ref in zip(ours, _grads(lambda x, w, b: F.conv2d(x, w, b, 1, 1), x, w, b, grad)):
        torch.testing.assert_close(a, ref, rtol=0, atol=0)
    assert not calls


def test_density_above_threshold_is_dense_and_below_is_event(calls):
    x = torch.zeros(2, 10, 4, 4)
    x[:, :2] = 1.0  # density exactly 0.2
    w = torch.randn(8, 10, 3, 3)
    event_conv_functional.event_conv2d(x, w, None, padding=1, threshold=0.19)
    assert not calls
    event_conv_functional.event_conv2d(x, w, None, padding=1, threshold=0.2)
    assert calls == ["conv"]


@pytest.mark.parametrize("case", ["groups", "same", "unbatched", "bfloat16", "reflect"])
def test_unsupported_options_fall_back_to_dense_with_the_same_answer(case, calls):
    torch.manual_seed(0)
    x = _spikes((2, 4, 6, 6), 0.1)
    kwargs = dict(padding=1)
    if case == "groups":
        kwargs["groups"] = 2
    elif case == "same":
        kwargs["padding"] = "same"
    elif case == "reflect":
        kwargs["padding_mode"] = "reflect"
    ref = nn.Conv2d(4, 6, 3, **kwargs)
    ours = EventConv2d(4, 6, 3, threshold=1.0, **kwargs)
    ours.load_state_dict(ref.state_dict())
    if case == "unbatched":
        x = x[0]
    elif case == "bfloat16":
        x, ref, ours = x.bfloat16(), ref.bfloat16(), ours.bfloat16()
    torch.testing.assert_close(ours(x), ref(x), rtol=0, atol=0)
    assert not calls


def test_bad_arguments_raise_before_any_work():
    with pytest.raises(ValueError, match="threshold"):
        event_conv_functional.event_conv2d(torch.zeros(1, 2, 3, 3), torch.zeros(1, 2, 1, 1), threshold=1.5)
    with pytest.raises(ValueError, match="threshold"):
        EventConv2d(2, 3, 3, threshold=-0.1)
    with pytest.raises(RuntimeError):  # mismatched channels: torch's own error, not a wrong answer
        event_conv_functional.event_conv2d(torch.zeros(1, 3, 5, 5), torch.zeros(2, 4, 3, 3), threshold=1.0)


def test_crossover_density_rule():
    # below every measured break-even (one thread): 3x3 64 outputs 0.17, 128: 0.28-0.32, 256: 0.33-0.40; 1x1
    # 256 -> 256: 0.40, 256 -> 1024 and 1024 -> 256: 0.31; 2 -> 32 on event counts never paid
    rule = event_conv_functional.conv_crossover_density
    assert rule(256, (1, 1)) == rule(1024, (1, 1)) == 0.28
    assert rule(20, (1, 1)) == event_functional.crossover_density(20)
    assert rule(64, (3, 3)) < 0.17 and rule(128, (3, 3)) < 0.28 and rule(256, (3, 3)) < 0.33
    assert rule(32, (3, 3)) == 0.0


def test_module_matches_nn_conv2d_api_and_state_dict(calls):
    torch.manual_seed(0)
    ref = nn.Conv2d(5, 7, 3, stride=2, padding=1)
    ours = EventConv2d(5, 7, 3, stride=2, padding=1, threshold=0.5)
    ours.load_state_dict(ref.state_dict())
    assert set(ours.state_dict()) == set(ref.state_dict()) and isinstance(ours, nn.Conv2d)
    x = _spikes((4, 5, 9, 9), 0.1)
    torch.testing.assert_close(ours(x), ref(x))
    assert calls and "threshold=0.5" in repr(ours)


def test_event_driven_converts_conv2d_in_place_keeping_parameters():
    model = nn.Sequential(nn.Conv2d(2, 4, 3), nn.ReLU(), nn.Sequential(nn.Linear(4, 3), nn.Conv2d(4, 4, 1)),
                          nn.Conv1d(2, 2, 3))
    params = [id(p) for p in model.parameters()]
    first = model[0]
    assert event_driven(model, threshold=0.3) is model
    assert model[0] is first and type(first) is EventConv2d and first.threshold == 0.3
    assert type(model[2][1]) is EventConv2d and type(model[3]) is nn.Conv1d
    assert [id(p) for p in model.parameters()] == params
    plain = nn.Sequential(nn.Conv2d(2, 4, 3))
    assert type(event_driven(plain, conv=False)[0]) is nn.Conv2d


@pytest.mark.parametrize("geometry", [(3, 1, 1, True), (3, 2, 1, False), (1, 1, 0, True)])
def test_energy_counter_sees_the_same_operations_as_for_nn_conv2d(geometry):
    from snn.energy.counter import OperationCounter
    from snn.layers import PerStep

    k, s, p, bias = geometry
    T, B = 3, 2
    x = _spikes((T, B, 4, 7, 7), 0.1)
    found = []
    for cls in (nn.Conv2d, EventConv2d):
        torch.manual_seed(0)
        model = nn.Sequential(PerStep(cls(4, 5, k, stride=s, padding=p, bias=bias))).eval()
        counter = OperationCounter(model)
        with counter:
            counter.begin(T, B)
            model(x)
            counter.end()
        found.append({name: (v.kind, v.total("synops"), v.total("macs_dense"), v.total("input_events"), v.params)
                      for name, v in counter.layers.items() if v.is_synaptic})
    assert found[0] == found[1] and found[0]


def test_negative_zero_and_nan_are_treated_as_dense_would(calls):
    x = torch.zeros(2, 3, 5, 5)
    x[0, 1, 2, 2] = -0.0
    x[1, 2, 0, 4] = float("nan")
    w = torch.randn(4, 3, 3, 3)
    ours = event_conv_functional.event_conv2d(x, w, None, padding=1, threshold=1.0)
    torch.testing.assert_close(ours, F.conv2d(x, w, None, padding=1), equal_nan=True)
    assert calls == ["conv"]


def test_synops_penalty_is_the_same_as_for_nn_conv2d():
    # the penalty reads the declared operations with its own guess of the batch (here the channel count, 4, which
    # does not divide the 6 frames): the sum |spikes| x fan-out must still be nn.Conv2d's
    import snn
    from snn.energy import SynOpsPenalty
    from snn.layers import PerStep

    found = []
    for cls in (nn.Conv2d, EventConv2d):
        torch.manual_seed(0)
        net = nn.Sequential(PerStep(nn.Conv2d(2, 4, 3, padding=1)), snn.LIF(v_threshold=0.3),
                            PerStep(cls(4, 5, 3, stride=2, padding=1)))
        penalty = SynOpsPenalty(net)
        penalty.reset()
        net(torch.rand(3, 2, 2, 7, 7) * 2)
        found.append(penalty.synops())
        penalty.remove()
    assert found[0].item() > 0
    torch.testing.assert_close(found[1], found[0])
