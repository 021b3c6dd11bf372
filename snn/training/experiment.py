"""Whole runs from a config: ``run`` (train → test → plots → energy report), ``evaluate_run``, ``plot_run``, ``load_run``.

Nothing here knows a particular model: the model comes from its family in :mod:`snn.models.registry`
(``model.name``), and reloading a run rebuilds it from the checkpoint's config and stored input/class counts.

The same function drives ``snn train CONFIG`` and Python::

    import snn.training
    result = snn.training.run("examples/configs/spoken_digits.yaml", {"training.epochs": 3})
    result.test["test_acc"], result.run_dir

A run folder holds ``config.yaml`` (resolved), ``metrics.csv``, ``last.pt``, ``best.pt``, ``tensorboard/``,
``plots/`` (curves, raster, firing rates, delay histograms), ``test_metrics.json`` and the energy report.
"""
from __future__ import annotations

import json
import os
import time
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import torch
import torch.distributed as dist
from torch import nn

from snn.atomic import write_atomic
from snn.config import Config, ConfigError, config_from_dict, load_config
from snn.kernels.cpu_threads import set_threads
from snn.training import distributed as D
from snn.training.checkpoint import CheckpointMismatchError, check_model_state, load_checkpoint
from snn.models.registry import build_model, family_of
from snn.training.data import RunData, build_datasets, build_split
from snn.training.plots import plot_curves, plot_delay_histograms, plot_firing_rates, plot_raster
from snn.rules import rule_from_config
from snn.rules.base import LearningRule
from snn.training.preflight import preflight
from snn.training.rundir import RunDirError, claim_run_dir
from snn.training.trainer import Trainer, resolve_device, seed_everything

__all__ = ["run", "RunResult", "build_model", "evaluate_run", "plot_run", "load_run", "RunSplits", "resolve_run",
           "make_run_dir", "set_threads", "model_io"]


@dataclass
class RunResult:
    """What :func:`run` returns: the run folder, the metrics history, the test metrics, the model."""

    run_dir: Path | None
    history: list[dict[str, Any]]
    test: dict[str, Any] = field(default_factory=dict)
    model: nn.Module | None = None
    config: Config | None = None
    elapsed_s: float = 0.0


def make_run_dir(config: Config, out: str | os.PathLike | None) -> Path:
    """``out`` if given, else ``run.out_dir/<run.name>-<YYYYmmdd-HHMMSS>`` (a suffix keeps it unique)."""
    if out is not None:
        return Path(out)
    stamp = time.strftime("%Y%m%d-%H%M%S")
    base = Path(config.run.out_dir) / f"{config.run.name}-{stamp}"
    path, i = base, 1
    while path.exists():
        path, i = Path(f"{base}-{i}"), i + 1
    return path


def resolve_run(path: str | os.PathLike) -> tuple[Path, Path]:
    """``(run_dir, checkpoint)`` from a run folder (its ``best.pt``, else ``last.pt``) or a checkpoint file."""
    p = Path(path)
    if p.is_dir():
        for name in ("best.pt", "last.pt"):
            if (p / name).is_file():
                return p, p / name
        raise FileNotFoundError(f"{p}: no best.pt or last.pt in this run folder")
    if p.is_file():
        return p.parent, p
    raise FileNotFoundError(f"run folder or checkpoint not found: {p}")


def _merge_overrides(overrides: list[str] | dict[str, Any] | None, kwargs: dict[str, Any]) -> list[str] | dict[str, Any] | None:
    if not kwargs:
        return overrides
    merged: dict[str, Any] = {}
    if isinstance(overrides, dict):
        merged.update(overrides)
    elif overrides:
        raise TypeError("pass overrides either as a list of 'key=value' strings or as keyword arguments, not both")
    for key, value in kwargs.items():
        if isinstance(value, dict):  # run(cfg, model={"hidden": 64})
            merged.update({f"{key}.{k}": v for k, v in value.items()})
        else:  # run(cfg, model__hidden=64)
            merged[key.replace("__", ".")] = value
    return merged


def _energy_report(model: nn.Module, loader, config: Config, run_dir: Path, inference=None) -> str | None:
    """Energy of the model's inference form (``estimate`` enters its ``evaluation()``; ``inference``: the rule's
    forward pass(es) per batch) on test batches; writes energy.json / energy.png / energy.txt atomically; returns
    the table."""
    from snn.energy import estimate

    report = estimate(model, loader, profile=config.run.energy_profile, max_batches=config.run.energy_batches,
                      inference=inference)
    report.to_json(run_dir / "energy.json")
    report.plot(run_dir / "plots" / "energy.png")
    table = report.table()
    write_atomic(run_dir / "energy.txt", table + "\n")
    return table


def _write_json(path: Path, obj: Any) -> None:
    write_atomic(path, json.dumps(obj, indent=2, default=float))


def _make_plots(trainer: Trainer, run_dir: Path, test: dict[str, Any], config: Config) -> list[Path]:
    plots = run_dir / "plots"
    paths = [plot_curves(trainer.history, plots / "curves.png", test.get("test_acc"), trainer.best_epoch)]
    rates = {k.split("/", 1)[1]: v for k, v in test.items() if k.startswith("test_rate/")}
    if rates:
        paths.append(plot_firing_rates(rates, plots / "firing_rates.png", split="test"))
    if test.get("sample"):
        x0 = trainer.test_data[0][0] if trainer.test_data is not None else None
        classes = list(getattr(trainer.test_data, "classes", []) or [])

        def name(k: int | None) -> str:
            return "?" if k is None else (f"{k} ({classes[k]})" if k < len(classes) else str(k))
        title = (f"test sample 0: label {name(test.get('sample_label'))}, "
                 f"predicted {name(test.get('sample_prediction'))}")
        paths.append(plot_raster(test["sample"], plots / "raster.png", config.data.dt_ms, x0, title=title))
    p = plot_delay_histograms(trainer.model, plots / "delays.png", config.data.dt_ms)
    if p is not None:
        paths.append(p)
    return paths


def run(
    config: str | os.PathLike | Config | dict,
    overrides: list[str] | dict[str, Any] | None = None,
    *,
    out: str | os.PathLike | None = None,
    resume: str | os.PathLike | None = None,
    device: str | None = None,
    epochs: int | None = None,
    progress: bool | None = None,
    overwrite: bool = False,
    **kwargs: Any,
) -> RunResult:
    """Train the configured model, test the best validation model, write plots and the energy report.

    Args:
        config: YAML path, :class:`~snn.config.Config` or nested dict.
        overrides: ``["model.hidden=512", ...]`` or ``{"model.hidden": 512}``; keyword arguments work too:
            ``run(cfg, model__hidden=512)`` or ``run(cfg, model={"hidden": 512})``.
        out: run folder (default ``run.out_dir/<name>-<timestamp>``).
        resume: a run folder or its ``last.pt``: continue that run in its own folder (the config must be the same
            up to settings that do not change the result; see :func:`snn.training.checkpoint.check_config`).
        device: overrides ``training.device``.
        epochs: overrides ``training.epochs``; with ``resume`` it may extend a run (its schedules continue as if the
            longer run had been configured: :func:`snn.training.checkpoint.resume_scheduler`).
        progress: overrides ``run.progress``.
        overwrite: replace the outputs of a non-empty run folder ``out`` (otherwise refused).

    Everything in the config is checked and every named resource (energy profile, data files, device) resolved
    before any data is read; the run folder is locked for the life of the run (a second process writing to it gets
    an error naming the holder); dataset/model mismatches are caught before training starts.
    """
    t0 = time.perf_counter()
    overrides = _merge_overrides(overrides, kwargs)
    cfg = load_config(config, overrides)
    extra = {}
    if device is not None:
        extra["training.device"] = device
    if epochs is not None:
        extra["training.epochs"] = epochs
    if progress is not None:
        extra["run.progress"] = progress
    if extra:
        cfg = load_config(cfg, extra)
    if resume is not None:
        resume_dir, _ = resolve_run(resume)
        last = Path(resume) if Path(resume).is_file() else resume_dir / "last.pt"
        if not last.is_file():
            raise FileNotFoundError(f"--resume: {last} not found (a run folder with last.pt, or the file itself)")
        if out is not None and Path(out).resolve() != resume_dir.resolve():
            raise ValueError(f"--out {out}: a resumed run continues in its own folder {resume_dir}; drop --out, or copy "
                             "the folder and resume the copy")
        if overwrite:
            raise ValueError("--overwrite with --resume: resuming continues the run's outputs; drop one of them")
        out = resume_dir
    preflight(cfg)
    info = D.init_from_env(cfg.training.device)
    run_dir, lock = _claim(cfg, out, info, overwrite=overwrite, resume=resume is not None)
    try:
        return _run_locked(cfg, info, run_dir, resume, last if resume is not None else None, epochs, t0)
    finally:
        if lock is not None:
            lock.release()


def _claim(cfg: Config, out: str | os.PathLike | None, info: Any, *, overwrite: bool, resume: bool):
    """The run folder, locked by the main process (``(run_dir, lock)``); under DDP every rank learns the folder or
    the main process's error."""
    run_dir, lock, error = None, None, None
    if info.is_main:
        run_dir = make_run_dir(cfg, out)
        try:
            lock = claim_run_dir(run_dir, overwrite=overwrite, resume=resume)
        except RunDirError as err:
            error = err
    if info.enabled:
        holder = [str(run_dir) if run_dir is not None else None, None if error is None else str(error)]
        dist.broadcast_object_list(holder, src=0)
        if holder[1] is not None and error is None:
            raise RunDirError(holder[1])
        run_dir = Path(holder[0])
    if error is not None:
        raise error
    return run_dir, lock


def _run_locked(cfg: Config, info: Any, run_dir: Path | None, resume: Any, last: Path | None, epochs: int | None,
                t0: float) -> RunResult:
    if cfg.training.threads is not None:
        set_threads(cfg.training.threads)
    seed_everything(cfg.training.seed, cfg.training.deterministic)

    data = build_datasets(cfg.data, test=cfg.run.test_at_end)
    model = build_model(cfg, data.n_inputs, data.n_classes)
    rule = rule_from_config(cfg.training)
    # the paper protocol (SHD, spoken digits): the test set is the selection set, evaluated after every epoch
    test_selects = cfg.training.protocol == "paper" and cfg.data.dataset != "ssc" and data.test is not None
    trainer = Trainer(model, rule, data.train, data.test if test_selects else data.valid, data.test, config=cfg,
                      run_dir=run_dir, selection_split="test" if test_selects else "valid",
                      metadata={"n_inputs": data.n_inputs, "n_classes": data.n_classes,
                                **_encoding_metadata(data.train)})
    if resume is not None:
        accepted = trainer.resume(last, extend_epochs=epochs is not None)
        if info.is_main:
            print(f"resumed {last} after epoch {trainer.epoch}", flush=True)
            for line in accepted:
                print(f"  accepted config difference (does not change the result): {line}", flush=True)
    if info.is_main:
        print(f"run folder: {run_dir}\n{_describe(model, data, cfg, trainer)}", flush=True)
    history = trainer.fit()

    test: dict[str, Any] = {}
    if cfg.run.test_at_end and data.test is not None:
        test = trainer.test(use_best=True, record_sample=True)
    if info.is_main and run_dir is not None:
        if test:
            selection = ("test set (paper protocol: best test accuracy over epochs, a test-set selection)"
                         if test_selects else "validation set (the test set was not used for selection)")
            _write_json(run_dir / "test_metrics.json",
                        {k: v for k, v in test.items() if not k.startswith("sample")}
                        | {"best_epoch": trainer.best_epoch, "protocol": cfg.training.protocol, "selected_on": selection})
            which = "the best epoch on the test set itself (paper protocol)" if test_selects else "the best validation model"
            print(f"test accuracy {test['test_acc']:.4f} (loss {test['test_loss']:.4f}) with {which} "
                  f"(epoch {trainer.best_epoch}); checkpoint {run_dir / 'best.pt'}", flush=True)
        if cfg.run.plots:
            _make_plots(trainer, run_dir, test, cfg)
            print(f"plots: {run_dir / 'plots'}", flush=True)
        if cfg.run.energy and data.test is not None:
            table = _energy_report(trainer.model, trainer.eval_loader(data.test), cfg, run_dir,
                                   inference=rule_inference(rule, trainer.model))
            if table:
                print(table, flush=True)
    trainer.close()
    for key in ("sample", "sample_label", "sample_prediction"):
        test.pop(key, None)
    return RunResult(run_dir, history, test, trainer.model, cfg, time.perf_counter() - t0)


def _encoding_metadata(dataset: Any) -> dict[str, str]:
    """``{"encoding": settings JSON}`` of the training file when it says how it was encoded (else ``{}``), so that
    ``snn eval`` can warn about data encoded with other settings (:func:`snn.datasets.encoding.check_compatible`)."""
    from snn.datasets.encoding import encoding_of

    path = getattr(dataset, "path", None)
    settings = encoding_of(path) if path is not None else None
    return {"encoding": settings.to_json()} if settings is not None else {}


def _describe(model: nn.Module, data: RunData, cfg: Config, trainer: Trainer) -> str:
    n_params = sum(p.numel() for p in model.parameters())
    return (f"data: {cfg.data.dataset} train {len(data.train)} / valid {len(data.valid) if data.valid else 0} / "
            f"test {len(data.test) if data.test else 0} samples, {data.n_inputs} inputs, {data.n_classes} classes, "
            f"binning {cfg.data.binning}, protocol {cfg.training.protocol}\n"
            f"model: {cfg.model.name} / {type(model).__name__} ({n_params:,} parameters), "
            f"device {trainer.device}{', AMP ' + str(trainer.amp_dtype) if trainer.amp else ''}, "
            f"{trainer.steps_per_epoch} steps/epoch, {cfg.training.epochs} epochs")


def _load_run(path: str | os.PathLike, device: str | None):
    run_dir, ckpt_path = resolve_run(path)
    ckpt = load_checkpoint(ckpt_path)
    if ckpt.get("config") is None:
        raise CheckpointMismatchError(f"{ckpt_path}: has no config; cannot rebuild its model")
    try:
        cfg = config_from_dict(ckpt["config"], legacy="migrate")
    except ConfigError as err:
        raise CheckpointMismatchError(f"{ckpt_path}: its stored config does not load: {err}") from err
    if device is not None:
        cfg = load_config(cfg, {"training.device": device})
    return run_dir, ckpt_path, ckpt, cfg


class RunSplits:
    """The data of a reloaded run: ``loader(split)`` gives padded time-major batches ``(x [T, B, C], labels, lengths)``.

    Splits are built (binned, cached) on first use only; :meth:`test_loader` is what ``snn energy`` iterates.
    """

    def __init__(self, config: Config, batch_size: int | None = None) -> None:
        self.config = config
        self.batch_size = batch_size or config.training.eval_batch_size or config.training.batch_size
        self._splits: dict[str, Any] = {}

    def dataset(self, split: str):
        """The map-style dataset of ``split`` (``"train"``, ``"valid"``, ``"test"``), built once."""
        if split not in self._splits:
            self._splits[split] = build_split(self.config.data, split)
        return self._splits[split]

    def loader(self, split: str = "test"):
        """Sequential padded batches of ``split`` (``torch.utils.data.DataLoader``)."""
        from torch.utils.data import DataLoader, SequentialSampler

        from snn.datasets import pad_collate

        ds = self.dataset(split)
        return DataLoader(ds, batch_size=self.batch_size, sampler=SequentialSampler(ds), collate_fn=pad_collate)

    def test_loader(self):
        """Batches of the test split."""
        return self.loader("test")

    def __repr__(self) -> str:
        return f"RunSplits(dataset={self.config.data.dataset!r}, batch_size={self.batch_size})"


def load_run(path: str | os.PathLike, device: str | None = "cpu",
             checkpoint: str = "best") -> tuple[nn.Module, Config, RunSplits]:
    """Rebuild a trained model from a run folder (or a checkpoint file): ``(model, config, data)``.

    Args:
        path: run folder (``best.pt``, else ``last.pt``) or a ``.pt`` training checkpoint.
        device: where to put the model (``None``: the run's ``training.device``).
        checkpoint: ``"best"`` or ``"last"`` when ``path`` is a folder.

    The model is in eval mode with the checkpoint's weights; ``data`` builds the run's splits on demand
    (``data.test_loader()`` → batches ``(x [T, B, C], labels, lengths)``). No dataset is read before it is used:
    the model's shape comes from the checkpoint (input channels and classes of its first and last delay layers).
    """
    if checkpoint not in ("best", "last"):
        raise ValueError(f"checkpoint must be 'best' or 'last', got {checkpoint!r}")
    p = Path(path)
    if p.is_dir() and checkpoint == "last":
        path = p / "last.pt"
        if not Path(path).is_file():
            raise FileNotFoundError(f"{p}: no last.pt in this run folder")
    _run_dir, ckpt_path, ckpt, cfg = _load_run(path, device)
    n_inputs, n_classes = model_io(ckpt, cfg)
    model = build_model(cfg, n_inputs, n_classes)
    check_model_state(model, ckpt["model"], source=f"checkpoint {ckpt_path}")
    model.load_state_dict(ckpt["model"])
    model.to(resolve_device(cfg.training.device)).eval()
    return model, cfg, RunSplits(cfg)


def rule_inference(rule: Any, model: nn.Module) -> Any:
    """``rule.inference`` (attached to ``model``) when the rule classifies otherwise than by one forward of the
    model (e.g. forward-forward: one pass per label), else ``None`` (the energy counter's own single forward)."""
    if type(rule).inference is LearningRule.inference:
        return None
    if getattr(rule, "model", None) is not model:
        rule.attach(model)
    return rule.inference


def evaluate_run(path: str | os.PathLike, split: str = "test", device: str | None = None,
                 progress: bool = False) -> dict[str, Any]:
    """Rebuild the model of a run folder or checkpoint, load its weights and evaluate on ``split``."""
    run_dir, ckpt_path, ckpt, cfg = _load_run(path, device)
    ds = build_split(cfg.data, split)
    encoding = (ckpt.get("metadata") or {}).get("encoding")
    if encoding and getattr(ds, "path", None) is not None:
        from snn.datasets.encoder import EncoderSettings
        from snn.datasets.encoding import check_compatible

        check_compatible(EncoderSettings.from_json(encoding), ds.path, stacklevel=2)
    n_classes = model_io(ckpt, cfg)[1]
    if ds.labels.size and int(ds.labels.max()) >= n_classes:
        raise ValueError(f"dataset/model mismatch: the {split} split has labels up to {int(ds.labels.max())}, "
                         f"the checkpoint's model has {n_classes} outputs")
    model = build_model(cfg, ds.n_channels, n_classes)
    check_model_state(model, ckpt["model"], source=f"checkpoint {ckpt_path}")
    model.load_state_dict(ckpt["model"])
    trainer = Trainer(model, rule_from_config(cfg.training), ds, None, None, config=cfg, run_dir=None,
                      progress=progress,
                      device=resolve_device(cfg.training.device))
    try:
        result = trainer.evaluate(ds, split)
    finally:
        trainer.close()
    result["checkpoint"] = str(ckpt_path)
    result["epoch"] = ckpt.get("epoch")
    return result


def model_io(ckpt: dict[str, Any], config: Config) -> tuple[int, int]:
    """``(input channels, output classes)`` of a checkpoint's model: its stored metadata, else ``model.n_inputs`` /
    ``model.n_classes``, else the family's ``checkpoint_io(state_dict)`` (checkpoints written before the metadata)."""
    meta = ckpt.get("metadata") or {}
    if "n_inputs" in meta and "n_classes" in meta:
        return int(meta["n_inputs"]), int(meta["n_classes"])
    if config.model.n_inputs is not None and config.model.n_classes is not None:
        return config.model.n_inputs, config.model.n_classes
    family = family_of(config)
    if family.checkpoint_io is None:
        raise CheckpointMismatchError(f"the checkpoint stores no n_inputs/n_classes and model family {family.name!r} "
                                      "registers no checkpoint_io; set model.n_inputs and model.n_classes")
    try:
        return family.checkpoint_io(ckpt["model"])
    except ValueError as err:
        raise CheckpointMismatchError(f"checkpoint: {err}") from err


def plot_run(path: str | os.PathLike, device: str | None = None) -> list[Path]:
    """Regenerate the plots of a run folder from its metrics, best checkpoint and test set."""
    run_dir, ckpt_path, ckpt, cfg = _load_run(path, device)
    data = build_datasets(cfg.data, test=True)
    model = build_model(cfg, data.n_inputs, data.n_classes)
    check_model_state(model, ckpt["model"], source=f"checkpoint {ckpt_path}")
    model.load_state_dict(ckpt["model"])
    trainer = Trainer(model, None, data.train, data.valid, data.test, config=cfg, run_dir=None, progress=False,
                      device=resolve_device(cfg.training.device))
    metrics = run_dir / "metrics.csv"
    if metrics.is_file():
        import csv

        with open(metrics, newline="") as f:
            trainer.history = [dict(r) for r in csv.DictReader(f)]
        best = trainer.history[-1].get("best_epoch") if trainer.history else None
        trainer.best_epoch = int(float(best)) if best not in (None, "") else None
    test = trainer.evaluate(data.test, "test", record_sample=True)
    paths = _make_plots(trainer, run_dir, test, cfg)
    trainer.close()
    return paths
