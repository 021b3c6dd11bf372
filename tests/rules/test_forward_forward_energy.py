"""Forward-forward's energy through the standard counting path: the per-epoch logger's begin/end around the rule's
evaluation step, `estimate`/`count_model` with the rule's inference, and `snn energy RUN` on a forward-forward run
folder, each against a count made by hand (every sample pays all K label passes)."""
from __future__ import annotations

import csv
import json

import pytest
import torch
from torch import nn

import snn
from snn.cli.main import main
from snn.energy import OperationCounter, build_report, estimate, load_profile
from snn.rules import ForwardForward, StepContext
from snn.training import run

AC, MAC = 0.9, 4.6  # pJ, the 45nm_fp32 profile (compute only)


class Net(nn.Module):
    """3 inputs (2 label slots + 1 data channel) -> 2 LIF -> 2 LIF; no readout."""

    def __init__(self) -> None:
        super().__init__()
        self.fc1 = nn.Linear(3, 2)
        self.lif1 = snn.LIF(tau=2.0, v_threshold=0.5, v_reset=0.0)
        self.fc2 = nn.Linear(2, 2)
        self.lif2 = snn.LIF(tau=2.0, v_threshold=0.5, v_reset=0.0)
        self.n_classes = 2
        with torch.no_grad():
            for fc in (self.fc1, self.fc2):
                fc.weight.fill_(10.0)  # any input event drives both neurons over threshold at that step
                fc.bias.zero_()

    def forward(self, x):
        return self.lif2(self.fc2(self.lif1(self.fc1(x))))


def _batch():
    x = torch.zeros(4, 2, 3)
    x[:, 0, 2] = torch.tensor([1.0, 0.0, 1.0, 1.0])  # sample 0: 4 real steps, data spikes at t = 0, 2, 3
    x[:, 1, 2] = torch.tensor([0.0, 1.0, 0.0, 0.0])  # sample 1: 2 real steps, a data spike at t = 1
    return x, torch.tensor([0, 1]), torch.tensor([4, 2])


# By hand, per label pass (the label slot is one event at every step, so both neurons of both layers fire at every
# real step): sample 0 — fc1 sees 4 label + 3 data events, × fan-out 2 = 14 SynOps; lif1 fires 2 × 4 = 8 spikes, so
# fc2 does 8 × 2 = 16. Sample 1 (2 real steps) — fc1: (2 + 1) × 2 = 6; lif1 fires 4; fc2: 8. Two passes (K = 2)
# per sample, mean over the 2 samples:
FC1 = (2 * 14 + 2 * 6) / 2  # 20 SynOps per sample
FC2 = (2 * 16 + 2 * 8) / 2  # 24
SPIKES = (2 * 8 + 2 * 4) / 2  # 12 per layer
# ANN with the same architecture: 3·2 + 2·2 = 10 MACs per frame; frames = passes × real steps = (2·4 + 2·2) / 2 = 6
ANN_PER_STEP = 10 * 6 * MAC
ANN_ONCE = 10 * 2 * MAC  # one frame per pass


def _check(report):
    rows = {r["name"]: r for r in report.layers}
    assert rows["fc1"]["synops"] == pytest.approx(FC1) and rows["fc2"]["synops"] == pytest.approx(FC2)
    assert rows["lif1"]["spikes"] == pytest.approx(SPIKES) and rows["lif2"]["spikes"] == pytest.approx(SPIKES)
    assert rows["lif1"]["updates"] == pytest.approx((2 * 4 * 2 + 2 * 2 * 2) / 2)  # neurons × real steps × passes
    assert report.total_pj == pytest.approx(AC * (FC1 + FC2))
    assert report.passes_per_sample == 2 and report.frames_per_sample == 3
    assert report.ann["per_step"] == pytest.approx(ANN_PER_STEP) and report.ann["once"] == pytest.approx(ANN_ONCE)


def test_the_epoch_logger_path_counts_every_label_pass_of_every_sample():
    net, (x, labels, lengths) = Net(), _batch()
    rule = ForwardForward()
    rule.attach(net)
    counter = OperationCounter(net)
    with torch.no_grad(), counter:
        counter.begin(x.shape[0], x.shape[1], lengths=lengths)  # what EnergyLogger does around evaluation_step
        rule.evaluation_step(net, (x, labels, lengths), StepContext())
        counter.end()
    assert counter.samples == 2 and counter.passes == 4
    _check(build_report(counter, load_profile("45nm_fp32")))


def test_estimate_with_the_rules_inference_equals_the_hand_count():
    net, (x, labels, lengths) = Net(), _batch()
    rule = ForwardForward()
    rule.attach(net)
    _check(estimate(net, [(x, labels, lengths)], inference=rule.inference))
    one_pass = estimate(net, [(x, labels, lengths)])  # without the rule: one forward with silent label slots
    assert one_pass.passes_per_sample == 1 and one_pass.synops < FC1 + FC2
    with pytest.raises(TypeError, match="inference: expected a callable"):
        estimate(net, [x], inference="forward_forward")


@pytest.fixture(scope="module")
def ff_run(tmp_path_factory):
    out = tmp_path_factory.mktemp("ff")
    cfg = {
        "data": {"dataset": "digits8x8_spikes", "label_channels": 10, "valid_fraction": 0.1},
        "model": {"name": "snn_mlp", "hidden": 8, "layers": 2, "tau_ms": 20.0, "dropout": 0.0, "batchnorm": False},
        "training": {"epochs": 1, "batch_size": 32, "seed": 0, "threads": 1, "limit_train_batches": 2,
                     "rule": {"name": "forward_forward"}},
        "run": {"name": "ff", "progress": False, "tensorboard": False, "plots": False, "energy": True,
                "energy_batches": 2},
    }
    return run(cfg, out=out / "r")


def test_a_forward_forward_run_logs_energy_and_snn_energy_counts_all_label_passes(ff_run, tmp_path, capsys):
    with open(ff_run.run_dir / "metrics.csv", newline="") as f:
        row = list(csv.DictReader(f))[-1]
    assert float(row["valid_synops"]) > 0 and float(row["valid_energy_nj"]) > 0  # run.log_energy (the default)
    assert main(["energy", str(ff_run.run_dir), "--batches", "2", "--out", str(tmp_path)]) == 0
    assert "ran the model 10 times per sample" in capsys.readouterr().out
    cli = json.loads((tmp_path / "energy_45nm_fp32.json").read_text())
    at_end = json.loads((ff_run.run_dir / "energy.json").read_text())  # the run's own report (run.energy)
    assert cli["passes_per_sample"] == at_end["passes_per_sample"] == 10
    assert cli["totals"]["synops"] == pytest.approx(at_end["totals"]["synops"], rel=1e-12)
    # independent recount: each test sample with each label embedded, counted as plain one-pass batches (the
    # former workaround), summed over the labels, equals the per-sample figure of the K-pass inference
    from snn.rules.forward_forward import embed_label
    from snn.training import load_run

    model, _cfg, data = load_run(ff_run.run_dir)
    batches = [b for _, b in zip(range(2), data.test_loader())]
    per_label = sum(estimate(model, [(embed_label(x, torch.full((x.shape[1],), k), 10), y, n) for x, y, n in batches],
                             ann_equivalent=False).synops for k in range(10))
    assert cli["totals"]["synops"] == pytest.approx(per_label, rel=1e-9)


def test_one_call_scoring_gives_the_scores_of_one_call_per_label():
    torch.manual_seed(0)
    net = Net()
    with torch.no_grad():
        net.fc1.weight.normal_()
        net.fc2.weight.normal_()
    x = (torch.rand(5, 3, 3) < 0.5).float()
    rule = ForwardForward()
    rule.attach(net)
    with torch.no_grad():
        lengths = torch.tensor([5, 3, 4])
        torch.testing.assert_close(rule.label_scores(net, x, lengths, one_call=True), rule.label_scores(net, x, lengths))


def test_snn_eval_of_a_forward_forward_run_classifies_by_goodness_like_the_run(ff_run):
    from snn.training import evaluate_run

    again = evaluate_run(ff_run.run_dir)  # the run's rule, not the untrained readout
    assert again["test_acc"] == ff_run.test["test_acc"] and again["test_loss"] == pytest.approx(ff_run.test["test_loss"])
