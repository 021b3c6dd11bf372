"""AdaptiveLIF against independent oracles: a trace computed by hand, and Norse's LSNN (the same Bellec et al.
adaptive threshold) on the same inputs."""
from __future__ import annotations

import pytest
import torch

from snn.neuron_models import AdaptiveLIF

BACKENDS = ["torch", "numba"]
X = torch.tensor([2.4, 2.4, 2.4, 0.0]).view(4, 1, 1)


@pytest.mark.parametrize("backend", BACKENDS)
def test_hard_reset_follows_a_hand_computed_trace(backend):
    # tau = 2, tau_a = 4, beta = 1, V_th = 1, V_reset = 0:
    # t0: H = 2.4/2 = 1.2 >= 1 -> spike, V = 0, A = 0 + (1 - 0)/4 = 0.25
    # t1: H = 1.2, threshold 1 + 0.25 = 1.25 -> silent (a plain LIF would fire), V = 1.2, A = 0.25 - 0.25/4 = 0.1875
    # t2: H = 1.2 + (2.4 - 1.2)/2 = 1.8 >= 1.1875 -> spike, V = 0, A = 0.1875 + (1 - 0.1875)/4 = 0.390625
    # t3: H = 0, silent, V = 0, A = 0.390625 * 3/4 = 0.29296875
    neuron = AdaptiveLIF(tau=2.0, tau_adapt=4.0, beta=1.0, v_threshold=1.0, v_reset=0.0, backend=backend)
    out = neuron.run(X, record=True)
    assert out.spikes.flatten().tolist() == [1.0, 0.0, 1.0, 0.0]
    torch.testing.assert_close(out.recorded["v"].flatten(), torch.tensor([0.0, 1.2, 0.0, 0.0]))
    assert out.recorded["a"].flatten().tolist() == [0.25, 0.1875, 0.390625, 0.29296875]


@pytest.mark.parametrize("backend", BACKENDS)
def test_soft_reset_subtracts_the_adapted_threshold_by_hand(backend):
    # soft reset V = H - threshold * S, same constants:
    # t0: H = 1.2, thr 1 -> spike, V = 0.2, A = 0.25
    # t1: H = 0.2 + (2.4 - 0.2)/2 = 1.3, thr 1.25 -> spike, V = 0.05, A = 0.25 + 0.75/4 = 0.4375
    # t2: H = 0.05 + (2.4 - 0.05)/2 = 1.225, thr 1.4375 -> silent, V = 1.225, A = 0.328125
    # t3: H = 1.225 - 1.225/2 = 0.6125, thr 1.328125 -> silent, A = 0.24609375
    neuron = AdaptiveLIF(tau=2.0, tau_adapt=4.0, beta=1.0, v_threshold=1.0, v_reset=None, backend=backend)
    out = neuron.run(X, record=True)
    assert out.spikes.flatten().tolist() == [1.0, 1.0, 0.0, 0.0]
    torch.testing.assert_close(out.recorded["v"].flatten(), torch.tensor([0.2, 0.05, 1.225, 0.6125]))
    assert out.recorded["a"].flatten().tolist() == [0.25, 0.4375, 0.328125, 0.24609375]


@pytest.mark.peers
@pytest.mark.parametrize("backend", BACKENDS)
def test_matches_norse_lsnn_feed_forward(backend):
    # Norse's LSNN (dt = 1, v_leak = 0, hard reset to 0) with its synaptic current made instantaneous
    # (tau_syn_inv = 1: the current is last step's input) is our decay_input LIF with an adaptive threshold,
    # one step later. Its threshold b relaxes to v_th and jumps by beta_N per spike: with k_a = 1/tau_a,
    # b - v_th after the decay equals our beta * A[t-1] when beta_N = beta * k_a / (1 - k_a).
    lsnn = pytest.importorskip("norse.torch.functional.lsnn")
    tau, tau_a, beta, v_th = 3.0, 25.0, 1.6, 1.0
    T, B, N = 60, 4, 32
    g = torch.Generator().manual_seed(0)
    x = torch.rand(T, B, N, generator=g, dtype=torch.float64) * 3.0
    ours = AdaptiveLIF(tau=tau, tau_adapt=tau_a, beta=beta, v_threshold=v_th, v_reset=0.0, backend=backend).double()
    out = ours.run(x, record=True)

    k_a = 1.0 / tau_a
    f64 = lambda v: torch.tensor(v, dtype=torch.float64)  # noqa: E731
    p = lsnn.LSNNParameters(tau_syn_inv=f64(1.0), tau_mem_inv=f64(1.0 / tau), tau_adapt_inv=f64(k_a), v_leak=f64(0.0),
                            v_th=f64(v_th), v_reset=f64(0.0), beta=f64(beta * k_a / (1.0 - k_a)), method="heaviside")
    zeros = torch.zeros(B, N, dtype=torch.float64)
    state = lsnn.LSNNFeedForwardState(v=zeros, i=zeros, b=zeros + v_th)
    spikes, membranes, thresholds = [], [], []
    for t in range(T + 1):
        z, state = lsnn.lsnn_feed_forward_step(x[t] if t < T else zeros, state, p, dt=1.0)
        if t > 0:
            spikes.append(z)
            membranes.append(state.v)
            thresholds.append(state.b)
    spikes, membranes = torch.stack(spikes), torch.stack(membranes)
    assert 0.05 < spikes.mean().item() < 0.6, "inputs must make neurons both fire and adapt"
    assert torch.equal(out.spikes, spikes)
    torch.testing.assert_close(out.recorded["v"], membranes, rtol=1e-12, atol=1e-12)
    # Norse's threshold after a step is v_th + beta * A[t] / (1 - k_a) (see the mapping above)
    torch.testing.assert_close(torch.stack(thresholds) - v_th, beta * out.recorded["a"] / (1.0 - k_a), rtol=1e-12, atol=1e-12)
