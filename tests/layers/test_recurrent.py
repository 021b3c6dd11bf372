"""RecurrentLIF: streaming equals one call, bad input is named, and the energy counter sees its synaptic operations
and neuron updates (hand count)."""
from __future__ import annotations

import warnings

import pytest
import torch

from snn.energy import count_operations
from snn.layers import RecurrentLIF


def _layer() -> RecurrentLIF:
    torch.manual_seed(0)
    layer = RecurrentLIF(6, 5, tau=2.0).eval()
    with torch.no_grad():
        layer.input.weight.mul_(3.0)
        layer.recurrent.weight.normal_(0, 0.5)
    return layer


def test_streaming_in_chunks_equals_one_call():
    layer = _layer()
    x = (torch.rand(12, 3, 6, generator=torch.Generator().manual_seed(1)) < 0.4).float()
    with torch.no_grad():
        whole = layer(x)
        a, state = layer(x[:5], layer.initial_state(torch.zeros(3, 5)))
        b, _ = layer(x[5:], state)
    assert 0 < float(whole.mean()) < 1
    assert torch.equal(torch.cat([a, b]), whole)


def test_bad_input_names_the_argument():
    layer = _layer()
    with pytest.raises(ValueError, match=r"in_features=6 channels \(dim 2\), got 4"):
        layer(torch.zeros(3, 2, 4))
    with pytest.raises(ValueError, match="out_features must be a positive int"):
        RecurrentLIF(3, 0)


def test_energy_counter_sees_input_recurrent_synapses_and_neuron_updates():
    layer = _layer()
    x = (torch.rand(7, 2, 6, generator=torch.Generator().manual_seed(2)) < 0.4).float()
    with warnings.catch_warnings():
        warnings.simplefilter("error")  # nothing the counter cannot classify
        counter = count_operations(layer, x)
    rows = {r.name: r for r in (counter.layers.values() if isinstance(counter.layers, dict) else counter.layers)}
    with torch.no_grad():
        s = layer(x)
    previous = torch.cat([torch.zeros(1, 2, 5), s[:-1]])  # W_rec sees the spikes of step t-1
    assert rows["input"].synops.sum() == pytest.approx(float(x.sum()) * 5)        # each input spike × fan-out 5
    assert rows["recurrent"].synops.sum() == pytest.approx(float(previous.sum()) * 5)
    neuron = next(r for r in rows.values() if r.kind == "neuron")
    assert neuron.updates.sum() == 7 * 2 * 5 and neuron.spikes.sum() == pytest.approx(float(s.sum()))
