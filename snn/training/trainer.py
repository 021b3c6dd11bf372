"""The training loop: epochs, train/valid/test, metrics, best-model selection, checkpoints — and nothing model-specific.

``Trainer(model, rule, train_data, valid_data, test_data, config=cfg, run_dir=...)`` with datasets whose items
are ``(x [T, C], label)``; batches are padded and time-major (``x [T, B, C]``, ``labels [B]``, ``lengths [B]``).

Per epoch ``e`` (0-based): callbacks' ``on_epoch_start``, one pass over the training set (the rule writes
gradients; the Trainer clips and steps one optimiser per parameter group, then callbacks'
``on_after_optimizer_step``), the epoch schedulers, evaluation on the validation set inside the model's
``evaluation()`` form, best-model selection on validation (``best.pt``; the test set is never used for selection),
callbacks' ``on_epoch_end`` (schedules, early stopping, energy, console line, ``metrics.csv``/TensorBoard) and
``last.pt``. The model's own needs come through the protocol of :mod:`snn.models.protocol`: parameter groups with
their optimiser settings, its callbacks (e.g. the delay network's σ schedule), its evaluation form, scores and loss.

Determinism: seeds python, numpy and torch; the training order comes from a dedicated ``torch.Generator`` (and
``DistributedSampler(seed)`` under DDP); DataLoader workers are seeded from it. ``last.pt`` stores every RNG state,
every callback's state and the torch/numba thread counts (they set the order of some float sums; ``resume()``
restores them unless ``training.threads`` is set), so ``resume()`` + ``fit()`` ends with the same weights as an
uninterrupted run.
"""
from __future__ import annotations

import contextlib
import os
import random
import time
from pathlib import Path
from typing import Any

import numpy as np
import torch
from torch import nn
from torch.utils.data import DataLoader, Dataset, DistributedSampler, RandomSampler, SequentialSampler

from snn.callbacks import Callback
from snn.config import Config, config_to_dict, save_config
from snn.datasets import pad_collate
from snn.kernels.cpu_threads import restore_thread_counts, thread_counts
from snn.training import distributed as D
from snn.models.protocol import ParamGroup, normalise_groups
from snn.training.callbacks import configured_callbacks
from snn.training.checkpoint import (CheckpointMismatchError, capture_rng, check_config, check_model_state,
                                     load_checkpoint, restore_rng, resume_scheduler, save_atomic)
from snn.training.metrics import Accumulator, FiringRateMonitor
from snn.training.rules import Backprop, LearningRule, StepContext

__all__ = ["Trainer", "seed_everything", "resolve_device", "flush_denormals"]


def seed_everything(seed: int, deterministic: bool = True) -> None:
    """Seed python, numpy and torch (all devices); optionally ask torch for deterministic algorithms."""
    random.seed(seed)
    np.random.seed(seed % 2**32)
    torch.manual_seed(seed)
    if deterministic:
        torch.use_deterministic_algorithms(True, warn_only=True)
        if torch.backends.cudnn.is_available():
            torch.backends.cudnn.benchmark = False
        os.environ.setdefault("CUBLAS_WORKSPACE_CONFIG", ":4096:8")


def resolve_device(name: str) -> torch.device:
    """``"auto"`` → CUDA (this rank's local device under torchrun) when available, else CPU."""
    if name == "auto":
        if torch.cuda.is_available():
            return torch.device("cuda", int(os.environ.get("LOCAL_RANK", "0")))
        return torch.device("cpu")
    dev = torch.device(name)
    if dev.type == "cuda" and not torch.cuda.is_available():
        raise ValueError(f"training.device: {name!r} requested but CUDA is not available; use 'cpu' or 'auto'")
    return dev


def _denormals_flushed() -> bool:
    """True when this thread flushes denormal floats to zero (a float32 denormal times 1 comes out as 0)."""
    return float((torch.tensor([1e-39], dtype=torch.float32) * 1.0).item()) == 0.0


@contextlib.contextmanager
def flush_denormals(enabled: bool = True):
    """Flush denormal floats to zero on this thread (``torch.set_flush_denormal``) inside the block; restored after.

    Why: the Gaussian delay kernels hold taps ``exp(-(d/σ)²/2)`` that fall below float32's smallest normal number
    (1.2e-38) once σ has decayed (σ_eff ≈ 0.5 at a distance of 7 taps or more); x86 CPUs handle such denormals in
    microcode, which made the GEMMs of a training step 10–20× slower at the end of the σ schedule (measured: 28 ms
    → 730 ms per step on one thread). Flushing changes only values below 1.2e-38. It applies to the calling thread:
    with several torch threads the worker threads keep denormals (use ``training.threads: 1`` on small CPU runs).
    """
    if not enabled:
        yield
        return
    before = _denormals_flushed()
    supported = torch.set_flush_denormal(True)
    try:
        yield
    finally:
        if supported and not before:
            torch.set_flush_denormal(False)


def _seed_worker(worker_id: int) -> None:
    seed = torch.initial_seed() % 2**32
    np.random.seed(seed)
    random.seed(seed)


_OPTIMIZERS = {"adam": torch.optim.Adam, "adamw": torch.optim.AdamW, "adamax": torch.optim.Adamax,
               "sgd": lambda params, lr, weight_decay: torch.optim.SGD(params, lr=lr, momentum=0.9,
                                                                       weight_decay=weight_decay)}

#: format of the checkpoints this Trainer writes (2: one optimiser per named parameter group, callback states)
CHECKPOINT_FORMAT = 2


class Trainer:
    """Owns the training loop (see the module docstring).

    Args:
        model: the network (``forward(x [T, B, C])``; the optional protocol of :mod:`snn.models.protocol`).
        rule: the learning rule (default :class:`~snn.training.rules.Backprop`).
        train_data, valid_data, test_data: map-style datasets of ``(x [T, C], label)`` (valid/test optional).
        config: the run's :class:`snn.config.Config` (``training``, ``optim``, ``run`` sections are used).
        run_dir: folder for ``config.yaml``, ``metrics.csv``, checkpoints and TensorBoard logs (``None``: write nothing).
        device: overrides ``config.training.device``.
        progress: overrides ``config.run.progress``.
        callbacks: extra :class:`snn.callbacks.Callback` objects, run after the model's own and the configured ones
            (``None``: only those). With ``default_callbacks=False`` only the model's and these run.
        selection_split: the name under which ``valid_data`` is evaluated and logged every epoch (``"valid"``; the
            ``paper`` protocol passes the test set as ``valid_data`` with ``selection_split="test"`` so that its
            every-epoch test evaluations are labelled as what they are).
        metadata: plain data stored in every checkpoint (``snn.run`` stores the data's ``n_inputs``/``n_classes``
            so that ``snn eval`` and ``snn energy`` rebuild the model without reading the data first).
    """

    def __init__(
        self,
        model: nn.Module,
        rule: LearningRule | None = None,
        train_data: Dataset | None = None,
        valid_data: Dataset | None = None,
        test_data: Dataset | None = None,
        *,
        config: Config,
        run_dir: str | os.PathLike | None = None,
        device: str | torch.device | None = None,
        progress: bool | None = None,
        callbacks: list[Callback] | None = None,
        default_callbacks: bool = True,
        selection_split: str = "valid",
        metadata: dict[str, Any] | None = None,
    ) -> None:
        if not isinstance(config, Config):
            raise TypeError(f"config must be an snn.config.Config, got {type(config).__name__}")
        if train_data is None:
            raise ValueError("train_data is required")
        self.config = config
        self.tc, self.oc = config.training, config.optim
        self.dist = D.current()
        self.device = torch.device(device) if device is not None else resolve_device(self.tc.device)
        self.progress = config.run.progress if progress is None else bool(progress)
        self.run_dir = Path(run_dir) if run_dir is not None else None
        self.writes = self.run_dir is not None and self.dist.is_main
        self.metadata = dict(metadata or {})
        self.selection_split = str(selection_split)
        self.model = model.to(self.device)
        self.rule = rule if rule is not None else Backprop()
        self.rule.attach(self.model)
        if self.dist.enabled:
            ddp_kw = {"device_ids": [self.device.index]} if self.device.type == "cuda" else {}
            self.net: nn.Module = nn.parallel.DistributedDataParallel(self.model, **ddp_kw)
        else:
            self.net = self.model
        self.train_data, self.valid_data, self.test_data = train_data, valid_data, test_data

        self.generator = torch.Generator()
        self.generator.manual_seed(self.tc.seed)
        self.train_loader = self._train_loader(train_data)
        self.steps_per_epoch = len(self.train_loader)
        if self.tc.limit_train_batches is not None:
            self.steps_per_epoch = min(self.steps_per_epoch, self.tc.limit_train_batches)

        self.amp = bool(self.tc.amp and self.device.type == "cuda")
        self.amp_dtype = torch.bfloat16 if self.amp and torch.cuda.is_bf16_supported() else torch.float16
        self.scaler = torch.amp.GradScaler("cuda", enabled=self.amp and self.amp_dtype == torch.float16)
        self.group_settings: dict[str, dict[str, Any]] = {}
        self.optimizers, self.schedulers = self._build_optimizers()

        model_cbs = list(self.model.callbacks()) if hasattr(self.model, "callbacks") else []
        model_cbs += list(self.rule.callbacks()) if hasattr(self.rule, "callbacks") else []
        configured = configured_callbacks(config, self.run_dir if self.writes else None) if default_callbacks else []
        self.callbacks: list[Callback] = model_cbs + configured + list(callbacks or [])
        for cb in self.callbacks:
            if not isinstance(cb, Callback):
                raise TypeError(f"callbacks must be snn.callbacks.Callback instances, got {type(cb).__name__}")

        self.epoch = 0  # epochs finished
        self.history: list[dict[str, Any]] = []
        self.best_score: float | None = None
        self.best_epoch: int | None = None
        self.bad_epochs = 0
        self.should_stop = False
        self.monitor = FiringRateMonitor(self.model)

    # ------------------------------------------------------------------ setup
    def _train_loader(self, data: Dataset) -> DataLoader:
        bs = self.tc.batch_size
        if self.dist.enabled:
            if bs % self.dist.world_size:
                raise ValueError(
                    f"training.batch_size ({bs}) must be divisible by the number of processes ({self.dist.world_size})"
                )
            bs //= self.dist.world_size
            sampler = DistributedSampler(data, num_replicas=self.dist.world_size, rank=self.dist.rank,
                                         shuffle=self.tc.shuffle, seed=self.tc.seed)
        elif self.tc.shuffle:
            sampler = RandomSampler(data, generator=self.generator)
        else:
            sampler = SequentialSampler(data)
        return DataLoader(data, batch_size=bs, sampler=sampler, collate_fn=pad_collate,
                          num_workers=self.config.data.num_workers, worker_init_fn=_seed_worker,
                          generator=self.generator, persistent_workers=False)

    def eval_loader(self, data: Dataset) -> DataLoader:
        """Sequential padded batches of ``data`` (every rank evaluates the whole set)."""
        return DataLoader(data, batch_size=self.tc.eval_batch_size or self.tc.batch_size,
                          sampler=SequentialSampler(data), collate_fn=pad_collate,
                          num_workers=self.config.data.num_workers, worker_init_fn=_seed_worker)

    def resolve_group(self, name: str, group: ParamGroup) -> dict[str, Any]:
        """The settings of parameter group ``name``: ``optim.groups.<name>``, else the model's, else ``optim``'s."""
        run = self.oc.groups.get(name)
        out: dict[str, Any] = {}
        for key in ("optimizer", "lr", "weight_decay", "scheduler", "max_lr"):
            value = getattr(run, key, None) if run is not None else None
            if value is None:
                value = getattr(group, key)
            if value is None and key != "max_lr":
                value = getattr(self.oc, key)
            out[key] = value
        if out["max_lr"] is None:  # the one-cycle peak scales with the group's learning rate
            out["max_lr"] = self.oc.max_lr * (out["lr"] / self.oc.lr) if self.oc.lr > 0 else self.oc.max_lr
        return out

    def _build_optimizers(self):
        groups = normalise_groups(self.rule.parameter_groups(self.model))
        unknown = sorted(set(self.oc.groups) - set(groups))
        if unknown:
            raise ValueError(f"optim.groups: {', '.join(map(repr, unknown))} not among the model's parameter groups "
                             f"({', '.join(map(repr, groups)) or 'none'})")
        seen: dict[int, str] = {}
        for name, g in groups.items():
            for p in g.params:
                if id(p) in seen:
                    raise ValueError(f"parameter groups {seen[id(p)]!r} and {name!r} share a parameter")
                seen[id(p)] = name
        steps = self.tc.epochs if self.oc.scheduler_interval == "epoch" else self.tc.epochs * self.steps_per_epoch
        optimizers, schedulers = {}, {}
        for name, group in groups.items():
            if not group.params:
                continue
            cfg = self.resolve_group(name, group)
            self.group_settings[name] = cfg
            if cfg["optimizer"] not in _OPTIMIZERS:
                raise ValueError(f"parameter group {name!r}: optimizer must be one of {sorted(_OPTIMIZERS)}, "
                                 f"got {cfg['optimizer']!r}")
            optimizers[name] = _OPTIMIZERS[cfg["optimizer"]](group.params, lr=cfg["lr"], weight_decay=cfg["weight_decay"])
            schedulers[name] = self._scheduler(optimizers[name], cfg["scheduler"], cfg["max_lr"], steps)
        if not optimizers:
            raise ValueError("the model has no trainable parameters")
        return optimizers, {k: v for k, v in schedulers.items() if v is not None}

    @staticmethod
    def _scheduler(opt, kind: str, max_lr: float, steps: int):
        if kind == "one_cycle":
            return torch.optim.lr_scheduler.OneCycleLR(opt, max_lr=max_lr, total_steps=max(steps, 1))
        if kind == "cosine":
            return torch.optim.lr_scheduler.CosineAnnealingLR(opt, T_max=max(steps, 1))
        if kind in ("none", None):
            return None
        raise ValueError(f"scheduler must be 'one_cycle', 'cosine' or 'none', got {kind!r}")

    def _autocast(self):
        if self.amp:
            return torch.autocast(device_type="cuda", dtype=self.amp_dtype)
        return contextlib.nullcontext()

    def _ctx(self) -> StepContext:
        return StepContext(autocast=self._autocast, backward=lambda loss: self.scaler.scale(loss).backward(),
                           scale=self.scaler.scale)

    def _to_device(self, batch):
        x, y, lengths = batch
        nb = self.device.type == "cuda"
        return x.to(self.device, non_blocking=nb), y.to(self.device, non_blocking=nb), lengths.to(self.device)

    def _call(self, hook: str, *args: Any) -> None:
        for cb in self.callbacks:
            getattr(cb, hook)(self, *args)

    # ------------------------------------------------------------------ loop
    def train_epoch(self, epoch: int) -> dict[str, float]:
        """One pass over the training data; returns ``train_loss``, ``train_acc``, ``train_rate`` and timing."""
        self._call("on_epoch_start", epoch)
        if isinstance(self.train_loader.sampler, DistributedSampler):
            self.train_loader.sampler.set_epoch(epoch)
        self.net.train()
        self.monitor.reset()
        acc = Accumulator()
        synops_sum, synops_n = 0.0, 0
        ctx = self._ctx()
        params = [p for opt in self.optimizers.values() for g in opt.param_groups for p in g["params"]]
        bar = self._bar(total=self.steps_per_epoch, desc=f"epoch {epoch + 1}/{self.tc.epochs}")
        t0 = time.perf_counter()
        for i, batch in enumerate(self.train_loader):
            if i >= self.steps_per_epoch:
                break
            batch = self._to_device(batch)
            for opt in self.optimizers.values():
                opt.zero_grad(set_to_none=True)
            out = self.rule.training_step(self.net, batch, ctx)
            if self.oc.grad_clip is not None:
                for opt in self.optimizers.values():
                    self.scaler.unscale_(opt)
                torch.nn.utils.clip_grad_norm_(params, self.oc.grad_clip)
            for opt in self.optimizers.values():
                self.scaler.step(opt)
            self.scaler.update()
            self._call("on_after_optimizer_step")
            if self.oc.scheduler_interval == "batch":
                for s in self.schedulers.values():
                    s.step()
            acc.update(out["loss"], out["scores"], batch[1])
            if "synops" in out:
                synops_sum += float(out["synops"]) * int(batch[1].shape[0])
                synops_n += int(batch[1].shape[0])
            if bar is not None:
                bar.update(1)
                bar.set_postfix(loss=f"{acc.loss:.3f}", acc=f"{acc.accuracy:.3f}", rate=f"{self.monitor.last_rate():.3f}")
        if bar is not None:
            bar.close()
        if self.oc.scheduler_interval == "epoch":
            for s in self.schedulers.values():
                s.step()
        loss_sum, correct, n = D.all_reduce_sum([acc.loss_sum, float(acc.correct), float(acc.n)], self._reduce_device())
        rates = self.monitor.rates()
        row = {"train_loss": loss_sum / max(n, 1), "train_acc": correct / max(n, 1),
               "train_time_s": time.perf_counter() - t0}
        row.update({f"train_rate/{k}": v for k, v in rates.items()})
        if synops_n:
            s_sum, s_n = D.all_reduce_sum([synops_sum, float(synops_n)], self._reduce_device())
            row["train_synops"] = s_sum / max(s_n, 1)
        return row

    def _reduce_device(self):
        return self.device if self.device.type == "cuda" else "cpu"

    def _bar(self, total: int, desc: str):
        if not self.progress or not self.dist.is_main:
            return None
        from tqdm.auto import tqdm

        return tqdm(total=total, desc=desc, leave=False, dynamic_ncols=True)

    @torch.no_grad()
    def evaluate(self, data: Dataset | DataLoader, prefix: str = "valid", record_sample: bool = False) -> dict[str, Any]:
        """Loss, accuracy and firing rate per spiking layer on ``data`` (model in eval mode, inside its
        ``evaluation()`` context), plus what callbacks add (e.g. energy). With ``record_sample`` the spikes of the
        first sample are returned under ``"sample"`` (``{layer: [T, N]}``) for rasters, with its label and predicted
        class under ``"sample_label"`` and ``"sample_prediction"``."""
        loader = data if isinstance(data, DataLoader) else self.eval_loader(data)
        self.model.eval()
        monitor = FiringRateMonitor(self.model, record_sample=record_sample)
        acc = Accumulator()
        ctx = self._ctx()
        evaluation = self.model.evaluation() if hasattr(self.model, "evaluation") else contextlib.nullcontext()
        row: dict[str, Any] | None = None
        first: tuple[int, int] | None = None
        started: list[Callback] = []
        try:
            with evaluation:
                for cb in self.callbacks:
                    cb.on_evaluate_start(self, prefix)
                    started.append(cb)
                for batch in loader:
                    batch = self._to_device(batch)
                    self._call("on_evaluate_batch_start", batch)
                    out = self.rule.evaluation_step(self.model, batch, ctx)
                    self._call("on_evaluate_batch_end", batch, out)
                    acc.update(out["loss"], out["scores"], batch[1])
                    if record_sample and first is None:
                        first = (int(batch[1][0]), int(out["scores"][0].argmax()))
                row = {f"{prefix}_loss": acc.loss, f"{prefix}_acc": acc.accuracy}
                row.update({f"{prefix}_rate/{k}": v for k, v in monitor.rates().items()})
        finally:
            monitor.remove()
            for cb in started:
                cb.on_evaluate_end(self, prefix, row)
        if record_sample:
            row["sample"] = monitor.sample
            if first is not None:
                row["sample_label"], row["sample_prediction"] = first
        return row

    def _score(self, row: dict[str, Any]) -> float:
        split = self.selection_split
        return row[f"{split}_acc"] if self.tc.select_metric == "valid_acc" else -row[f"{split}_loss"]

    def log_message(self, msg: str) -> None:
        """Print a line on the main process without breaking the progress bar."""
        if not self.dist.is_main:
            return
        if self.progress:
            from tqdm.auto import tqdm

            tqdm.write(msg)
        else:
            print(msg, flush=True)

    def fit(self, until: int | None = None) -> list[dict[str, Any]]:
        """Train from the current epoch to ``training.epochs`` (or stop after epoch ``until``, 1-based, as an
        interrupted run would); returns the metrics history."""
        if self.writes:
            self.run_dir.mkdir(parents=True, exist_ok=True)
            save_config(self.config, self.run_dir / "config.yaml")
        last = self.tc.epochs if until is None else min(until, self.tc.epochs)
        self._call("on_fit_start")
        with flush_denormals(self.device.type == "cpu"):
            self._fit_epochs(last)
        self._call("on_fit_end")
        return self.history

    def _fit_epochs(self, last: int) -> None:
        while self.epoch < last and not self.should_stop:
            e = self.epoch
            row: dict[str, Any] = {"epoch": e + 1}
            row.update(self.train_epoch(e))
            for name, opt in self.optimizers.items():
                row[f"lr/{name}"] = opt.param_groups[0]["lr"]
            if self.valid_data is not None:
                row.update(self.evaluate(self.valid_data, self.selection_split))
                score = self._score(row)
                improved = self.best_score is None or score > self.best_score
            else:
                improved, score = True, float(e)  # no validation set: the latest model is "best"
            self.epoch = e + 1
            if improved:
                self.best_score, self.best_epoch, self.bad_epochs = score, e + 1, 0
                if self.writes:
                    save_atomic({"model": self.model.state_dict(), "epoch": e + 1, "metrics": row,
                                 "config": config_to_dict(self.config), "model_class": type(self.model).__name__,
                                 "metadata": self.metadata, "format": CHECKPOINT_FORMAT},
                                self.run_dir / "best.pt")
            else:
                self.bad_epochs += 1
            row["best_epoch"] = self.best_epoch
            self._call("on_epoch_end", e, row)
            self.history.append(row)
            if self.writes:
                self.save_checkpoint(self.run_dir / "last.pt", stopped=self.should_stop)

    # ------------------------------------------------------------------ checkpoints
    def state(self, stopped: bool = False) -> dict[str, Any]:
        return {
            "format": CHECKPOINT_FORMAT,
            "model": self.model.state_dict(),
            "model_class": type(self.model).__name__,
            "metadata": self.metadata,
            "optimizers": {k: o.state_dict() for k, o in self.optimizers.items()},
            "schedulers": {k: s.state_dict() for k, s in self.schedulers.items()},
            "scaler": self.scaler.state_dict(),
            "callbacks": [cb.state_dict() for cb in self.callbacks],
            "rng": capture_rng(self.generator),
            "threads": thread_counts(),
            "epoch": self.epoch,
            "history": self.history,
            "best": {"score": self.best_score, "epoch": self.best_epoch, "bad_epochs": self.bad_epochs},
            "stopped": stopped,
            "config": config_to_dict(self.config),
        }

    def save_checkpoint(self, path: str | os.PathLike, stopped: bool = False) -> None:
        """Write the full training state atomically."""
        save_atomic(self.state(stopped), path)

    def resume(self, path: str | os.PathLike, *, extend_epochs: bool = False) -> list[str]:
        """Continue from a ``last.pt``: checks model and config, restores every state (see the module docstring).

        ``extend_epochs``: accept a larger ``training.epochs`` than the checkpoint's (the schedules continue as if the
        longer run had been configured, :func:`snn.training.checkpoint.resume_scheduler`; an early-stopped run stays
        finished). Returns the config differences accepted because they do not change the result."""
        ckpt = load_checkpoint(path, map_location=self.device)
        if ckpt.get("format", 1) < CHECKPOINT_FORMAT:
            raise CheckpointMismatchError(
                f"checkpoint {path} was written by snn 0.1 (one optimiser for weights and norm); its training state "
                "cannot be resumed by this version. Its weights still load: `snn eval`/`snn energy` work on it, and "
                "a new run can start from them with snn.training.load_run(...)")
        accepted = check_config(ckpt.get("config"), config_to_dict(self.config), source=f"checkpoint {path}",
                                extend_epochs=extend_epochs)
        check_model_state(self.model, ckpt["model"], source=f"checkpoint {path}")
        if sorted(ckpt["optimizers"]) != sorted(self.optimizers):
            raise CheckpointMismatchError(f"checkpoint {path}: parameter groups {sorted(ckpt['optimizers'])}, "
                                          f"this run has {sorted(self.optimizers)}")
        self.model.load_state_dict(ckpt["model"])
        for k, o in self.optimizers.items():
            o.load_state_dict(ckpt["optimizers"][k])
        for k, s in self.schedulers.items():
            resume_scheduler(s, ckpt["schedulers"][k])
        self.scaler.load_state_dict(ckpt["scaler"])
        states = ckpt.get("callbacks", [])
        if len(states) != len(self.callbacks):
            raise CheckpointMismatchError(f"checkpoint {path} holds {len(states)} callback states, this run has "
                                          f"{len(self.callbacks)} callbacks ({', '.join(type(c).__name__ for c in self.callbacks)})")
        for cb, st in zip(self.callbacks, states):
            cb.load_state_dict(st)
        self.epoch = int(ckpt["epoch"])
        self.history = list(ckpt["history"])
        best = ckpt["best"]
        self.best_score, self.best_epoch, self.bad_epochs = best["score"], best["epoch"], best["bad_epochs"]
        restore_rng(ckpt["rng"], self.generator)
        if self.tc.threads is None and ckpt.get("threads") is not None:
            restored = restore_thread_counts(ckpt["threads"])
            if restored is not None:
                self.log_message(f"thread counts set to the checkpoint's (torch {restored['torch']}, numba "
                                 f"{restored['numba']}) for a bit-exact continuation; training.threads sets others")
        if ckpt.get("stopped"):
            self.epoch = max(self.epoch, self.tc.epochs)  # early-stopped runs are finished
        return accepted

    def load_best(self) -> bool:
        """Load ``best.pt`` from the run folder into the model (False when there is none)."""
        if self.run_dir is None or not (self.run_dir / "best.pt").is_file():
            return False
        ckpt = load_checkpoint(self.run_dir / "best.pt", map_location=self.device)
        check_model_state(self.model, ckpt["model"], source="best.pt")
        self.model.load_state_dict(ckpt["model"])
        return True

    def test(self, use_best: bool = True, record_sample: bool = False) -> dict[str, Any]:
        """Evaluate on the test set (the best validation model when ``use_best``)."""
        if self.test_data is None:
            raise ValueError("no test_data was given to the Trainer")
        if use_best:
            if self.dist.enabled:
                D.barrier()
            self.load_best()
        return self.evaluate(self.test_data, "test", record_sample=record_sample)

    def close(self) -> None:
        self.monitor.remove()
        self.rule.detach()
        for cb in self.callbacks:
            close = getattr(cb, "close", None)
            if callable(close):
                close()
