"""The training loop: epochs, train/valid/test, metrics, best-model selection, early stopping, checkpoints.

``Trainer(model, rule, train_data, valid_data, test_data, config=cfg, run_dir=...)`` with datasets whose items
are ``(x [T, C], label)``; batches are padded and time-major (``x [T, B, C]``, ``labels [B]``, ``lengths [B]``).

Per epoch ``e`` (0-based): the model's ``set_epoch(e, epochs, fraction)`` hook (the delay-width schedule), one pass
over the training set (the rule writes gradients; the Trainer clips and steps the optimisers, then calls the model's
``after_optimizer_step()`` hook), the epoch schedulers, evaluation on the validation set inside the model's
``evaluation()`` context (integer delays), best-model selection on validation (``best.pt``; the test set is never
used for selection), early stopping, the metrics row (``metrics.csv``, TensorBoard) and ``last.pt``.

Energy: with ``run.log_energy`` every evaluation pass also counts operations (:class:`snn.energy.OperationCounter`
hooks on that same pass, integer delays as evaluated) and logs ``<split>_synops`` (synaptic operations per sample)
and ``<split>_energy_nj`` (energy per sample under ``run.energy_profile``); with ``training.synops_penalty > 0``
the rule's training-forward estimate is logged as ``train_synops`` (Gaussian-kernel fan-out while delays train).

Determinism: seeds python, numpy and torch; the training order comes from a dedicated ``torch.Generator`` (and
``DistributedSampler(seed)`` under DDP); DataLoader workers are seeded from it. ``last.pt`` stores every RNG state,
so ``resume()`` + ``fit()`` ends with the same weights as an uninterrupted run.
"""
from __future__ import annotations

import contextlib
import csv
import io
import math
import os
import random
import time
from pathlib import Path
from typing import Any

import numpy as np
import torch
from torch import nn
from torch.utils.data import DataLoader, Dataset, DistributedSampler, RandomSampler, SequentialSampler

from snn.atomic import write_atomic
from snn.config import Config, config_to_dict, save_config
from snn.datasets import pad_collate
from snn.training import distributed as D
from snn.training.checkpoint import (capture_rng, check_config, check_model_state, load_checkpoint, restore_rng,
                                     save_atomic)
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


class Trainer:
    """Owns the training loop (see the module docstring).

    Args:
        model: the network (``forward(x [T, B, C])``; optional hooks ``set_epoch``, ``after_optimizer_step``,
            ``evaluation``, ``loss``, ``scores``, ``parameter_groups``).
        rule: the learning rule (default :class:`~snn.training.rules.Backprop`).
        train_data, valid_data, test_data: map-style datasets of ``(x [T, C], label)`` (valid/test optional).
        config: the run's :class:`snn.config.Config` (``training``, ``optim``, ``run`` sections are used).
        run_dir: folder for ``config.yaml``, ``metrics.csv``, checkpoints and TensorBoard logs (``None``: write nothing).
        device: overrides ``config.training.device``.
        progress: overrides ``config.run.progress``.
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
        self.optimizers, self.schedulers = self._build_optimizers()

        self.epoch = 0  # epochs finished
        self.history: list[dict[str, Any]] = []
        self.best_score: float | None = None
        self.best_epoch: int | None = None
        self.bad_epochs = 0
        self.monitor = FiringRateMonitor(self.model)
        self._tb = None

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

    def _build_optimizers(self):
        groups = self.rule.parameter_groups(self.model)
        known = {"weights", "norm", "positions"}
        unknown = set(groups) - known
        if unknown:
            raise ValueError(f"parameter groups must be among {sorted(known)}, got {sorted(unknown)}")
        optimizers, schedulers = {}, {}
        wgroups = []
        if groups.get("weights"):
            wgroups.append({"params": groups["weights"], "weight_decay": self.oc.weight_decay})
        if groups.get("norm"):
            wgroups.append({"params": groups["norm"], "weight_decay": 0.0})
        steps = self.tc.epochs if self.oc.scheduler_interval == "epoch" else self.tc.epochs * self.steps_per_epoch
        if wgroups:
            optimizers["weights"] = torch.optim.Adam(wgroups, lr=self.oc.lr)
            schedulers["weights"] = self._scheduler(optimizers["weights"], self.oc.scheduler, self.oc.max_lr, steps)
        if groups.get("positions"):
            optimizers["positions"] = torch.optim.Adam(groups["positions"], lr=self.oc.positions_lr, weight_decay=0.0)
            schedulers["positions"] = self._scheduler(optimizers["positions"], self.oc.positions_scheduler,
                                                      5 * self.oc.positions_lr, steps)
        if not optimizers:
            raise ValueError("the model has no trainable parameters")
        return optimizers, {k: v for k, v in schedulers.items() if v is not None}

    @staticmethod
    def _scheduler(opt, kind: str, max_lr: float, steps: int):
        if kind == "one_cycle":
            return torch.optim.lr_scheduler.OneCycleLR(opt, max_lr=max_lr, total_steps=max(steps, 1))
        if kind == "cosine":
            return torch.optim.lr_scheduler.CosineAnnealingLR(opt, T_max=max(steps, 1))
        return None

    def _autocast(self):
        if self.amp:
            return torch.autocast(device_type="cuda", dtype=self.amp_dtype)
        return contextlib.nullcontext()

    def _ctx(self) -> StepContext:
        return StepContext(autocast=self._autocast, backward=lambda loss: self.scaler.scale(loss).backward())

    def _to_device(self, batch):
        x, y, lengths = batch
        nb = self.device.type == "cuda"
        return x.to(self.device, non_blocking=nb), y.to(self.device, non_blocking=nb), lengths.to(self.device)

    # ------------------------------------------------------------------ loop
    def train_epoch(self, epoch: int) -> dict[str, float]:
        """One pass over the training data; returns ``train_loss``, ``train_acc``, ``train_rate`` and timing."""
        if hasattr(self.model, "set_epoch"):
            self.model.set_epoch(epoch, self.tc.epochs, self.tc.sigma_decay_fraction)
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
            if hasattr(self.model, "after_optimizer_step"):
                self.model.after_optimizer_step()
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
        ``evaluation()`` context). With ``record_sample`` the spikes of the first sample are returned under
        ``"sample"`` (``{layer: [T, N]}``) for rasters."""
        loader = data if isinstance(data, DataLoader) else self.eval_loader(data)
        self.model.eval()
        monitor = FiringRateMonitor(self.model, record_sample=record_sample)
        counter = self._energy_counter()
        acc = Accumulator()
        ctx = self._ctx()
        evaluation = self.model.evaluation() if hasattr(self.model, "evaluation") else contextlib.nullcontext()
        try:
            with evaluation, (counter if counter is not None else contextlib.nullcontext()):
                for batch in loader:
                    batch = self._to_device(batch)
                    if counter is not None:
                        counter.begin(batch[0].shape[0], batch[0].shape[1])
                    out = self.rule.evaluation_step(self.model, batch, ctx)
                    if counter is not None:
                        counter.end()
                    acc.update(out["loss"], out["scores"], batch[1])
        finally:
            monitor.remove()
        row: dict[str, Any] = {f"{prefix}_loss": acc.loss, f"{prefix}_acc": acc.accuracy}
        row.update({f"{prefix}_rate/{k}": v for k, v in monitor.rates().items()})
        if counter is not None and counter.samples:
            from snn.energy import build_report

            report = build_report(counter, self._energy_profile, ann_equivalent=False)
            row[f"{prefix}_synops"] = report.synops
            row[f"{prefix}_energy_nj"] = report.total_pj * 1e-3
        if record_sample:
            row["sample"] = monitor.sample
        return row

    def _energy_counter(self):
        """An :class:`snn.energy.OperationCounter` for the evaluation pass when ``run.log_energy`` (else None)."""
        if not self.config.run.log_energy:
            return None
        from snn.energy import OperationCounter, load_profile

        if getattr(self, "_energy_profile", None) is None:
            self._energy_profile = load_profile(self.config.run.energy_profile)
        return OperationCounter(self.model)

    def _score(self, row: dict[str, Any]) -> float:
        return row["valid_acc"] if self.tc.select_metric == "valid_acc" else -row["valid_loss"]

    def fit(self, until: int | None = None) -> list[dict[str, Any]]:
        """Train from the current epoch to ``training.epochs`` (or stop after epoch ``until``, 1-based, as an
        interrupted run would); returns the metrics history."""
        if self.writes:
            self.run_dir.mkdir(parents=True, exist_ok=True)
            save_config(self.config, self.run_dir / "config.yaml")
        last = self.tc.epochs if until is None else min(until, self.tc.epochs)
        with flush_denormals(self.device.type == "cpu"):
            self._fit_epochs(last)
        if self._tb is not None:
            self._tb.flush()
        return self.history

    def _fit_epochs(self, last: int) -> None:
        while self.epoch < last:
            e = self.epoch
            row: dict[str, Any] = {"epoch": e + 1}
            row.update(self.train_epoch(e))
            for name, opt in self.optimizers.items():
                row[f"lr/{name}"] = opt.param_groups[0]["lr"]
            if hasattr(self.model, "synapses") and hasattr(self.model.synapses[0], "sigma"):
                row["sigma"] = float(self.model.synapses[0].sigma)
            if self.valid_data is not None:
                row.update(self.evaluate(self.valid_data, "valid"))
                score = self._score(row)
                improved = self.best_score is None or score > self.best_score
            else:
                improved, score = True, float(e)  # no validation set: the latest model is "best"
            self.epoch = e + 1
            if improved:
                self.best_score, self.best_epoch, self.bad_epochs = score, e + 1, 0
                if self.writes:
                    save_atomic({"model": self.model.state_dict(), "epoch": e + 1, "metrics": row,
                                 "config": config_to_dict(self.config), "model_class": type(self.model).__name__},
                                self.run_dir / "best.pt")
            else:
                self.bad_epochs += 1
            row["best_epoch"] = self.best_epoch
            self.history.append(row)
            self._log(row)
            stop = (self.tc.early_stopping_patience is not None and self.bad_epochs >= self.tc.early_stopping_patience)
            if self.writes:
                self.save_checkpoint(self.run_dir / "last.pt", stopped=stop)
            if stop:
                if self.dist.is_main:
                    self._print(f"early stopping: no better {self.tc.select_metric} for {self.bad_epochs} epochs")
                break

    def _print(self, msg: str) -> None:
        if self.progress:
            from tqdm.auto import tqdm

            tqdm.write(msg)
        else:
            print(msg, flush=True)

    def _log(self, row: dict[str, Any]) -> None:
        if not self.dist.is_main:
            return
        parts = [f"epoch {row['epoch']}/{self.tc.epochs}", f"train loss {row['train_loss']:.4f} acc {row['train_acc']:.3f}"]
        if "valid_acc" in row:
            parts.append(f"valid loss {row['valid_loss']:.4f} acc {row['valid_acc']:.3f}")
        rates = [v for k, v in row.items() if k.startswith("train_rate/")]
        if rates:
            parts.append(f"rate {sum(rates) / len(rates):.3f}")
        if "valid_synops" in row:
            parts.append(f"{row['valid_synops'] / 1e3:.1f}k synops {row['valid_energy_nj']:.1f} nJ/sample")
        parts.append(f"{row['train_time_s']:.1f}s")
        self._print(" | ".join(parts))
        if not self.writes:
            return
        _write_csv_atomic(self.run_dir / "metrics.csv", self.history)
        if self.config.run.tensorboard:
            if self._tb is None:
                try:
                    from torch.utils.tensorboard import SummaryWriter
                except ImportError:
                    self.config.run.tensorboard = False
                    return
                self._tb = SummaryWriter(log_dir=str(self.run_dir / "tensorboard"))
            for k, v in row.items():
                if isinstance(v, (int, float)) and k != "epoch" and v is not None and math.isfinite(v):
                    self._tb.add_scalar(k, v, row["epoch"])

    # ------------------------------------------------------------------ checkpoints
    def state(self, stopped: bool = False) -> dict[str, Any]:
        return {
            "model": self.model.state_dict(),
            "model_class": type(self.model).__name__,
            "optimizers": {k: o.state_dict() for k, o in self.optimizers.items()},
            "schedulers": {k: s.state_dict() for k, s in self.schedulers.items()},
            "scaler": self.scaler.state_dict(),
            "rng": capture_rng(self.generator),
            "epoch": self.epoch,
            "history": self.history,
            "best": {"score": self.best_score, "epoch": self.best_epoch, "bad_epochs": self.bad_epochs},
            "stopped": stopped,
            "config": config_to_dict(self.config),
        }

    def save_checkpoint(self, path: str | os.PathLike, stopped: bool = False) -> None:
        """Write the full training state atomically."""
        save_atomic(self.state(stopped), path)

    def resume(self, path: str | os.PathLike) -> None:
        """Continue from a ``last.pt``: checks model and config, restores every state (see the module docstring)."""
        ckpt = load_checkpoint(path, map_location=self.device)
        check_config(ckpt.get("config"), config_to_dict(self.config), source=f"checkpoint {path}")
        check_model_state(self.model, ckpt["model"], source=f"checkpoint {path}")
        self.model.load_state_dict(ckpt["model"])
        for k, o in self.optimizers.items():
            o.load_state_dict(ckpt["optimizers"][k])
        for k, s in self.schedulers.items():
            s.load_state_dict(ckpt["schedulers"][k])
        self.scaler.load_state_dict(ckpt["scaler"])
        self.epoch = int(ckpt["epoch"])
        self.history = list(ckpt["history"])
        best = ckpt["best"]
        self.best_score, self.best_epoch, self.bad_epochs = best["score"], best["epoch"], best["bad_epochs"]
        restore_rng(ckpt["rng"], self.generator)
        if ckpt.get("stopped"):
            self.epoch = max(self.epoch, self.tc.epochs)  # early-stopped runs are finished

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
        if self._tb is not None:
            self._tb.close()
            self._tb = None
