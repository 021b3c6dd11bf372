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


@pytest.mark.peers
@pytest.mark.parametrize("slope", [25.0, 3.0])
def test_fast_sigmoid_matches_snntorch(slope):
    snntorch_surrogate = pytest.importorskip("snntorch.surrogate")
    x = X.float().clone().requires_grad_()  # snnTorch's spike function returns float32
    spikes = snntorch_surrogate.fast_sigmoid(slope=slope)(x)
    spikes.sum().backward()
    torch.testing.assert_close(sg.FastSigmoid(slope).derivative(X).float(), x.grad)
    # forward: the same step except at 0 (snnTorch: Θ(0) = 0, ours and SpikingJelly's: Θ(0) = 1)
    nonzero = X != 0
    assert torch.equal(spikes.detach()[nonzero], sg.FastSigmoid(slope)(X).float()[nonzero])


class Gauss(sg.Surrogate):
    """A user-declared surrogate: σ'(x) = α/√(2π) · exp(-(αx)²/2)."""

    program = """
        ax = alpha * x
        sg = alpha * 0.3989422804014327 * exp(-0.5 * ax * ax)
    """
    parameter_names = ("alpha",)

    def __init__(self, alpha: float = 2.0):
        self.alpha = float(alpha)


def _gauss(x, alpha):
    return alpha / math.sqrt(2 * math.pi) * torch.exp(-0.5 * (alpha * x) ** 2)


def test_a_user_declared_surrogate_gives_its_own_derivative():
    torch.testing.assert_close(Gauss(3.0).derivative(X), _gauss(X, 3.0))


@pytest.mark.parametrize("backend", ["torch", "numba"])
def test_a_user_declared_surrogate_runs_in_every_backend(backend):
    from snn.neuron_models import LIF

    # one step, tau = 1 (H = X): ∂S/∂X = σ'(X - V_th), by hand from the Gaussian
    x = torch.tensor([0.7, 1.0, 1.4], dtype=torch.float64).view(1, 1, 3).requires_grad_()
    spikes = LIF(tau=1.0, surrogate=Gauss(3.0), backend=backend).double()(x)
    assert spikes.flatten().tolist() == [0.0, 1.0, 1.0]
    spikes.sum().backward()
    torch.testing.assert_close(x.grad.flatten(), _gauss(torch.tensor([-0.3, 0.0, 0.4], dtype=torch.float64), 3.0))


def test_a_user_declared_surrogate_runs_in_the_cuda_source_through_the_host_shim():
    from snn.kernels import fused, host_shim, reference
    from snn.neuron_models import lif_dynamics

    if host_shim.compiler() is None:
        pytest.skip("no host C++ compiler (g++) to build the shim")
    d = lif_dynamics(True, True, False, "divide", Gauss(3.0))
    g = torch.Generator().manual_seed(0)
    x = torch.rand(12, 50, generator=g, dtype=torch.float64) * 1.5
    scalars = [1.0, 0.0, 3.0]
    tau, init = torch.full((50,), 2.0, dtype=torch.float64), [torch.zeros(50, dtype=torch.float64)]
    results = []
    for runner in (host_shim.HostCudaRunner(), None):
        leaf = x.clone().requires_grad_()
        if runner is None:
            spikes = reference.run(d, leaf, init, [tau], scalars)[0]
        else:
            spikes = fused.run(d, runner, leaf, [tau], init, scalars, False)[0]
        spikes.sum().backward()
        results.append((spikes.detach(), leaf.grad))
    assert results[0][0].sum() > 0 and torch.equal(results[0][0], results[1][0])
    torch.testing.assert_close(results[0][1], results[1][1], rtol=1e-10, atol=1e-12)


def test_a_torch_only_surrogate_runs_on_the_reference_and_fused_backends_say_why_not():
    from snn.neuron_models import LIF

    def gauss3(x):
        return _gauss(x, 3.0)

    custom = sg.Custom(gauss3)
    assert repr(custom) == "Custom(gauss3)" and not custom.declared
    x = torch.tensor([0.7, 1.0, 1.4]).view(1, 1, 3).requires_grad_()
    LIF(tau=1.0, surrogate=custom, backend="auto")(x).sum().backward()  # auto falls back to the reference
    torch.testing.assert_close(x.grad.flatten(), _gauss(torch.tensor([-0.3, 0.0, 0.4]), 3.0))
    with pytest.raises(ValueError, match=r"surrogate Custom\(gauss3\) is a torch function.*backend='numba'"):
        LIF(surrogate=custom, backend="numba")

    class Half(sg.Surrogate):  # a subclass overriding torch_derivative instead of declaring a program
        def torch_derivative(self, x):
            return torch.full_like(x, 0.5)

    x = torch.tensor([[[0.3]]], requires_grad=True)
    LIF(tau=1.0, surrogate=Half())(x).sum().backward()
    assert x.grad.item() == 0.5


def test_a_surrogate_with_neither_program_nor_function_is_an_error():
    from snn.neuron_models import LIF

    class Empty(sg.Surrogate):
        pass

    with pytest.raises(TypeError, match="must set `program`.*or override `torch_derivative"):
        LIF(surrogate=Empty())
