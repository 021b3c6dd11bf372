"""STDP and reward-modulated STDP: Δw against hand computation, a brute-force loop and SpikingJelly's STDPLearner;
mixing with backprop in one step; bounds; no growth over batches; bad layers named."""
from __future__ import annotations

import gc

import pytest
import torch
from torch import nn

import snn
from snn.rules import RSTDP, STDP, StepContext


class FixedSpikes(nn.Module):
    """A 'neuron' that emits a given spike train (so post spikes are chosen by the test)."""

    emits_spikes = True

    def __init__(self, spikes: torch.Tensor) -> None:
        super().__init__()
        self.spikes = spikes

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return self.spikes.to(x.dtype)


def _two_by_two(post: torch.Tensor) -> nn.Sequential:
    fc = nn.Linear(2, 2, bias=False)
    with torch.no_grad():
        fc.weight.copy_(torch.tensor([[0.3, 0.6], [0.8, 0.1]]))
    return nn.Sequential(fc, FixedSpikes(post))


# pre 0 fires at t=0, pre 1 at t=2; post 0 fires at t=1, post 1 at t=0 (one sample, T = 3)
PRE = torch.tensor([[1.0, 0.0], [0.0, 0.0], [0.0, 1.0]])[:, None, :]
POST = torch.tensor([[0.0, 1.0], [1.0, 0.0], [0.0, 0.0]])[:, None, :]


def test_stdp_additive_matches_hand_computation_and_pre_before_post_potentiates():
    # tau 2: traces decay by 1/2 per step. x0 = 1, .5, .25; x1 = 0, 0, 1; y0 = 0, 1, .5; y1 = 1, .5, .25
    # LTP[j,i] = Σ_t post_j x_i: [[.5, 0], [1, 0]];  LTD[j,i] = Σ_t y_j pre_i: [[0, .5], [1, .25]]
    model = _two_by_two(POST)
    rule = STDP(layers="0", tau_pre=2.0, tau_post=2.0, a_plus=0.01, a_minus=0.02)
    rule.attach(model)
    with rule.record():
        model(PRE)
    dw = rule.write_grads()["0"]
    expected = torch.tensor([[0.01 * 0.5, -0.02 * 0.5], [0.01 * 1 - 0.02 * 1, -0.02 * 0.25]])
    torch.testing.assert_close(dw, expected)
    torch.testing.assert_close(model[0].weight.grad, -expected)
    assert dw[0, 0] > 0  # pre 0 (t=0) before post 0 (t=1): potentiation
    assert dw[0, 1] < 0  # post 0 (t=1) before pre 1 (t=2): depression


def test_stdp_multiplicative_matches_hand_computation():
    model = _two_by_two(POST)
    rule = STDP(layers="0", a_plus=0.1, a_minus=0.1, weight_dependence="multiplicative", w_min=0.0, w_max=1.0)
    rule.attach(model)
    with rule.record():
        model(PRE)
    dw = rule.write_grads()["0"]
    w = torch.tensor([[0.3, 0.6], [0.8, 0.1]])
    ltp = torch.tensor([[0.5, 0.0], [1.0, 0.0]])
    ltd = torch.tensor([[0.0, 0.5], [1.0, 0.25]])
    torch.testing.assert_close(dw, 0.1 * (1 - w) * ltp - 0.1 * w * ltd)


def test_rstdp_scales_each_samples_eligibility_by_its_reward():
    post = torch.cat([POST, POST], 1)
    model = _two_by_two(post)
    rule = RSTDP(layers="0", a_plus=1.0, a_minus=1.0)
    rule.attach(model)
    with rule.record():
        model(torch.cat([PRE, PRE], 1))
    dw = rule.write_grads(reward=torch.tensor([1.0, -0.5]))["0"]
    e = torch.tensor([[0.5, -0.5], [0.0, -0.25]])  # one sample's eligibility (hand computation above, A± = 1)
    torch.testing.assert_close(dw, (1.0 - 0.5) * e)


def _brute_force_stdp(pre, post, w, tau_pre, tau_post, fp, fm):
    T, B, K = pre.shape
    N = post.shape[2]
    dw = torch.zeros(N, K, dtype=torch.float64)
    for b in range(B):
        x = [0.0] * K
        y = [0.0] * N
        for t in range(T):
            x = [x[i] * (1 - 1 / tau_pre) + float(pre[t, b, i]) for i in range(K)]
            y = [y[j] * (1 - 1 / tau_post) + float(post[t, b, j]) for j in range(N)]
            for j in range(N):
                for i in range(K):
                    dw[j, i] += fp(float(w[j, i])) * float(post[t, b, j]) * x[i] \
                        - fm(float(w[j, i])) * y[j] * float(pre[t, b, i])
    return dw


def test_stdp_through_a_real_lif_equals_a_brute_force_loop():
    torch.manual_seed(0)
    model = nn.Sequential(nn.Linear(4, 3, bias=False), snn.LIF(tau=2.0, v_threshold=0.3))
    pre = (torch.rand(6, 2, 4) < 0.4).double()
    model = model.double()
    rule = STDP(layers="0", tau_pre=3.0, tau_post=1.5, a_plus=0.2, a_minus=0.1)
    rule.attach(model)
    with rule.record():
        post = model(pre)
    assert 0 < post.sum() < post.numel()
    dw = rule.write_grads()["0"]
    oracle = _brute_force_stdp(pre, post, model[0].weight.detach(), 3.0, 1.5, lambda w: 0.2, lambda w: 0.1)
    torch.testing.assert_close(dw, oracle)


@pytest.mark.parametrize("dependence", ["additive", "multiplicative"])
def test_stdp_linear_equals_spikingjelly_stdplearner(dependence):
    learning = pytest.importorskip("spikingjelly.activation_based.learning")
    torch.manual_seed(1)
    model = nn.Sequential(nn.Linear(5, 3, bias=False), snn.LIF(tau=2.0, v_threshold=0.4))
    nn.init.uniform_(model[0].weight, 0.0, 1.0)
    x = (torch.rand(8, 4, 5) < 0.35).float()
    rule = STDP(layers="0", tau_pre=2.0, tau_post=3.0, a_plus=0.02, a_minus=0.03, weight_dependence=dependence,
                w_min=0.0, w_max=1.0)
    rule.attach(model)
    sj = learning.STDPLearner("m", model[0], model[1], tau_pre=2.0, tau_post=3.0,
                              f_pre=rule.f_minus, f_post=rule.f_plus)
    with rule.record():
        model(x)
    ours = rule.write_grads()["0"]
    theirs = sj.step(on_grad=False)
    sj.close()
    assert ours.abs().sum() > 0
    torch.testing.assert_close(ours, theirs, rtol=1e-6, atol=1e-7)


def test_stdp_conv2d_multistep_equals_spikingjelly_stdplearner():
    learning = pytest.importorskip("spikingjelly.activation_based.learning")
    sj_layer = pytest.importorskip("spikingjelly.activation_based.layer")
    torch.manual_seed(2)
    conv = sj_layer.Conv2d(2, 3, kernel_size=3, padding=1, stride=2, bias=False, step_mode="m")
    model = nn.Sequential(conv, snn.LIF(tau=2.0, v_threshold=0.3))
    x = (torch.rand(5, 2, 2, 6, 6) < 0.3).float()  # [T, B, C, H, W]
    rule = STDP(layers="0", tau_pre=2.0, tau_post=2.0, a_plus=0.01, a_minus=0.012)
    rule.attach(model)
    sj = learning.STDPLearner("m", conv, model[1], tau_pre=2.0, tau_post=2.0, f_pre=rule.f_minus, f_post=rule.f_plus)
    with rule.record(T=x.shape[0]):
        model(x)
    ours = rule.write_grads()["0"]
    theirs = sj.step(on_grad=False)
    sj.close()
    assert ours.shape == conv.weight.shape and ours.abs().sum() > 0
    torch.testing.assert_close(ours, theirs, rtol=1e-5, atol=1e-6)


class TwoLayer(nn.Module):
    def __init__(self) -> None:
        super().__init__()
        self.fc1 = nn.Linear(6, 5)
        self.lif = snn.LIF(tau=2.0, v_threshold=0.5)
        self.fc2 = nn.Linear(5, 3)

    def forward(self, x):
        return self.fc2(self.lif(self.fc1(x)))


def test_one_stdp_layer_and_one_backprop_layer_train_in_one_step():
    torch.manual_seed(3)
    model = TwoLayer()
    reference = TwoLayer()
    reference.load_state_dict(model.state_dict())
    x = (torch.rand(7, 4, 6) < 0.5).float()
    labels = torch.tensor([0, 1, 2, 1])
    rule = STDP(layers="fc1", a_plus=0.05, a_minus=0.04, supervised=True)
    rule.attach(model)
    groups = rule.parameter_groups(model)
    assert [id(p) for p in groups["local"].params] == [id(model.fc1.weight)]
    assert {id(p) for p in groups["weights"].params} == {id(model.fc1.bias), id(model.fc2.weight), id(model.fc2.bias)}
    out = rule.training_step(model, (x, labels, torch.full((4,), 7)), StepContext())

    # oracle: backprop on the reference (its fc1 gradient is what must NOT be applied), STDP by brute force
    ref_out = reference(x)
    loss = nn.functional.cross_entropy(ref_out.mean(0), labels)
    loss.backward()
    torch.testing.assert_close(out["loss"], loss.detach())
    torch.testing.assert_close(model.fc2.weight.grad, reference.fc2.weight.grad)
    torch.testing.assert_close(model.fc1.bias.grad, reference.fc1.bias.grad)
    post = reference.lif(reference.fc1(x)).detach()
    stdp = _brute_force_stdp(x.double(), post.double(), model.fc1.weight.detach(), 2.0, 2.0,
                             lambda w: 0.05, lambda w: 0.04).float()
    torch.testing.assert_close(model.fc1.weight.grad, -stdp)
    assert not torch.allclose(model.fc1.weight.grad, reference.fc1.weight.grad)

    opt = torch.optim.SGD(model.parameters(), lr=0.5)
    w0 = model.fc1.weight.detach().clone()
    opt.step()
    torch.testing.assert_close(model.fc1.weight.detach(), w0 + 0.5 * stdp)
    rule.detach()
    assert model.fc1.weight.requires_grad


def test_hard_bounds_clamp_after_the_step():
    model = _two_by_two(POST)
    rule = STDP(layers="0", a_plus=10.0, a_minus=10.0, w_min=0.0, w_max=0.5)
    rule.attach(model)
    with rule.record():
        model(PRE)
    rule.write_grads()
    torch.optim.SGD([model[0].weight], lr=1.0).step()
    [bounds] = rule.callbacks()
    bounds.on_after_optimizer_step(None)
    w = model[0].weight.detach()
    assert w.min() >= 0.0 and w.max() <= 0.5 and (w == 0.0).any() and (w == 0.5).any()


def _live_tensors() -> int:
    gc.collect()
    return sum(1 for o in gc.get_objects() if issubclass(type(o), torch.Tensor))


def test_no_memory_growth_over_100_batches():
    torch.manual_seed(4)
    model = TwoLayer()
    rule = STDP(layers="fc1", supervised=True)
    rule.attach(model)
    opt = torch.optim.SGD(model.parameters(), lr=0.01)
    counts = []
    for i in range(100):
        x = (torch.rand(5, 3, 6) < 0.5).float()
        opt.zero_grad(set_to_none=True)
        rule.training_step(model, (x, torch.tensor([0, 1, 2]), None), StepContext())
        opt.step()
        if i in (9, 49, 99):
            counts.append(_live_tensors())
    # no growth: later counts never exceed the count after warm-up (other tests' garbage may be freed meanwhile,
    # so the count can fall, never rise)
    assert counts[2] <= counts[1] <= counts[0]
    assert all(r.pre is None and r.post is None for r in rule._records.values())


def test_attaching_to_an_unsupported_layer_names_its_type_and_the_supported_ones():
    with pytest.raises(ValueError, match=r"'lif' is a LIF; supported synapse types: Linear, Conv2d"):
        STDP(layers="lif").attach(TwoLayer())
    with pytest.raises(ValueError, match=r"no module 'fc3'; did you mean"):
        STDP(layers="fc3").attach(TwoLayer())
    conv1d = nn.Sequential(nn.Conv1d(2, 2, 3), snn.LIF())
    with pytest.raises(ValueError, match="is a Conv1d"):
        STDP(layers="0").attach(conv1d)


def test_rstdp_reward_per_neuron_credits_only_that_neurons_synapses():
    model = _two_by_two(POST)
    rule = RSTDP(layers="0", a_plus=1.0, a_minus=1.0)
    rule.attach(model)
    with rule.record():
        model(PRE)
    dw = rule.write_grads(reward=torch.tensor([[2.0, 0.0]]))["0"]
    torch.testing.assert_close(dw, torch.tensor([[1.0, -1.0], [0.0, 0.0]]))  # 2 × row 0 of the eligibility


def test_pre_offset_subtracts_x_tar_at_every_post_spike():
    # Diehl & Cook's rule: Δw = a_plus (x_pre - x_tar) at each post spike (a_minus = 0). Post 0 fires once (t=1) with
    # traces x = (.5, 0); post 1 once (t=0) with x = (1, 0). With x_tar = 0.4: [[.1, -.4], [.6, -.4]] × a_plus.
    model = _two_by_two(POST)
    rule = STDP(layers="0", a_plus=0.01, a_minus=0.0, pre_offset=0.4)
    rule.attach(model)
    with rule.record():
        model(PRE)
    dw = rule.write_grads()["0"]
    torch.testing.assert_close(dw, 0.01 * torch.tensor([[0.1, -0.4], [0.6, -0.4]]))


def test_normalise_rescales_each_neurons_input_weights_to_the_sum_after_the_bounds():
    model = _two_by_two(POST)
    rule = STDP(layers="0", a_plus=10.0, a_minus=10.0, w_min=0.0, w_max=0.5, normalise=2.0)
    rule.attach(model)
    with rule.record():
        model(PRE)
    dw = rule.write_grads()["0"]
    torch.optim.SGD([model[0].weight], lr=1.0).step()
    [constraint] = rule.callbacks()
    constraint.on_after_optimizer_step(None)
    # by hand: w + Δw, clamped into [0, 0.5], then each row times 2 / (its sum)
    w0 = torch.tensor([[0.3, 0.6], [0.8, 0.1]])
    clamped = (w0 + dw).clamp(0.0, 0.5)
    expected = torch.stack([row * 2.0 / row.sum() if row.sum() != 0 else row for row in clamped])
    torch.testing.assert_close(model[0].weight.detach(), expected)
    assert rule.callbacks() and STDP(layers="0", normalise=1.0).callbacks()  # normalisation alone adds the step


def test_normalise_must_be_positive():
    with pytest.raises(ValueError, match="normalise must be a finite number > 0 or None, got -1"):
        STDP(normalise=-1.0)


class RateCoded(nn.Module):
    """A model running more steps than its input has: [1, B, C] → Poisson-like [T, B, C] inside."""

    def __init__(self, spikes: torch.Tensor, post: torch.Tensor) -> None:
        super().__init__()
        self.spikes = spikes
        self.fc = nn.Linear(2, 2, bias=False)
        self.neuron = FixedSpikes(post)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return self.neuron(self.fc(self.spikes))


def test_a_model_that_lengthens_time_keeps_the_synapses_own_time_axis():
    # the Trainer records with T = the batch's 1 step; the synapse sees 3 steps: Δw must use those 3 steps
    model = RateCoded(PRE, POST)
    with torch.no_grad():
        model.fc.weight.copy_(torch.tensor([[0.3, 0.6], [0.8, 0.1]]))
    rule = STDP(layers="fc", tau_pre=2.0, tau_post=2.0, a_plus=0.01, a_minus=0.02)
    rule.attach(model)
    rule.training_step(model, (torch.zeros(1, 1, 2), torch.tensor([0]), None), StepContext())
    expected = torch.tensor([[0.01 * 0.5, -0.02 * 0.5], [0.01 * 1 - 0.02 * 1, -0.02 * 0.25]])
    torch.testing.assert_close(model.fc.weight.grad, -expected)
