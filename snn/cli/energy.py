"""``snn energy RUN_OR_CHECKPOINT``: energy report of a trained model on real batches.

Sources of the model and the data:

* a run folder or checkpoint written by :mod:`snn.training`: loaded with ``snn.training.load_run(path)``, which
  returns ``(model, config, data)``; ``data`` is an iterable of batches ``(x [T, B, ...], ...)`` or an object with a
  ``test_loader()`` / ``test_dataloader()`` method returning one;
* a ``.pt`` file holding a whole ``nn.Module`` (``torch.save(model, path)``), with ``--data``.

``--data FILE.pt`` (a tensor ``[T, B, ...]``, a tuple ``(x, ...)`` or a list of such batches) overrides the run's
data. A run trained by a rule that classifies otherwise than by one forward of the model (forward-forward: one
pass per label) is counted through the rule's ``inference``, so the figures are the cost of classifying a sample.
The table is printed; ``energy_<profile>.json`` and ``plots/energy_<profile>.png`` are written into the run
folder (the checkpoint's folder) or ``--out``.
"""
from __future__ import annotations

import argparse
import sys
from pathlib import Path
from typing import Any

__all__ = ["add_parser"]

_EPILOG = """\
examples:
  snn energy runs/spoken_digits-20250101-120000
  snn energy runs/shd/best.pt --profile loihi --batches 8
  snn energy model.pt --data batch.pt --profile memory_aware_45nm --out reports/
profiles: 45nm_fp32 (default), 45nm_fp16, 45nm_int8, memory_aware_45nm, spike_driven_transformer, loihi,
truenorth, or the path of a YAML file (see snn/energy/profiles/).
"""


def add_parser(sub: argparse._SubParsersAction) -> None:
    """Register ``energy`` on the ``snn`` command's sub-parsers."""
    p = sub.add_parser(
        "energy", help="estimate the energy of a trained model on hardware profiles",
        description="Count synaptic operations, MACs, neuron updates and memory traffic of a real forward pass and "
                    "price them with a hardware profile; compare with the ANN of the same architecture.",
        epilog=_EPILOG, formatter_class=argparse.RawDescriptionHelpFormatter,
    )
    p.add_argument("path", metavar="RUN_OR_CHECKPOINT", help="run folder, training checkpoint, or a saved nn.Module (.pt)")
    p.add_argument("--profile", action="append", default=None, metavar="NAME_OR_YAML",
                   help="hardware profile (repeat for several; default 45nm_fp32)")
    p.add_argument("--data", default=None, metavar="FILE.pt",
                   help="batches to run: a tensor [T, B, ...], a tuple (x, ...) or a list of them (default: the run's "
                        "test data)")
    p.add_argument("--batches", type=int, default=None, metavar="N", help="count at most N batches")
    p.add_argument("--ann-convention", default="per_step", choices=("per_step", "once"),
                   help="ANN equivalent on the same real frames as the SNN (like-for-like, default) or once per "
                        "sample, for the headline ratio (the table gives both)")
    p.add_argument("--form", default="evaluation", choices=("evaluation", "as_is"),
                   help="count the model inside its evaluation() context when it has one (default: the inference "
                        "form, e.g. integer delays) or as it is")
    p.add_argument("--integer-inputs", default="events", choices=("events", "macs"),
                   help="non-negative integer inputs (spike counts) are events (default) or charged as MACs")
    p.add_argument("--out", default=None, metavar="DIR", help="where to write the JSON and PNG (default: the run folder)")
    p.add_argument("--trust-checkpoint", action="store_true",
                   help="load .pt files that hold pickled Python objects (a whole nn.Module); unpickling can run "
                        "code, so only for files whose source you trust (default: tensors and plain data only)")
    p.set_defaults(func=_energy)


def _load_data(path: str) -> Any:
    import torch

    from snn.training.checkpoint import load_torch_file

    obj = load_torch_file(path, what="--data file")
    batches = [obj] if isinstance(obj, (torch.Tensor, tuple)) else obj
    if not isinstance(batches, list) or not batches:
        raise ValueError(f"--data {path}: expected a tensor [T, B, ...], a tuple (x, ...) or a non-empty list of "
                         f"batches, got {type(obj).__name__}")
    for i, batch in enumerate(batches):
        x = batch[0] if isinstance(batch, (tuple, list)) and batch else batch
        if not isinstance(x, torch.Tensor) or x.dim() < 3 or x.numel() == 0 or x.is_complex() or x.dtype == torch.bool:
            got = f"shape {list(x.shape)} {x.dtype}" if isinstance(x, torch.Tensor) else type(x).__name__
            raise ValueError(f"--data {path}: batch {i} must hold a non-empty real tensor x [T, B, ...] (time-major, "
                             f"at least 3 dimensions), got {got}")
    return obj if isinstance(obj, list) else batches


def _data_from_module(data: Any) -> Any:
    for name in ("test_loader", "test_dataloader"):
        method = getattr(data, name, None)
        if callable(method):
            return method()
    return data


def _load_model(path: Path) -> tuple[Any, Any, Path, Any]:
    """(model, data or None, output folder, the run's inference or None: see
    :func:`snn.training.experiment.rule_inference`)."""
    import torch
    from torch import nn

    from snn.training.checkpoint import UntrustedCheckpointError, load_torch_file

    if path.is_file() and path.suffix == ".pt":
        try:
            obj = load_torch_file(path)
        except UntrustedCheckpointError as err:
            raise UntrustedCheckpointError(f"{err}. A saved nn.Module needs --trust-checkpoint: it is a pickle of "
                                           f"Python objects") from None
        if isinstance(obj, nn.Module):
            return obj, None, path.parent, None
    try:
        from snn.rules import rule_from_config
        from snn.training import load_run
        from snn.training.experiment import rule_inference
    except ImportError as err:
        raise RuntimeError(
            f"{path}: reading a training run needs snn.training.load_run(path) -> (model, config, data), which this "
            f"install does not provide ({err}); pass a saved nn.Module (.pt) with --data instead") from None
    model, config, data = load_run(path)
    inference = rule_inference(rule_from_config(config.training), model)  # e.g. forward-forward: one pass per label
    return model, _data_from_module(data), (path if path.is_dir() else path.parent), inference


def _energy(args: argparse.Namespace) -> int:
    from snn.energy import load_profile

    path = Path(args.path)
    if not path.exists():
        print(f"snn energy: {path} does not exist", file=sys.stderr)
        return 2
    if args.batches is not None and args.batches < 1:
        print(f"snn energy: --batches must be >= 1, got {args.batches}", file=sys.stderr)
        return 2
    from snn.training.checkpoint import trust_checkpoints

    try:
        profiles = [load_profile(p) for p in (args.profile or ["45nm_fp32"])]
        with trust_checkpoints(args.trust_checkpoint):
            model, data, out_dir, inference = _load_model(path)
            if args.data is not None:
                data = _load_data(args.data)
        if data is None:
            raise ValueError(f"{path} holds a model but no data: pass --data FILE.pt")
    except (ValueError, RuntimeError, FileNotFoundError) as err:
        print(f"snn energy: {err}", file=sys.stderr)
        return 2
    out_dir = Path(args.out) if args.out else out_dir
    from snn.energy import build_report, count_model

    # the pass of snn.energy.estimate (same form, same totals), priced by every profile
    try:
        counter = count_model(model, data, max_batches=args.batches, form=args.form,
                              integer_inputs=args.integer_inputs, inference=inference)
    except RuntimeError as err:  # torch's shape/dtype errors from the forward pass
        first = str(err).strip().splitlines()[0] if str(err).strip() else type(err).__name__
        print(f"snn energy: the model cannot run on this data ({first}); --data must hold batches x [T, B, ...] "
              f"shaped like the model's training input", file=sys.stderr)
        return 2
    for profile in profiles:
        report = build_report(counter, profile, ann_convention=args.ann_convention)
        print(report.table())
        json_path = out_dir / f"energy_{profile.name}.json"
        png_path = out_dir / "plots" / f"energy_{profile.name}.png"
        report.to_json(json_path)
        report.plot(png_path)
        print(f"wrote {json_path} and {png_path}\n")
    return 0
