"""Operations that reach torch as functions are counted at the dispatcher (or named in a warning)."""
import warnings

import numpy as np
import pytest
import torch
import torch.nn.functional as F
from torch import nn

import snn
from snn.energy import count_operations


def spikes(*shape, p=0.3, seed=0):
    g = torch.Generator().manual_seed(seed)
    return (torch.rand(*shape, generator=g) < p).float()


class Functional(nn.Module):
    """``F.linear`` with the layer's own weight (no nn.Linear module)."""

    def __init__(self):
        super().__init__()
        self.weight = nn.Parameter(torch.randn(7, 10))
        self.w_rec = nn.Parameter(torch.randn(10, 5))

    def forward(self, s):
        return F.linear(s, self.weight), s @ self.w_rec


def test_f_linear_and_operator_with_a_parameter_count_spikes_times_fan_out():
    s = spikes(4, 3, 10)
    counter = count_operations(Functional(), s)
    per_step = s.reshape(4, -1).sum(1).numpy()
    np.testing.assert_array_equal(counter.layers[""].synops, per_step * 7)  # F.linear: fan-out out_features
    np.testing.assert_array_equal(counter.layers["w_rec"].synops, per_step * 5)  # s @ W: fan-out columns


def test_linear_called_with_a_keyword_is_counted():
    class Keyword(nn.Module):
        def __init__(self):
            super().__init__()
            self.lin = nn.Linear(10, 6)

        def forward(self, s):
            return self.lin(input=s)

    s = spikes(5, 2, 10)
    layer = count_operations(Keyword(), s).layers["lin"]
    assert layer.total("synops") == s.sum().item() * 6 and layer.steps == 5


def test_weight_on_the_left_counts_the_same_events():
    class Left(nn.Module):
        def __init__(self):
            super().__init__()
            self.weight = nn.Parameter(torch.randn(6, 10))

        def forward(self, s):  # [T, B, C] -> W @ s^T per step
            return torch.stack([self.weight @ s[t].t() for t in range(s.shape[0])])

    s = spikes(3, 4, 10)
    layer = count_operations(Left(), s).layers[""]
    np.testing.assert_array_equal(layer.synops, s.reshape(3, -1).sum(1).numpy() * 6)


def brute_spike_products(a, b):
    """Σ over every (i, k, j) with a[i, k] != 0 and b[k, j] != 0: one accumulate each (loops)."""
    n, k = a.shape
    m = b.shape[1]
    return sum(1 for i in range(n) for kk in range(k) for j in range(m) if a[i, kk] and b[kk, j])


def test_spike_times_spike_matmul_counts_one_accumulate_per_non_zero_product():
    class Attention(nn.Module):
        def __init__(self):
            super().__init__()
            self.q = nn.Linear(8, 8)
            self.lif = snn.LIF(v_threshold=0.3)

        def forward(self, x):  # x [T, B, N, C]
            q = self.lif(self.q(x))
            return q @ q.transpose(-1, -2)  # [T, B, N, N], spike x spike

    torch.manual_seed(0)
    net = Attention()
    x = torch.rand(3, 2, 5, 8)
    counter = count_operations(net, x)
    with torch.no_grad():
        q = net.lif(net.q(x))
    assert 0 < q.mean() < 1
    expected = [sum(brute_spike_products(q[t, b], q[t, b].t()) for b in range(2)) for t in range(3)]
    row = counter.layers["matmul0"]
    assert row.kind == "matmul" and row.binary_input
    np.testing.assert_array_equal(row.synops, expected)
    assert row.total("macs") == 0


def test_real_times_real_matmul_is_dense_macs():
    class Scores(nn.Module):
        def forward(self, x):
            return x @ x.transpose(-1, -2)

    x = torch.rand(2, 3, 4, 5)
    row = count_operations(Scores(), x).layers["matmul0"]
    assert row.total("macs") == 2 * 3 * 4 * 5 * 4 and row.total("synops") == 0


def test_an_operation_the_counter_cannot_price_is_named_in_a_warning():
    class Scaled(nn.Module):
        def __init__(self):
            super().__init__()
            self.fc = nn.Linear(4, 4)
            self.gain = nn.Parameter(torch.ones(4))

        def forward(self, x):
            return self.fc(x) * self.gain

    with pytest.warns(UserWarning, match=r"'gain' \(Scaled, 4 parameters: aten.mul"):
        count_operations(Scaled(), spikes(2, 3, 4))

    class FusedAttention(nn.Module):
        def forward(self, x):
            return F.scaled_dot_product_attention(x, x, x)

    with pytest.warns(UserWarning, match=r"scaled_dot_product.*not priced"):
        count_operations(FusedAttention(), spikes(2, 3, 4, 8))


def test_bias_adds_and_batchnorm_do_not_warn():
    net = nn.Sequential(nn.Linear(6, 5), nn.BatchNorm1d(5), snn.LIF())

    class Wrap(nn.Module):
        def __init__(self):
            super().__init__()
            self.net = net

        def forward(self, x):
            T, B = x.shape[:2]
            y = self.net[1](self.net[0](x).flatten(0, 1)).reshape(T, B, -1)
            return self.net[2](y)

    with warnings.catch_warnings():
        warnings.simplefilter("error")
        counter = count_operations(Wrap(), torch.rand(3, 2, 6))
    assert counter.layers["net.1"].kind == "norm"
