import json

import numpy as np
import pytest
import torch

from snn.energy import estimate, load_profile

from .conftest import ConvSNN, mlp
from .test_counter import brute_conv_synops


def _hand_spikes(net, x):
    T, B = x.shape[:2]
    with torch.no_grad():
        y = net.bn1(net.c1(x.flatten(0, 1)))
        s1 = net.l1(y.reshape(T, B, *y.shape[1:]))
        y = net.c2(s1.flatten(0, 1))
        s2 = net.l2(y.reshape(T, B, *y.shape[1:]))
    return s1, s2


@pytest.fixture
def conv_case():
    torch.manual_seed(0)
    net = ConvSNN().eval()
    x = torch.rand(4, 3, 2, 8, 8) * 2
    return net, x


def test_spike_driven_transformer_profile_equals_the_published_formula_by_hand(conv_case):
    net, x = conv_case
    T, B = x.shape[:2]
    s1, s2 = _hand_spikes(net, x)
    assert 0 < s1.mean() < 1 and 0 < s2.mean() < 1, "the test needs partial firing in both layers"
    flops_c1 = 3 * 3 * 2 * 4 * 8 * 8  # k^2 C_in C_out H_out W_out, per sample and step
    flops_c2 = 3 * 3 * (4 // 2) * 6 * 4 * 4
    flops_fc = 96 * 5
    expected = 4.6 * T * flops_c1 + 0.9 * (T * s1.double().mean().item() * flops_c2 + T * s2.double().mean().item() * flops_fc)
    report = estimate(net, x, profile="spike_driven_transformer")
    assert report.total_pj == pytest.approx(expected, rel=1e-12)
    assert report.totals["macs"] == T * flops_c1  # direct encoding: the first layer is charged T times
    assert any("T times" in c for c in report.conventions)


def test_45nm_fp32_exact_total_equals_hand_count_and_differs_from_the_rate_formula_at_borders(conv_case):
    net, x = conv_case
    T, B = x.shape[:2]
    s1, s2 = _hand_spikes(net, x)
    c2_synops = sum(brute_conv_synops(s1[t], net.c2) for t in range(T))
    fc_synops = s2.sum().item() * 5
    expected = 4.6 * T * (3 * 3 * 2 * 4 * 8 * 8) + 0.9 * (c2_synops + fc_synops) / B
    report = estimate(net, x, profile="45nm_fp32")
    assert report.total_pj == pytest.approx(expected, rel=1e-12)
    sdt = estimate(net, x, profile="spike_driven_transformer")
    assert report.total_pj < sdt.total_pj  # padded borders: fewer real connections than fr x FLOPs assumes


def test_exact_and_rate_scaled_agree_when_fan_out_is_uniform():
    torch.manual_seed(1)
    net = ConvSNN(c2_kwargs={"kernel_size": 1}).eval()
    x = torch.rand(3, 2, 2, 8, 8) * 2
    a = estimate(net, x, profile="45nm_fp32").total_pj
    b = estimate(net, x, profile="spike_driven_transformer").total_pj
    assert a == pytest.approx(b, rel=1e-12)


def test_ann_equivalent_once_and_per_step_and_ratios_by_hand(conv_case):
    net, x = conv_case
    T = x.shape[0]
    s1, s2 = _hand_spikes(net, x)
    report = estimate(net, x, profile="45nm_fp32")
    dense_per_step = 3 * 3 * 2 * 4 * 64 + 3 * 3 * 2 * 6 * 16 + 96 * 5
    assert report.ann["once"] == pytest.approx(4.6 * dense_per_step)
    assert report.ann["per_step"] == pytest.approx(4.6 * dense_per_step * T)
    # Spike-Driven Transformer convention: first layer MACs at every step, the others 0.9 pJ x SOPs
    B = x.shape[1]
    synops = (sum(brute_conv_synops(s1[t], net.c2) for t in range(T)) + s2.sum().item() * 5) / B
    sdt = 4.6 * T * 3 * 3 * 2 * 4 * 64 + 0.9 * synops
    assert report.snn_sdt_pj == pytest.approx(sdt)
    assert report.ratio == pytest.approx(4.6 * dense_per_step * T / sdt)  # headline: like-for-like, SDT convention
    assert report.ratios["events"]["once"] == pytest.approx(report.ann["once"] / report.total_pj)
    once = estimate(net, x, profile="45nm_fp32", ann_convention="once")
    assert once.ratio == pytest.approx(report.ratio / T)
    with pytest.raises(ValueError, match="ann_convention"):
        estimate(net, x, ann_convention="twice")


def test_profiles_scale_and_memory_model_adds_components():
    torch.manual_seed(2)
    net = mlp()
    x = torch.rand(5, 4, 12) * 2
    fp32 = estimate(net, x, profile="45nm_fp32")
    int8 = estimate(net, x, profile="45nm_int8")
    assert int8.total_pj < fp32.total_pj
    mem = estimate(net, x, profile="memory_aware_45nm")
    comps = mem.totals["energy_pj"]
    assert comps["weights"] > 0 and comps["potentials"] > 0 and comps["addressing"] > 0 and comps["neuron"] > 0
    assert mem.totals["synops"] == fp32.totals["synops"]
    loihi = estimate(net, x, profile="loihi")
    p = load_profile("loihi")
    t = loihi.totals
    assert loihi.total_pj == pytest.approx(p.ac_pj * t["synops"] + p.mac_pj * t["macs"]
                                           + p.neuron_update_pj * t["updates"] + p.spike_pj * t["spikes"])


def test_per_layer_and_per_step_sums_match_totals(conv_case):
    net, x = conv_case
    report = estimate(net, x, profile="memory_aware_45nm")
    assert sum(layer["total_pj"] for layer in report.layers) == pytest.approx(report.total_pj)
    for layer in report.layers:
        assert np.sum(layer["per_step"]["energy_pj"]) == pytest.approx(layer["total_pj"])
    rates = {layer["name"]: layer["firing_rate"] for layer in report.layers}
    s1, s2 = _hand_spikes(net, x)
    assert rates["l1"] == pytest.approx(s1.double().mean().item())
    assert rates["c2"] == pytest.approx(s1.double().mean().item())


def test_table_json_and_plot_outputs(tmp_path, conv_case):
    net, x = conv_case
    report = estimate(net, x)
    text = report.table()
    for name in ("c1", "l1", "c2", "fc", "ANN equivalent", "total"):
        assert name in text
    path = tmp_path / "sub" / "energy.json"
    report.to_json(path)
    data = json.loads(path.read_text())
    assert data["totals"]["total_pj"] == pytest.approx(report.total_pj)
    assert data["profile_info"]["sources"]["mac_pj"].startswith("Horowitz")
    assert [p.name for p in path.parent.iterdir()] == ["energy.json"]  # no temp file left behind
    png = tmp_path / "energy.png"
    report.plot(png)
    assert png.read_bytes()[:8] == b"\x89PNG\r\n\x1a\n"


def test_bad_arguments_raise_at_the_boundary():
    with pytest.raises(TypeError, match="model"):
        estimate("not a model", torch.rand(2, 2, 3))
    with pytest.raises(ValueError, match="available: .*45nm_fp32"):
        estimate(mlp(), torch.rand(2, 2, 12), profile="no_such_chip")
