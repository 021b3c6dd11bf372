"""snn.interop.from_spikingjelly: converted SpikingJelly models compute the same outputs and gradients."""
from __future__ import annotations

import copy
import sys

import pytest
import torch
from torch import nn

import snn
from snn.interop import SingleStepNeuron, UnsupportedModule, from_spikingjelly

pytestmark = pytest.mark.peers
sj = pytest.importorskip("spikingjelly.activation_based")
from spikingjelly.activation_based import functional, layer, neuron, surrogate  # noqa: E402

T, B = 6, 3


def _conv_model() -> nn.Module:
    # tau = 2 (a power of two): our x * (1/tau) equals SpikingJelly's x / tau bit for bit.
    torch.manual_seed(0)
    return nn.Sequential(
        layer.SeqToANNContainer(nn.Conv2d(2, 4, 3, padding=1), nn.BatchNorm2d(4)),
        neuron.LIFNode(tau=2.0, surrogate_function=surrogate.ATan(alpha=2.0), step_mode="m"),
        layer.SeqToANNContainer(nn.AvgPool2d(2), nn.Flatten(), nn.Linear(4 * 4 * 4, 16)),
        neuron.ParametricLIFNode(init_tau=2.0, v_reset=None, surrogate_function=surrogate.Sigmoid(alpha=4.0),
                                 detach_reset=True, step_mode="m"),
        layer.SeqToANNContainer(nn.Linear(16, 5)),
        neuron.IFNode(v_threshold=0.5, surrogate_function=surrogate.PiecewiseQuadratic(alpha=1.0), step_mode="m"),
    )


def _run(model: nn.Module, x: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor, dict[str, torch.Tensor]]:
    functional.reset_net(model)
    model.zero_grad()
    x = x.clone().requires_grad_(True)
    out = model(x)
    g = torch.linspace(-1.0, 1.0, out.numel()).view_as(out)
    (out * g).sum().backward()
    grads = {n: p.grad.clone() for n, p in model.named_parameters() if p.grad is not None}
    return out.detach(), x.grad, grads


@pytest.mark.parametrize("backend", ["torch", "numba"])
def test_converted_conv_model_gives_identical_output_and_close_gradients(backend):
    ref = _conv_model()
    with torch.no_grad():
        ref[3].w.fill_(0.3)  # a PLIF decay that is not 1/2
    ours = from_spikingjelly(copy.deepcopy(ref), backend=backend)
    assert isinstance(ours[1], snn.LIF) and isinstance(ours[3], snn.ParametricLIF) and isinstance(ours[5], snn.IF)
    assert ours[1].backend == backend and ours[3].w.item() == pytest.approx(0.3)
    x = torch.rand(T, B, 2, 8, 8) * 3.0
    out_ref, gx_ref, g_ref = _run(ref, x)
    out, gx, g = _run(ours, x)
    assert out_ref.sum() > 0, "the test input must make the last layer fire"
    assert torch.equal(out, out_ref)
    torch.testing.assert_close(gx, gx_ref, rtol=1e-5, atol=1e-6)
    assert set(g) == set(g_ref)  # PLIF w is a parameter of both and receives a gradient
    for name in g_ref:
        torch.testing.assert_close(g[name], g_ref[name], rtol=1e-5, atol=1e-6, msg=name)


def test_linear_model_options_are_carried_over():
    model = nn.Sequential(
        nn.Linear(8, 8),
        neuron.LIFNode(tau=4.0, decay_input=False, v_threshold=0.7, v_reset=-0.1, detach_reset=True,
                       surrogate_function=surrogate.SuperSpike(alpha=3.0), step_mode="m"),
    )
    ours = from_spikingjelly(model)
    lif = ours[1]
    assert isinstance(lif, snn.LIF)
    assert (lif.tau.item(), lif.decay_input, lif.v_threshold, lif.v_reset, lif.detach_reset) == (4.0, False, 0.7, -0.1, True)
    assert lif.surrogate == snn.surrogate.SuperSpike(3.0)
    x = torch.randn(T, B, 8)
    with torch.no_grad():
        ref = copy.deepcopy(model)
        ref[1] = neuron.LIFNode(tau=4.0, decay_input=False, v_threshold=0.7, v_reset=-0.1, detach_reset=True, step_mode="m")
        functional.reset_net(ref)
        assert torch.equal(ours(x), ref(x))


def test_shared_neuron_is_converted_once_and_stays_shared():
    node = neuron.LIFNode(step_mode="m")
    model = nn.Sequential(nn.Linear(4, 4), node, nn.Linear(4, 4), node)
    ours = from_spikingjelly(model)
    assert ours[1] is ours[3] and isinstance(ours[1], snn.LIF)


def test_top_level_neuron_is_returned_converted():
    ours = from_spikingjelly(neuron.IFNode(v_reset=None, step_mode="m"))
    assert isinstance(ours, snn.IF) and ours.v_reset is None


def test_single_step_node_becomes_a_stateful_wrapper_matching_spikingjelly():
    torch.manual_seed(1)
    ref = nn.Sequential(nn.Linear(5, 7), neuron.LIFNode(tau=2.0, surrogate_function=surrogate.ATan()))
    ours = from_spikingjelly(copy.deepcopy(ref), backend="torch")
    assert isinstance(ours[1], SingleStepNeuron) and ours[1].step_mode == "s"
    x = torch.randn(T, B, 5) * 2
    for model in (ref, ours):
        functional.reset_net(model)
    out_ref = torch.stack([ref(x[t]) for t in range(T)])
    out = torch.stack([ours(x[t]) for t in range(T)])
    assert torch.equal(out, out_ref) and out.sum() > 0
    functional.reset_net(ours)
    assert ours[1].state is None


def test_our_neurons_work_inside_spikingjelly_containers():
    torch.manual_seed(2)
    x = torch.randn(T, B, 6) * 2
    lin = nn.Linear(6, 6)
    # multi-step: our LIF next to a SeqToANNContainer; single-step: wrapped, inside a MultiStepContainer
    ours_m = nn.Sequential(layer.SeqToANNContainer(lin), snn.LIF(tau=2.0, surrogate=snn.surrogate.Sigmoid()))
    ours_s = layer.MultiStepContainer(lin, SingleStepNeuron(snn.LIF(tau=2.0, surrogate=snn.surrogate.Sigmoid())))
    ref = nn.Sequential(layer.SeqToANNContainer(lin), neuron.LIFNode(tau=2.0, step_mode="m"))
    functional.reset_net(ref)
    expected = ref(x)
    assert torch.equal(ours_m(x), expected)
    functional.reset_net(ours_s)
    assert torch.equal(ours_s(x), expected)
    # the wrapper keeps state across calls until reset_net, as SpikingJelly's nodes do
    wrapper_m = SingleStepNeuron(snn.LIF(tau=2.0), step_mode="m")
    node_m = neuron.LIFNode(tau=2.0, step_mode="m")
    y = lin(x).detach()
    assert torch.equal(torch.cat([wrapper_m(y[:3]), wrapper_m(y[3:])]), torch.cat([node_m(y[:3]), node_m(y[3:])]))
    functional.reset_net(wrapper_m)
    functional.reset_net(node_m)
    assert torch.equal(wrapper_m(y), node_m(y))


def test_set_step_mode_switches_the_wrapper():
    wrapper = SingleStepNeuron(snn.IF())
    functional.set_step_mode(nn.Sequential(wrapper), "m")
    assert wrapper.step_mode == "m"
    with pytest.raises(ValueError, match="step_mode"):
        wrapper.step_mode = "x"


def test_set_step_mode_s_after_converting_refuses_instead_of_computing_something_else():
    model = from_spikingjelly(nn.Sequential(nn.Linear(4, 4), neuron.LIFNode(tau=3.0, step_mode="m")))
    functional.set_step_mode(model, "s")  # reaches our LIF through its step_mode attribute
    with pytest.raises(RuntimeError, match=r"step_mode was set to 's'.*SingleStepNeuron"):
        model(torch.ones(2, 4))  # [B, N] would otherwise be read as T = 2 steps of one sample
    functional.set_step_mode(model, "m")
    assert model(torch.ones(5, 2, 4)).shape == (5, 2, 4)


def test_set_step_mode_s_on_a_model_converted_in_single_step_keeps_working():
    torch.manual_seed(3)
    ref = nn.Sequential(nn.Linear(4, 4), neuron.LIFNode(tau=3.0))
    ours = from_spikingjelly(copy.deepcopy(ref))
    functional.set_step_mode(ours, "s")  # the wrapper and the neuron inside both get 's'
    x = torch.randn(T, B, 4) * 2
    for model in (ref, ours):
        functional.reset_net(model)
    assert torch.equal(torch.stack([ours(x[t]) for t in range(T)]), torch.stack([ref(x[t]) for t in range(T)]))


@pytest.mark.parametrize("attribute", ["v_threshold", "v_reset", "tau"])
def test_per_neuron_threshold_or_reset_raise_naming_the_module(attribute):
    node = neuron.LIFNode(step_mode="m")
    setattr(node, attribute, torch.ones(4) * 2)
    with pytest.raises(UnsupportedModule, match=rf"^0\.1: {attribute} is a tensor of shape \(4,\); expected a number"):
        from_spikingjelly(nn.Sequential(nn.Sequential(nn.Linear(4, 4), node)))
    node = neuron.LIFNode(step_mode="m")
    setattr(node, attribute, torch.tensor(1.5))  # a one-element tensor is a number
    assert float(getattr(from_spikingjelly(node), attribute)) == 1.5


def test_wrapper_rejects_a_changed_shape_without_reset():
    wrapper = SingleStepNeuron(snn.LIF())
    wrapper(torch.zeros(2, 3))
    with pytest.raises(ValueError, match="reset"):
        wrapper(torch.zeros(4, 3))


@pytest.mark.parametrize(
    "node, match",
    [
        (neuron.LIFNode(step_mode="m", surrogate_function=surrogate.Erf()), r"^1: surrogate_function .*Erf"),
        (neuron.LIFNode(step_mode="m", surrogate_function=surrogate.ATan(spiking=False)), r"^1: .*non-spiking"),
        (neuron.LIFNode(step_mode="m", store_v_seq=True), r"^1: store_v_seq"),
    ],
)
def test_unsupported_options_raise_naming_the_module_path(node, match):
    model = nn.Sequential(nn.Linear(3, 3), node)
    with pytest.raises(UnsupportedModule, match=match):
        from_spikingjelly(model)
    assert model[1] is node  # nothing was replaced


def test_error_leaves_the_model_untouched_and_names_nested_path():
    good = neuron.LIFNode(step_mode="m")
    model = nn.Sequential(good, nn.Sequential(nn.Linear(2, 2), neuron.IFNode(surrogate_function=surrogate.SoftSign(), step_mode="m")))
    with pytest.raises(UnsupportedModule, match=r"^1\.1: .*SoftSign"):
        from_spikingjelly(model)
    assert model[0] is good


def test_subclass_and_hooks_are_rejected():
    class MyLIF(neuron.LIFNode):
        pass

    with pytest.raises(UnsupportedModule, match="MyLIF subclasses"):
        from_spikingjelly(nn.Sequential(MyLIF(step_mode="m")))
    node = neuron.LIFNode(step_mode="m")
    node.register_forward_hook(lambda *a: None)
    with pytest.raises(UnsupportedModule, match="forward hooks"):
        from_spikingjelly(nn.Sequential(node))


def test_bad_arguments_raise_before_any_work():
    with pytest.raises(TypeError, match="model"):
        from_spikingjelly("not a module")  # type: ignore[arg-type]
    with pytest.raises(ValueError, match="backend"):
        from_spikingjelly(nn.Linear(2, 2), backend="jax")


def test_converted_model_keeps_training_mode_and_plif_requires_grad():
    node = neuron.ParametricLIFNode(step_mode="m")
    node.w.requires_grad_(False)
    node.eval()
    ours = from_spikingjelly(nn.Sequential(node))[0]
    assert not ours.training and not ours.w.requires_grad


@pytest.mark.slow
def test_importing_snn_does_not_import_spikingjelly():
    import subprocess

    code = "import sys, snn, snn.interop; print(any(m.startswith('spikingjelly') for m in sys.modules))"
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True)
    assert out.stdout.strip() == "False"
