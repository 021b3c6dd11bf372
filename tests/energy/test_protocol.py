"""The counting protocol: a layer declares neuron updates the counter cannot see, and keeps its torch ops counted."""
import warnings

import numpy as np
import pytest
import torch
from torch import nn

from snn.energy import count_operations
from snn.energy.protocol import NeuronCount, OwnTimeAxis


class SteppedRecurrent(nn.Module):
    """A recurrent LIF population that steps its own neuron (no SpikingNeuron module): s_t = H(v_t - 0.3),
    v_t = 0.5 v_{t-1} (1 - s_{t-1}) + W_in x_t + W_rec s_{t-1}."""

    count_torch_ops_inside = True  # the two Linear layers are ordinary torch ops: keep counting them

    def __init__(self):
        super().__init__()
        self.input = nn.Linear(4, 6)
        self.recurrent = nn.Linear(6, 6, bias=False)
        self.register_buffer("decay", torch.tensor(0.5))

    def forward(self, x):
        drive = self.input(x)
        v = torch.zeros_like(drive[0])
        s = torch.zeros_like(drive[0])
        out = []
        for t in range(x.shape[0]):
            v = self.decay * v * (1 - s) + drive[t] + self.recurrent(s)
            s = (v >= 0.3).float()
            out.append(s)
        return torch.stack(out)

    def count_operations(self, inputs, output, ctx):
        return [NeuronCount(output=output, state_vars=1, label="neurons")]


def test_declared_neurons_and_the_torch_ops_inside_are_both_counted():
    torch.manual_seed(0)
    net = SteppedRecurrent()
    x = (torch.rand(5, 3, 4) < 0.5).float()
    counter = count_operations(net, x)
    with torch.no_grad():
        s = net(x)
    assert 0 < s.mean() < 1
    neurons = counter.layers["neurons"]
    np.testing.assert_array_equal(neurons.updates, np.full(5, 3 * 6))
    np.testing.assert_array_equal(neurons.spikes, s.reshape(5, -1).sum(1).numpy())
    np.testing.assert_array_equal(counter.layers["input"].synops, x.reshape(5, -1).sum(1).numpy() * 6)
    # the recurrent weights see s_{t-1}: step-by-step calls resolved per step
    prev = torch.cat([torch.zeros(1, 3, 6), s[:-1]])
    np.testing.assert_array_equal(counter.layers["recurrent"].synops, prev.reshape(5, -1).sum(1).numpy() * 6)


def test_padded_steps_of_declared_neurons_are_dropped():
    torch.manual_seed(1)
    net = SteppedRecurrent()
    x = (torch.rand(6, 2, 4) < 0.6).float()
    x[3:, 0] = 0
    padded = count_operations(net, [(x, torch.zeros(2), torch.tensor([3, 6]))])
    alone = [count_operations(net, x[:n, b:b + 1]) for b, n in ((0, 3), (1, 6))]
    for row in ("neurons", "input", "recurrent"):
        for key in ("updates", "spikes", "synops"):
            assert padded.layers[row].total(key) == sum(c.layers[row].total(key) for c in alone), (row, key)


def test_a_layer_that_declares_its_neurons_is_not_warned_about_and_one_that_does_not_is():
    x = (torch.rand(4, 2, 4) < 0.5).float()
    with warnings.catch_warnings():
        warnings.simplefilter("error")
        count_operations(SteppedRecurrent(), x)

    class Undeclared(SteppedRecurrent):
        count_operations = None  # its neuron updates are invisible: the counter must say so

    with pytest.warns(UserWarning, match=r"'decay' \(Undeclared, 0 parameters \+ 1 buffer values: aten.mul"):
        count_operations(Undeclared(), x)


class Present(nn.Module):
    """Shows one frame of binary features ``[B, F]`` for ``steps`` steps (a stand-in for a rate encoder)."""

    def __init__(self, steps):
        super().__init__()
        self.steps = steps

    def forward(self, frame):
        return frame.unsqueeze(0).expand(self.steps, *frame.shape).contiguous()

    def count_operations(self, inputs, output, ctx):
        return [OwnTimeAxis(steps=self.steps, ann_frames=1.0)]


class MeanThenPresent(nn.Module):
    """``x [T_in, B, F]`` -> time-mean thresholded into one binary frame -> shown for 7 steps -> Linear(F, 5)."""

    accepts_lengths = True

    def __init__(self):
        super().__init__()
        self.present = Present(7)
        self.fc = nn.Linear(4, 5)

    def forward(self, x, lengths=None):
        return self.fc(self.present((x.sum(0) > 0).float()))


def test_a_layer_that_makes_its_own_time_axis_counts_all_its_steps_and_its_ann_reads_one_frame():
    from snn.energy import estimate

    x = torch.zeros(3, 2, 4)
    x[0, 0, :2] = 1.0  # sample 0: features 0, 1 on; 3 real steps
    x[1, 1, 3] = 1.0  # sample 1: feature 3 on; 2 real steps
    report = estimate(MeanThenPresent(), [(x, torch.tensor([0, 1]), torch.tensor([3, 2]))])
    fc = next(r for r in report.layers if r["name"] == "fc")
    # by hand: every one of the 7 presented steps is real for both samples (the input's lengths do not apply on the
    # encoder's axis): sample 0 has 2 events × 5 outputs × 7 steps = 70 SynOps, sample 1 1 × 5 × 7 = 35
    assert fc["steps_per_sample"] == 7 and fc["synops"] == pytest.approx((70 + 35) / 2)
    # the ANN equivalent reads the one frame: 4 × 5 MACs, not one frame per presented step (×7) nor per input step
    assert report.ann_frames_per_sample == 1 and report.frames_per_sample == 2.5
    assert report.ann["per_step"] == pytest.approx(20 * 4.6) and report.ann["once"] == pytest.approx(20 * 4.6)
    assert "makes its own time steps" in report.table()


def test_an_own_time_axis_with_a_bad_length_is_named():
    class Bad(Present):
        def count_operations(self, inputs, output, ctx):
            return [OwnTimeAxis(steps=0)]

    model = nn.Sequential(Bad(3), nn.Linear(4, 2))
    with pytest.raises(ValueError, match=r"0.count_operations: OwnTimeAxis.steps must be an int >= 1, got 0"):
        count_operations(model, torch.ones(2, 4))  # one frame of 2 samples, read by the counter as [T=2, B=4]


class StepModel(nn.Module):
    """Runs ``Linear(3, 2)`` one step ``[B, 3]`` at a time."""

    def __init__(self):
        super().__init__()
        self.fc = nn.Linear(3, 2)

    def forward(self, x):
        return torch.stack([self.fc(x[t]) for t in range(x.shape[0])])


def test_several_passes_of_a_step_by_step_model_in_one_batch_keep_their_steps():
    from snn.energy import OperationCounter, build_report, load_profile

    x = torch.zeros(3, 2, 3)
    x[0, 0, 0] = x[2, 0, 1] = x[1, 1, 2] = 1.0
    model = StepModel()
    counter = OperationCounter(model)
    with torch.no_grad(), counter:
        counter.begin(3, 2, lengths=torch.tensor([3, 1]))
        model(x)
        model(x)  # a second pass over the same batch
        counter.end()
    fc = counter.layers["fc"]
    assert not fc.unmasked and fc.steps == 3
    # by hand: sample 0 has events at t = 0 and 2 (both real), sample 1 at t = 1 (padding: dropped); 2 passes × 2 fan-out
    np.testing.assert_allclose(fc.synops, [2 * 2, 0, 2 * 2])
    report = build_report(counter, load_profile("45nm_fp32"))
    assert report.passes_per_sample == 2 and report.ann_frames_per_sample == 2 * (3 + 1) / 2
