"""The library's own Trainer features, written as :class:`snn.callbacks.Callback` objects.

* :class:`EarlyStopping` — stop after ``patience`` epochs without a better validation score;
* :class:`EnergyLogger` — count operations during every evaluation pass and log synaptic operations and energy
  per sample (``<split>_synops``, ``<split>_energy_nj``) under a hardware profile;
* :class:`ConsoleLogger` — the one-line epoch summary;
* :class:`MetricsWriter` — ``metrics.csv`` (rewritten atomically every epoch) and TensorBoard scalars.

:func:`configured_callbacks` assembles them from a run config; the Trainer adds the model's own ``callbacks()``
before them, so the metrics row a logger sees already holds what the model added (e.g. the delay width σ).
"""
from __future__ import annotations

import csv
import io
import math
from pathlib import Path
from typing import Any

from snn.atomic import write_atomic
from snn.callbacks import Callback

__all__ = ["Callback", "EarlyStopping", "EnergyLogger", "ConsoleLogger", "MetricsWriter", "configured_callbacks"]


class EarlyStopping(Callback):
    """Stop training after ``patience`` epochs in a row without a better validation score.

    The score is the Trainer's best-model criterion (``training.select_metric``); the count of bad epochs is the
    Trainer's (kept in its checkpoints), so a resumed run stops where an uninterrupted one would.
    """

    def __init__(self, patience: int) -> None:
        if not isinstance(patience, int) or isinstance(patience, bool) or patience < 1:
            raise ValueError(f"patience must be a positive int, got {patience!r}")
        self.patience = patience

    def on_epoch_end(self, trainer: Any, epoch: int, row: dict[str, Any]) -> None:
        if trainer.bad_epochs >= self.patience:
            trainer.should_stop = True
            trainer.log_message(f"early stopping: no better {trainer.config.training.select_metric} "
                                f"for {trainer.bad_epochs} epochs")


class EnergyLogger(Callback):
    """Counts operations on every evaluation pass (:class:`snn.energy.OperationCounter`, the model's evaluation
    form) and adds ``<split>_synops`` (synaptic operations per sample) and ``<split>_energy_nj`` (energy per sample
    under ``profile``) to the metrics row."""

    def __init__(self, profile: str) -> None:
        from snn.energy import load_profile

        self.profile = load_profile(profile)  # resolved now: a bad name fails before the first epoch
        self.counter = None

    def on_evaluate_start(self, trainer: Any, split: str) -> None:
        from snn.energy import OperationCounter

        self.counter = OperationCounter(trainer.model)
        self.counter.__enter__()

    def on_evaluate_batch_start(self, trainer: Any, batch: tuple) -> None:
        x, _, lengths = batch
        self.counter.begin(x.shape[0], x.shape[1], lengths=lengths)  # padded steps count nothing

    def on_evaluate_batch_end(self, trainer: Any, batch: tuple, outputs: dict[str, Any]) -> None:
        self.counter.end()

    def on_evaluate_end(self, trainer: Any, split: str, row: dict[str, Any] | None) -> None:
        counter, self.counter = self.counter, None
        if counter is None:
            return
        counter.__exit__(None, None, None)  # also when the pass raised (row is None): the dispatch mode is popped
        if row is not None and counter.samples:
            from snn.energy import build_report

            report = build_report(counter, self.profile, ann_equivalent=False)
            row[f"{split}_synops"] = report.synops
            row[f"{split}_energy_nj"] = report.total_pj * 1e-3


class ConsoleLogger(Callback):
    """Prints one line per epoch: losses, accuracies, mean firing rate, what other callbacks added, time."""

    #: keys shown with a fixed format; other scalar keys added by callbacks (e.g. a model's schedule) are shown as ``k v``
    _SKIP_PREFIXES = ("train_", "valid_", "test_", "lr/", "epoch", "best_epoch")

    def on_epoch_end(self, trainer: Any, epoch: int, row: dict[str, Any]) -> None:
        if not trainer.dist.is_main:
            return
        parts = [f"epoch {row['epoch']}/{trainer.config.training.epochs}",
                 f"train loss {row['train_loss']:.4f} acc {row['train_acc']:.3f}"]
        split = trainer.selection_split
        if f"{split}_acc" in row:
            parts.append(f"{split} loss {row[f'{split}_loss']:.4f} acc {row[f'{split}_acc']:.3f}")
        rates = [v for k, v in row.items() if k.startswith("train_rate/")]
        if rates:
            parts.append(f"rate {sum(rates) / len(rates):.3f}")
        if f"{split}_synops" in row:
            parts.append(f"{row[f'{split}_synops'] / 1e3:.1f}k synops {row[f'{split}_energy_nj']:.1f} nJ/sample")
        for k, v in row.items():
            if not k.startswith(self._SKIP_PREFIXES) and isinstance(v, float):
                parts.append(f"{k} {v:.4g}")
        parts.append(f"{row['train_time_s']:.1f}s")
        trainer.log_message(" | ".join(parts))


def _write_csv_atomic(path: Path, rows: list[dict[str, Any]]) -> None:
    keys: list[str] = []
    for r in rows:
        keys += [k for k in r if k not in keys]
    buf = io.StringIO()
    w = csv.DictWriter(buf, fieldnames=keys)
    w.writeheader()
    for r in rows:
        w.writerow(r)
    write_atomic(path, buf.getvalue())


class MetricsWriter(Callback):
    """Writes the metrics history to ``run_dir/metrics.csv`` every epoch and, with ``tensorboard``, the scalars to
    ``run_dir/tensorboard`` (skipped with a note when TensorBoard does not import)."""

    def __init__(self, run_dir: str | Path, tensorboard: bool = True) -> None:
        self.run_dir = Path(run_dir)
        self.tensorboard = bool(tensorboard)
        self._tb = None

    def on_epoch_end(self, trainer: Any, epoch: int, row: dict[str, Any]) -> None:
        if not trainer.writes:
            return
        _write_csv_atomic(self.run_dir / "metrics.csv", trainer.history + [row])
        if not self.tensorboard:
            return
        if self._tb is None:
            try:
                from torch.utils.tensorboard import SummaryWriter
            except ImportError:
                self.tensorboard = False
                trainer.log_message("TensorBoard is not installed: metrics go to metrics.csv only")
                return
            self._tb = SummaryWriter(log_dir=str(self.run_dir / "tensorboard"))
        for k, v in row.items():
            if isinstance(v, (int, float)) and k != "epoch" and v is not None and math.isfinite(v):
                self._tb.add_scalar(k, v, row["epoch"])

    def on_fit_end(self, trainer: Any) -> None:
        if self._tb is not None:
            self._tb.flush()

    def close(self) -> None:
        if self._tb is not None:
            self._tb.close()
            self._tb = None


def configured_callbacks(config: Any, run_dir: str | Path | None) -> list[Callback]:
    """The callbacks a run config asks for: early stopping, energy logging, console line, metrics files."""
    cbs: list[Callback] = []
    if config.training.early_stopping_patience is not None:
        cbs.append(EarlyStopping(config.training.early_stopping_patience))
    if config.run.log_energy:
        cbs.append(EnergyLogger(config.run.energy_profile))
    cbs.append(ConsoleLogger())
    if run_dir is not None:
        cbs.append(MetricsWriter(run_dir, config.run.tensorboard))
    return cbs
