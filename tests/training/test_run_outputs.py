"""Run outputs a user reads without the docs: the curves mark the best epoch, the raster names the sample, its label
and the prediction, the firing-rate chart names its split (checked on a tiny run's figures)."""
from __future__ import annotations

import pytest

import snn.training.plots as plots
from snn.training import run


@pytest.fixture
def figures(monkeypatch):
    captured = {}
    real_save = plots._save

    def save(fig, path):
        captured[str(path).rsplit("/", 1)[-1]] = {
            "suptitle": fig._suptitle.get_text() if fig._suptitle else "",
            "titles": [ax.get_title() for ax in fig.axes],
            "legends": [t.get_text() for ax in fig.axes if ax.get_legend() for t in ax.get_legend().get_texts()],
        }
        return real_save(fig, path)
    monkeypatch.setattr(plots, "_save", save)
    return captured


def test_plots_of_a_tiny_run_name_what_they_show(tiny, tmp_path, figures):
    result = run(tiny(training={"epochs": 2}, run={"plots": True}), out=tmp_path / "r")
    best = result.history[-1]["best_epoch"]
    assert f"best epoch {best}" in figures["curves.png"]["legends"]
    assert any(t.startswith("test (best model)") for t in figures["curves.png"]["legends"])
    raster = figures["raster.png"]["suptitle"]
    assert raster.startswith("test sample 0: label ") and "predicted" in raster and "(c" in raster  # class names
    assert figures["firing_rates.png"]["titles"] == ["firing rate per layer (test set)"]


def test_energy_chart_uses_readable_units_shows_the_ann_and_explains_empty_rows(monkeypatch, tmp_path):
    import matplotlib.figure
    import torch
    from torch import nn

    import snn
    from snn.energy import estimate

    seen = {}

    def savefig(self, *args, **kwargs):
        ax = self.axes[0]
        seen.update(xlabel=ax.get_xlabel(), title=ax.get_title(), rows=[t.get_text() for t in ax.get_yticklabels()])
    monkeypatch.setattr(matplotlib.figure.Figure, "savefig", savefig)
    torch.manual_seed(0)
    model = nn.Sequential(nn.Linear(10, 16), snn.LIF(tau=2.0), nn.Linear(16, 4))
    report = estimate(model, (torch.rand(20, 3, 10) < 0.3).float(), profile="45nm_fp32")
    report.plot(tmp_path / "e.png")
    assert seen["xlabel"] in ("energy per sample (nJ)", "energy per sample (µJ)", "energy per sample (pJ)")
    assert "×" not in seen["xlabel"] and seen["rows"][-1] == "ANN, same architecture"
    assert "no bar: " in seen["title"] and "nothing this profile prices" in seen["title"]
    assert "'updates': neuron state updates per sample" in report.table() and "'rate': spikes per neuron" in report.table()
