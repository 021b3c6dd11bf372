"""``snn train``, ``snn eval`` and ``snn plot``: config-driven training, evaluation and plots of a run."""
from __future__ import annotations

import argparse
import json

__all__ = ["add_parser"]

_TRAIN_EPILOG = """\
examples:
  snn train examples/configs/spoken_digits.yaml
  snn train examples/configs/spoken_digits.yaml --set model.hidden=128 --set training.epochs=5
  snn train examples/configs/shd_delays.yaml --set data.root=~/data/SHD --device cuda
  snn train examples/configs/spoken_digits.yaml --resume runs/spoken_digits-20250101-120000
  torchrun --nproc_per_node=4 -m snn.cli.main train examples/configs/ssc_delays.yaml   (DDP)

Config keys and their allowed values: see snn/config.py or any file in examples/configs/.
"""


def add_parser(sub: argparse._SubParsersAction) -> None:
    """Register ``train``, ``eval`` and ``plot`` on the ``snn`` command's sub-parsers."""
    p = sub.add_parser(
        "train", help="train a model from a YAML config",
        description="Train the model described by CONFIG, test the best validation model, and write the run folder "
                    "(resolved config.yaml, metrics.csv, TensorBoard logs, last.pt/best.pt checkpoints, plots, energy report).",
        epilog=_TRAIN_EPILOG, formatter_class=argparse.RawDescriptionHelpFormatter,
    )
    p.add_argument("config", metavar="CONFIG", help="YAML config file (sections data, model, training, optim, run)")
    p.add_argument("--set", dest="overrides", action="append", default=[], metavar="KEY=VALUE",
                   help="override one config value by its dotted path, e.g. --set model.hidden=512 (value parsed as "
                        "YAML and type-checked); repeat for several")
    p.add_argument("--out", metavar="DIR", default=None,
                   help="run folder (default: run.out_dir/<run.name>-<timestamp>)")
    p.add_argument("--resume", metavar="RUN", default=None,
                   help="continue an interrupted run from its folder (or its last.pt); the config must be the same, "
                        "and the final weights equal those of an uninterrupted run")
    p.add_argument("--overwrite", action="store_true",
                   help="replace the run already in --out (its checkpoints, metrics, plots are deleted); without it "
                        "a non-empty run folder is refused")
    p.add_argument("--trust-checkpoint", action="store_true",
                   help="with --resume: load a last.pt that holds pickled Python objects (only for files whose source "
                        "you trust; unpickling can run code)")
    p.add_argument("--device", default=None, help="'cpu', 'cuda', 'cuda:1' or 'auto' (overrides training.device)")
    p.add_argument("--epochs", type=int, default=None,
                   help="number of epochs (overrides training.epochs); with --resume, extends a run to this many "
                        "epochs, its schedules continuing as if configured so from the start")
    p.add_argument("--no-progress", action="store_true", help="no progress bar (one line per epoch instead)")
    p.set_defaults(func=_train)

    e = sub.add_parser(
        "eval", help="evaluate a trained run or checkpoint",
        description="Rebuild the model of a run folder (its best.pt) or of a checkpoint file, and report loss, "
                    "accuracy and firing rates on a split.",
    )
    e.add_argument("path", metavar="RUN_OR_CHECKPOINT", help="run folder or .pt checkpoint")
    e.add_argument("--split", default="test", choices=("train", "valid", "test"), help="split to evaluate (default test)")
    e.add_argument("--device", default=None, help="'cpu', 'cuda', ... (default: the run's training.device)")
    e.add_argument("--json", action="store_true", help="print the metrics as JSON")
    e.add_argument("--trust-checkpoint", action="store_true",
                   help="load a checkpoint that holds pickled Python objects (only for files whose source you trust)")
    e.set_defaults(func=_eval)

    q = sub.add_parser(
        "plot", help="regenerate the plots of a run",
        description="Rewrite RUN/plots/: loss/accuracy curves, spike raster of a test sample, firing rate per layer, "
                    "learned-delay histograms.",
    )
    q.add_argument("run", metavar="RUN", help="run folder")
    q.add_argument("--device", default=None, help="device for the forward pass that records the raster")
    q.set_defaults(func=_plot)


def _train(args: argparse.Namespace) -> int:
    from snn.training.checkpoint import trust_checkpoints
    from snn.training.experiment import run

    extra = {"overwrite": True} if args.overwrite else {}
    with trust_checkpoints(args.trust_checkpoint):  # errors: one line and exit code 2, in snn.cli.main
        result = run(args.config, args.overrides, out=args.out, resume=args.resume, device=args.device,
                     epochs=args.epochs, progress=False if args.no_progress else None, **extra)
    print(f"done in {result.elapsed_s:.0f} s; run folder {result.run_dir}")
    return 0


def _eval(args: argparse.Namespace) -> int:
    from snn.training.checkpoint import trust_checkpoints
    from snn.training.experiment import evaluate_run

    with trust_checkpoints(args.trust_checkpoint):
        metrics = evaluate_run(args.path, split=args.split, device=args.device)
    if args.json:
        print(json.dumps(metrics, indent=2))
    else:
        s = args.split
        print(f"{metrics['checkpoint']} (epoch {metrics['epoch']}): {s} accuracy {metrics[f'{s}_acc']:.4f}, "
              f"loss {metrics[f'{s}_loss']:.4f}")
        for k, v in metrics.items():
            if k.startswith(f"{s}_rate/"):
                print(f"  firing rate {k.split('/', 1)[1]}: {v:.4f}")
    return 0


def _plot(args: argparse.Namespace) -> int:
    from snn.training.experiment import plot_run

    paths = plot_run(args.run, device=args.device)
    for p in paths:
        print(p)
    return 0
