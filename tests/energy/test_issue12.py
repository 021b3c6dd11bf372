"""What the hardware would do (issue 12): events, real steps, one form of the model, taps inside the window, the
ANN per sample, the report's wording. Every expected number is derived by hand or by a brute-force loop."""
import contextlib
import json

import numpy as np
import pytest
import torch
from torch import nn

import snn
from snn.cli.main import main
from snn.energy import OpCount, count_operations, estimate
from snn.layers import LearnableDelay

from .test_counter import Flat, brute_conv_synops


# ------------------------------------------------------------------ 1. event inputs are events
def test_integer_count_input_is_events_times_fan_out():
    lin = nn.Linear(4, 3)
    x = torch.tensor([[[2.0, 0.0, 1.0, 0.0], [0.0, 5.0, 0.0, 0.0]]])  # T=1, B=2: counts 2+1+5 = 8 events
    layer = count_operations(lin, x).layers[""]
    assert layer.binary_input and layer.rule == "events"
    assert layer.total("synops") == 8 * 3 and layer.total("macs") == 0
    assert any("integer spike counts 0..5" in r for r in layer.rules)
    strict = count_operations(lin, x, integer_inputs="macs").layers[""]
    assert strict.total("synops") == 0 and strict.total("macs") == 2 * 4 * 3


def test_integer_counts_into_a_convolution_equal_count_weighted_brute_force():
    torch.manual_seed(0)
    conv = nn.Conv2d(2, 4, 3, stride=2, padding=1)
    x = torch.randint(0, 4, (2, 3, 2, 5, 5)).float() * (torch.rand(2, 3, 2, 5, 5) < 0.4)
    layer = count_operations(Flat(conv), x).layers["layer"]
    # a count k is k events: x = sum over c of the binary maps (x >= c), each counted spike by spike
    expected = sum(brute_conv_synops((x[t] >= c).float(), conv) for t in range(2) for c in (1, 2, 3))
    assert layer.total("synops") == expected > 0


def test_real_valued_input_is_macs_and_the_report_says_why():
    torch.manual_seed(1)
    net = nn.Sequential(nn.Linear(6, 5), snn.LIF(v_threshold=0.3), nn.Linear(5, 2))
    real = estimate(net, torch.rand(3, 2, 6))
    counts = estimate(net, torch.randint(0, 3, (3, 2, 6)).float())
    assert real.layers[0]["rule"] == "MACs" and real.layers[0]["macs"] == 3 * 6 * 5
    assert counts.layers[0]["rule"] == "events" and counts.layers[0]["macs"] == 0
    assert "direct encoding" not in "\n".join(line for line in counts.table().splitlines() if "input rule" in line)
    assert "integer spike counts" in counts.table() and "not direct encoding" in counts.table()
    assert "real values" in real.table()


# ------------------------------------------------------------------ 2. padded steps cost nothing
class Mixed(nn.Module):
    """Real input → Linear → LIF → delay (appends R steps) → LIF → Linear; no masking of its own."""

    def __init__(self):
        super().__init__()
        self.fc = nn.Linear(5, 6)
        self.l1 = snn.LIF(v_threshold=0.4)
        self.delay = LearnableDelay(6, 4, max_delay=5, kernel_count=1, version="max", sigma=0.0)
        self.delay.to_integer_delays()
        self.l2 = snn.LIF(v_threshold=0.2)
        self.out = nn.Linear(4, 3)

    def forward(self, x):
        return self.out(self.l2(self.delay(self.l1(self.fc(x)))))


def _totals(counter):
    keys = ("synops", "macs", "macs_dense", "updates", "spikes", "input_nonzero")
    return {(name, k): c.total(k) for name, c in counter.layers.items() for k in keys}


def test_a_padded_batch_counts_the_sum_of_its_samples_counted_alone():
    torch.manual_seed(2)
    net = Mixed().eval()
    x = torch.rand(9, 2, 5) * 2
    lengths = torch.tensor([6, 9])
    x[6:, 0] = 0.0  # padding
    padded = count_operations(net, [(x, torch.zeros(2), lengths)])
    alone = [count_operations(net, x[: int(n), b:b + 1]) for b, n in enumerate(lengths)]
    want = {k: sum(_totals(c)[k] for c in alone) for k in _totals(alone[0])}
    got = _totals(padded)
    assert got.keys() == want.keys()
    for k in want:
        assert got[k] == pytest.approx(want[k], abs=1e-9), k
    # the padded steps are not free without lengths (the bias drives the first layer and the neurons)
    ignoring = _totals(count_operations(net, x))
    assert ignoring[("fc", "macs")] > want[("fc", "macs")] and ignoring[("l1", "updates")] > want[("l1", "updates")]
    assert padded.frames == 15 and padded.layers["l2"].sample_steps == (6 + 2) + (9 + 2)


def test_begin_checks_lengths():
    counter = count_operations(nn.Linear(2, 2), torch.rand(2, 1, 2))
    with pytest.raises(ValueError, match="lengths"):
        counter.begin(4, 2, lengths=torch.tensor([1, 5]))
    with pytest.raises(ValueError, match="lengths"):
        counter.begin(4, 2, lengths=torch.tensor([1.0, 2.0]))


# ------------------------------------------------------------------ 3. one form of the model
class TwoForms(nn.Module):
    """Training form: every synapse runs (dense); inference form (evaluation()): half the outputs pruned."""

    def __init__(self):
        super().__init__()
        self.fc = nn.Linear(6, 8)
        self.lif = snn.LIF(v_threshold=0.3)
        self.pruned = False

    @contextlib.contextmanager
    def evaluation(self):
        self.pruned = True
        try:
            yield
        finally:
            self.pruned = False

    def forward(self, x):
        w = self.fc.weight[:4] if self.pruned else self.fc.weight
        return self.lif(torch.nn.functional.linear(x, w))


def test_estimate_counts_the_evaluation_form_and_says_so():
    x = (torch.rand(3, 2, 6) < 0.5).float()
    model = TwoForms()
    report = estimate(model, x, ann_equivalent=False)
    assert report.synops == pytest.approx(x.sum().item() * 4 / 2)  # 4 outputs in the inference form
    assert "evaluation()" in report.form and "evaluation()" in report.table()
    as_is = estimate(model, x, ann_equivalent=False, form="as_is")
    assert as_is.synops == pytest.approx(x.sum().item() * 8 / 2) and "as is" in as_is.form
    assert not model.pruned


def test_estimate_and_snn_energy_give_identical_totals_on_the_same_checkpoint(tmp_path, capsys):
    torch.manual_seed(3)
    model = TwoForms()
    torch.save(model, tmp_path / "model.pt")
    x = (torch.rand(5, 3, 6) < 0.4).float()
    torch.save((x, torch.zeros(3), torch.tensor([5, 2, 4])), tmp_path / "batch.pt")
    args = ["energy", str(tmp_path / "model.pt"), "--data", str(tmp_path / "batch.pt"), "--trust-checkpoint"]
    assert main(args) == 0
    assert "TwoForms.evaluation()" in capsys.readouterr().out
    cli = json.loads((tmp_path / "energy_45nm_fp32.json").read_text())
    saved = torch.load(tmp_path / "model.pt", weights_only=False)
    api = estimate(saved, [(x, torch.zeros(3), torch.tensor([5, 2, 4]))])
    assert cli["totals"]["synops"] == api.synops and cli["totals"]["total_pj"] == api.total_pj
    assert cli["ann"] == api.ann and cli["form"] == api.form


# ------------------------------------------------------------------ 4. delay taps past the output window
def test_delay_taps_landing_past_the_output_window_are_not_counted():
    layer = LearnableDelay(1, 2, max_delay=5, version="max", sigma=0.0)  # right_pad 2: output T + 2 steps
    with torch.no_grad():
        layer.weight.fill_(1.0)
        layer.positions[0] = 2.0  # delay D - 1 - 2 - p = 0
        layer.positions[1] = -2.0  # delay 4
    x = torch.zeros(4, 1, 1)
    x[0] = x[3] = 1.0
    y = layer(x)
    assert y.shape[0] == 6  # spike at t=3 with delay 4 would land on step 7: never computed
    # by hand: t=0 -> steps 0 and 4 (2 ops); t=3 -> step 3 only (1 op)
    counts = count_operations(layer, x).layers[""]
    assert counts.total("synops") == 3
    assert int((y != 0).sum()) == 3
    # with lengths: a sample of 2 real steps has an output window of 4 steps, so t=0 delay 4 is cut as well
    x2 = torch.zeros(4, 2, 1)
    x2[0, :] = 1.0
    padded = count_operations(layer, [(x2, torch.zeros(2), torch.tensor([2, 4]))]).layers[""]
    assert padded.total("synops") == 1 + 2


def test_a_user_layer_declares_its_operations_and_its_inner_ops_are_not_counted_twice():
    class Fused(nn.Module):
        def __init__(self):
            super().__init__()
            self.weight = nn.Parameter(torch.randn(5, 3))

        def forward(self, x):  # pretend a fused kernel: the matmul inside is not what the chip runs
            return x @ self.weight

        def count_operations(self, inputs, output, ctx):
            return [OpCount(x=inputs[0], fanout=torch.tensor([1.0, 2.0, 0.0, 0.0, 1.0]), kind="fused",
                            params=15, output_elements=3.0)]

    x = (torch.rand(4, 2, 5) < 0.5).float()
    row = count_operations(Fused(), x).layers[""]
    assert row.kind == "fused" and list(row.rules.values()) == ["events"]
    expected = (x * torch.tensor([1.0, 2.0, 0.0, 0.0, 1.0])).reshape(4, -1).sum(1).numpy()
    np.testing.assert_array_equal(row.synops, expected)


# ------------------------------------------------------------------ 5. ANN baseline per sample
def test_ann_baseline_of_mixed_lengths_is_the_per_sample_mean():
    net = nn.Sequential(nn.Linear(20, 17), snn.LIF())  # one frame = 340 MACs
    x = torch.rand(6, 2, 20)
    report = estimate(net, [(x, torch.zeros(2), torch.tensor([3, 5]))])
    assert report.ann["once"] == pytest.approx(4.6 * 340)  # not 340 x 8 / 6 (summed MACs over the longest T)
    assert report.ann["per_step"] == pytest.approx(4.6 * 340 * (3 + 5) / 2)
    assert report.frames_per_sample == 4.0
    # batches of different sizes and lengths: still the per-sample mean
    batches = [(x, torch.zeros(2), torch.tensor([3, 5])), (torch.rand(2, 1, 20), torch.zeros(1), torch.tensor([1]))]
    two = estimate(net, batches)
    assert two.ann["once"] == pytest.approx(4.6 * 340)
    assert two.ann["per_step"] == pytest.approx(4.6 * 340 * (3 + 5 + 1) / 3)


# ------------------------------------------------------------------ 6. wording
def test_report_states_steps_per_row_and_leads_with_the_spike_driven_transformer_ratio():
    torch.manual_seed(4)
    net = Mixed().eval()
    x = torch.rand(7, 2, 5) * 2
    report = estimate(net, [(x, torch.zeros(2), torch.tensor([7, 5]))])
    text = report.table()
    assert "6.0 real input steps per sample" in text
    rows = {layer["name"]: layer for layer in report.layers}
    assert rows["fc"]["steps_per_sample"] == 6.0 and rows["l2"]["steps_per_sample"] == 8.0  # + right_pad 2
    sdt_line = next(i for i, line in enumerate(text.splitlines()) if "Spike-Driven Transformer papers'" in line)
    event_line = next(i for i, line in enumerate(text.splitlines()) if "counted as events" in line)
    assert sdt_line < event_line
    assert report.ratio == report.ratios["sdt"]["per_step"]
    assert report.ratio == pytest.approx(report.ann["per_step"] / report.snn_sdt_pj)


def test_a_layer_whose_steps_cannot_be_told_apart_is_priced_once_per_sample():
    class TemporalConv(nn.Module):  # Conv1d over [B, C, T]: time is inside the convolution
        def __init__(self):
            super().__init__()
            self.conv = nn.Conv1d(3, 2, kernel_size=3)

        def forward(self, x):
            return self.conv(x.permute(1, 2, 0))

    x = torch.rand(6, 4, 3)
    report = estimate(TemporalConv(), x)
    per_sample = 2 * 4 * 3 * 3  # out channels x output positions x (C_in x k)
    assert report.totals["macs"] == per_sample
    assert report.ann["once"] == report.ann["per_step"] == pytest.approx(4.6 * per_sample)
