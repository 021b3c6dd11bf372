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
