import math

import pytest
import torch

from snn import surrogate as sg

X = torch.linspace(-2, 2, 41, dtype=torch.float64)


@pytest.mark.parametrize(
    "surrogate, closed_form",
    [
        (sg.ATan(2.0), lambda x: 1.0 / (1 + (math.pi / 2 * 2.0 * x) ** 2)),
        (sg.ATan(5.0), lambda x: 2.5 / (1 + (math.pi / 2 * 5.0 * x) ** 2)),
        (sg.Sigmoid(4.0), lambda x: 4.0 * torch.sigmoid(4 * x) * (1 - torch.sigmoid(4 * x))),
        (sg.SuperSpike(1.0), lambda x: 1.0 / (1 + x.abs()) ** 2),
        (sg.FastSigmoid(25.0), lambda x: 1.0 / (1 + 25 * x.abs()) ** 2),
        (sg.Triangle(1.0), lambda x: torch.clamp(1 - x.abs(), min=0)),
    ],
    ids=lambda v: repr(v) if isinstance(v, sg.Surrogate) else "",
)
def test_derivative_matches_closed_form(surrogate, closed_form):
    torch.testing.assert_close(surrogate.derivative(X), closed_form(X))


@pytest.mark.parametrize("surrogate", [s() for s in sg.ALL], ids=lambda s: type(s).__name__)
def test_spike_function_is_heaviside_with_surrogate_gradient(surrogate):
    x = X.clone().requires_grad_()
    y = surrogate(x)
    assert torch.equal(y, (X >= 0).double())  # Θ(0) = 1
    y.sum().backward()
    torch.testing.assert_close(x.grad, surrogate.derivative(X))


@pytest.mark.parametrize("cls", [sg.ATan, sg.Sigmoid, sg.Triangle], ids=lambda c: c.__name__)
def test_integral_of_derivative_is_one(cls):
    # these surrogates are derivatives of smoothed steps from 0 to 1 (SuperSpike and FastSigmoid are not normalised)
    x = torch.linspace(-400, 400, 800001, dtype=torch.float64)
    area = torch.trapezoid(cls().derivative(x), x).item()
    assert abs(area - 1.0) < 1e-2


@pytest.mark.peers
@pytest.mark.parametrize("name, alpha", [("ATan", 2.0), ("ATan", 5.0), ("Sigmoid", 4.0), ("SuperSpike", 1.0), ("PiecewiseQuadratic", 1.0)])
def test_matches_spikingjelly_definitions(name, alpha):
    sj = pytest.importorskip("spikingjelly.activation_based.surrogate")
    x = X.clone().requires_grad_()
    getattr(sj, name)(alpha=alpha)(x).sum().backward()
    ours = getattr(sg, name)(alpha)
    torch.testing.assert_close(ours.derivative(X), x.grad)


def test_resolve_and_errors():
    assert sg.resolve(None) == sg.ATan()
    assert sg.resolve("sigmoid") == sg.Sigmoid()
    with pytest.raises(ValueError, match="unknown name 'relu'"):
        sg.resolve("relu")
    with pytest.raises(TypeError, match="got int"):
        sg.resolve(3)
    with pytest.raises(ValueError, match="'alpha' must be a finite number > 0"):
        sg.ATan(0.0)
