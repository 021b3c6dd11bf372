import itertools
import warnings

import numpy as np
import pytest
import torch
from torch import nn

import snn
from snn.energy import count_operations
from snn.energy.dispatch import conv_fanout

from .conftest import ConvSNN, mlp


def brute_conv_synops(x, conv):
    """Explicit loops: every non-zero input element × every (output channel, output position) it reaches."""
    N, C, *spatial = x.shape
    k = conv.kernel_size
    s, p, d, g = conv.stride, conv.padding, conv.dilation, conv.groups
    out_sizes = [(spatial[i] + 2 * p[i] - d[i] * (k[i] - 1) - 1) // s[i] + 1 for i in range(len(spatial))]
    cin_g, cout_g = C // g, conv.out_channels // g
    total = 0
    for idx in zip(*torch.nonzero(x, as_tuple=True)):
        n, c, *pos = (int(v) for v in idx)
        group = c // cin_g
        reach = 0
        for opos in itertools.product(*[range(o) for o in out_sizes]):
            for kpos in itertools.product(*[range(kk) for kk in k]):
                if all(opos[i] * s[i] - p[i] + kpos[i] * d[i] == pos[i] for i in range(len(pos))):
                    reach += 1
        total += reach * cout_g
        assert group < g
    return total


class Flat(nn.Module):
    def __init__(self, layer):
        super().__init__()
        self.layer = layer

    def forward(self, x):
        return self.layer(x.flatten(0, 1))


@pytest.mark.parametrize("kwargs", [
    dict(kernel_size=3, padding=1),
    dict(kernel_size=3, stride=2, padding=1, groups=2),
    dict(kernel_size=(3, 2), stride=(1, 2), padding=(2, 0), dilation=(2, 1), groups=4),
    dict(kernel_size=3, padding=1, padding_mode="zeros", bias=False),
])
def test_conv2d_synops_equal_brute_force_loops(kwargs):
    torch.manual_seed(0)
    conv = nn.Conv2d(4, 8, **kwargs)
    x = (torch.rand(3, 2, 4, 6, 5) < 0.3).float()
    counter = count_operations(Flat(conv), x)
    layer = counter.layers["layer"]
    assert layer.binary_input and layer.steps == 3
    expected = [brute_conv_synops(x[t], conv) for t in range(3)]
    np.testing.assert_array_equal(layer.synops, expected)


def test_conv1d_synops_equal_brute_force_loops():
    torch.manual_seed(1)
    conv = nn.Conv1d(4, 6, kernel_size=5, stride=2, padding=3, groups=2)
    x = (torch.rand(2, 3, 4, 11) < 0.4).float()
    layer = count_operations(Flat(conv), x).layers["layer"]
    assert layer.total("synops") == sum(brute_conv_synops(x[t], conv) for t in range(2))


def test_linear_synops_equal_spikes_times_out_features_per_step():
    torch.manual_seed(2)
    lin = nn.Linear(10, 7)
    x = (torch.rand(5, 3, 10) < 0.2).float()
    layer = count_operations(lin, x).layers[""]
    np.testing.assert_array_equal(layer.synops, x.reshape(5, -1).sum(1).numpy() * 7)
    assert layer.total("macs_dense") == 5 * 3 * 10 * 7


def test_flattened_and_step_by_step_layouts_give_the_time_major_counts():
    torch.manual_seed(3)
    lin = nn.Linear(10, 7)
    x = (torch.rand(4, 3, 10) < 0.3).float()

    class StepLoop(nn.Module):
        def __init__(self):
            super().__init__()
            self.lin = lin

        def forward(self, x):
            return torch.stack([self.lin(x[t]) for t in range(x.shape[0])])

    ref = count_operations(lin, x).layers[""].synops
    np.testing.assert_array_equal(count_operations(Flat(lin), x).layers["layer"].synops, ref)
    np.testing.assert_array_equal(count_operations(StepLoop(), x).layers["lin"].synops, ref)


def test_non_binary_input_counts_dense_and_effective_macs():
    lin = nn.Linear(4, 3)
    x = torch.tensor([[[0.5, 0.0, 2.0, 0.0]]])  # T=1, B=1: two non-zero inputs
    layer = count_operations(lin, x).layers[""]
    assert not layer.binary_input
    assert layer.total("synops") == 0
    assert layer.total("macs_dense") == 12
    assert layer.total("macs_effective") == 6


def test_delay_layer_counts_nonzero_taps_per_spike():
    pytest.importorskip("snn.layers.delay")
    from snn.layers import LearnableDelay

    torch.manual_seed(4)
    layer = LearnableDelay(6, 5, max_delay=7, kernel_count=2)
    with torch.no_grad():
        layer.weight[0, 1] = 0.0  # a synapse whose elements are all zero costs nothing
    layer.to_integer_delays()
    x = (torch.rand(9, 2, 6) < 0.3).float()
    counts = count_operations(layer, x).layers[""]
    kernel = layer.kernel().detach()  # [D, C_in, C_out]; tap j delays by D - 1 - j
    D, window = layer.max_delay, x.shape[0] + layer.right_pad
    brute = 0
    for t, b, i in zip(*torch.nonzero(x, as_tuple=True)):
        for j in range(D):  # only taps that land inside the output window are computed
            if int(t) + (D - 1 - j) < window:
                brute += int((kernel[j, int(i), :] != 0).sum())
    assert counts.total("synops") == brute
    assert counts.steps == 9
    # a wide Gaussian spreads each element over many taps: more operations per spike
    layer.version = "gauss"
    layer.set_sigma(3.0)
    wide = count_operations(layer, x).layers[""]
    assert wide.total("synops") > counts.total("synops")


def test_fanout_map_sums_to_dense_macs_without_padding_and_less_with_it():
    x = torch.zeros(1, 4, 7, 7)
    for padding in (0, 1):
        conv = nn.Conv2d(4, 6, 3, stride=2, padding=padding, groups=2)
        fan = conv_fanout(tuple(x.shape[1:]), conv.weight, conv.stride, conv.padding, conv.dilation, False, (0, 0),
                          conv.groups, x.device)
        dense = conv(x)[0].numel() * conv.weight[0].numel()  # padded zeros are charged by dense MACs
        assert (fan.sum() == dense) if padding == 0 else (fan.sum() < dense)


def test_neuron_updates_and_firing_rates_match_the_spikes():
    torch.manual_seed(5)
    net = mlp()
    x = torch.rand(6, 4, 12) * 2
    counter = count_operations(net, x)
    with torch.no_grad():
        s1 = net[1](net[0](x))
    lif = counter.layers["1"]
    np.testing.assert_array_equal(lif.spikes, s1.reshape(6, -1).sum(1).numpy())
    np.testing.assert_array_equal(lif.updates, np.full(6, 4 * 20))
    assert lif.neurons == 20 and lif.state_vars == 1 and lif.spiking
    assert counter.samples == 4 and counter.time_steps == 6


def test_batchnorm_counts_zero_and_unknown_parametrised_layer_warns_by_name():
    net = ConvSNN()
    x = torch.rand(2, 2, 2, 8, 8)
    with warnings.catch_warnings():
        warnings.simplefilter("error")
        counter = count_operations(net, x)  # BatchNorm: no warning
    assert counter.layers["bn1"].total("synops") == 0

    class WithNorm(nn.Module):
        def __init__(self):
            super().__init__()
            self.fc = nn.Linear(5, 5)
            self.norm = nn.LayerNorm(5)

        def forward(self, x):
            return self.norm(self.fc(x))

    with pytest.warns(UserWarning, match=r"'norm' \(LayerNorm, 10 parameters: aten.native_layer_norm.*skipped"):
        count_operations(WithNorm(), torch.rand(2, 3, 5))


def test_iterable_data_and_max_batches():
    net = mlp()
    batches = [(torch.rand(3, 2, 12), torch.zeros(2)) for _ in range(4)]
    assert count_operations(net, batches, max_batches=2).samples == 4
    assert count_operations(net, batches).samples == 8
    with pytest.raises(ValueError, match="max_batches"):
        count_operations(net, batches, max_batches=0)
    with pytest.raises(ValueError, match="data"):
        count_operations(net, torch.rand(5))
