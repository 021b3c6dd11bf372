"""Training: the :class:`Trainer` loop, pluggable learning rules, checkpoints, DDP, plots, and :func:`run`."""
from snn.training.checkpoint import CheckpointMismatchError, load_checkpoint, save_atomic
from snn.training.rules import Backprop, LearningRule, StepContext, get_rule
from snn.training.run import RunResult, RunSplits, build_model, evaluate_run, load_run, plot_run, run
from snn.training.trainer import Trainer, seed_everything

__all__ = ["Trainer", "LearningRule", "Backprop", "StepContext", "get_rule", "run", "RunResult", "build_model",
           "evaluate_run", "plot_run", "load_run", "RunSplits", "save_atomic", "load_checkpoint", "CheckpointMismatchError", "seed_everything"]
