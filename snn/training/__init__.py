"""Training: the :class:`Trainer` loop, callbacks, pluggable learning rules, checkpoints, DDP, plots, and :func:`run`."""
from snn.callbacks import Callback
from snn.training.callbacks import ConsoleLogger, EarlyStopping, EnergyLogger, MetricsWriter
from snn.training.checkpoint import CheckpointMismatchError, load_checkpoint, save_atomic
from snn.training.experiment import RunResult, RunSplits, evaluate_run, load_run, plot_run, run
from snn.training.rules import Backprop, LearningRule, StepContext, get_rule
from snn.training.trainer import Trainer, seed_everything
from snn.models.registry import build_model

__all__ = ["Trainer", "Callback", "EarlyStopping", "EnergyLogger", "ConsoleLogger", "MetricsWriter", "LearningRule",
           "Backprop", "StepContext", "get_rule", "run", "RunResult", "build_model", "evaluate_run", "plot_run",
           "load_run", "RunSplits", "save_atomic", "load_checkpoint", "CheckpointMismatchError", "seed_everything"]
