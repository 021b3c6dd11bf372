"""The counting protocol: a layer declares neuron updates the counter cannot see, and keeps its torch ops counted."""
import warnings

import numpy as np
import pytest
import torch
from torch import nn

from snn.energy import count_operations
from snn.energy.protocol import NeuronCount


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
