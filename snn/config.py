"""Run configurations: plain YAML files mapped onto nested dataclasses, checked before any work.

A config file has up to five sections, each a dataclass below::

    data:     DataConfig      which dataset, binning (dt_ms, pool), held-out split, loader workers
    model:    ModelConfig     ``name`` picks the model family (snn.models.registry); the other keys are that
                              family's config dataclass (e.g. snn.models.delaynet.DelayNetConfig)
    training: TrainingConfig  epochs, batch size, learning rule, early stopping, seed, device
    optim:    OptimConfig     optimiser and schedule defaults, per parameter group overrides, gradient clipping
    run:      RunConfig       run name and folder, logging, plots, energy report

Missing keys take the defaults below. Unknown keys and values of the wrong type raise :class:`ConfigError`
naming the key path (``model.hidden``), the expected type or the allowed values, and the received value.
Overrides use the same dotted paths: ``load_config("a.yaml", overrides=["model.hidden=512"])``; the value
is parsed as YAML (``512`` → int, ``null`` → None, ``[1, 2]`` → list) and then checked like the file's.
"""
from __future__ import annotations

import copy
import dataclasses
import difflib
import io
import math
import os
import types
import typing
import warnings
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Literal, Union

import yaml

from snn.atomic import write_atomic
from snn.models.registry import ModelConfig
from snn.rules.registry import RuleConfig

__all__ = [
    "ConfigError", "DataConfig", "ModelConfig", "TrainingConfig", "GroupConfig", "OptimConfig", "RunConfig", "Config",
    "load_config", "config_from_dict", "config_to_dict", "apply_overrides", "save_config", "config_diff",
    "migrate_legacy", "LEGACY_KEYS",
]


class ConfigError(ValueError):
    """A config file or override is invalid (unknown key, wrong type, value not allowed)."""


class _UniqueKeyLoader(yaml.SafeLoader):
    """``yaml.SafeLoader`` that refuses a key given twice in one mapping (plain YAML keeps the last silently)."""

    def construct_mapping(self, node: yaml.MappingNode, deep: bool = False) -> dict:
        seen: dict[Any, int] = {}
        for key_node, _ in node.value:
            key = self.construct_object(key_node, deep=True)
            line = key_node.start_mark.line + 1
            if key in seen:
                raise ConfigError(f"key {key!r} appears twice in one section (lines {seen[key]} and {line}); "
                                  f"the first would be silently dropped: merge them")
            seen[key] = line
        return super().construct_mapping(node, deep)


@dataclass
class AugmentConfig:
    """Augmentations of the training split of the SHD-layout sets (:mod:`snn.datasets.augment`), drawn afresh for
    every item and epoch on the binned (pooled) frames; validation and test data are never augmented. ``0``: off.

    Attributes:
        channel_shift: all channels move together by ``s ∈ {-k..k}`` pooled channels (a frequency shift).
        time_jitter: each channel moves in time by its own ``s_c ∈ {-k..k}`` steps.
        time_masks, time_mask_width: spans of ``1..width`` steps set to zero, per item.
        channel_masks, channel_mask_width: bands of ``1..width`` pooled channels set to zero, per item.
    """

    channel_shift: int = 0
    time_jitter: int = 0
    time_masks: int = 0
    time_mask_width: int = 5
    channel_masks: int = 0
    channel_mask_width: int = 5


@dataclass
class DataConfig:
    """Dataset and preprocessing.

    Attributes:
        dataset: ``"spoken_digits"`` (embedded), ``"shd"``, ``"ssc"``; image sets for the spike-driven
            transformers: ``"digits8x8"`` (scikit-learn's bundled digits), ``"dvs_gesture"`` (T=16 frames),
            ``"cifar10_dvs"`` (T=10 frames pooled to 64×64), both read through tonic from ``root``;
            ``"digits8x8_spikes"``: the same digits as flat regular spike trains ``[16, 64]`` on the fixed
            1,437/360 split of the local-rule comparison (:mod:`snn.datasets.digits8x8_spikes`);
            SHD-Adding (two samples in sequence, the target is the sum of their digits, 19 classes;
            :class:`snn.datasets.shd_adding.SHDAdding`) built from each split of ``"spoken_digits_adding"`` (the
            embedded set) or ``"shd_adding"`` (``root``): held-out speakers stay held out.
        root: folder with the HDF5 files (``None``: the package's data folder for spoken_digits;
            required for shd/ssc).
        dt_ms: time bin, ms.
        n_channels: channels in the source files (700 for the Heidelberg layout).
        pool: channels summed per input (5: 700 → 140, the DCLS recipe).
        max_duration_ms: crop samples to this duration (``None``: keep all).
        train_split: ``"train"`` (train part of a held-out split; valid = the rest) or ``"full_train"``
            (whole training file, SHD/spoken_digits only; the validation set then overlaps it — only for
            reproducing published numbers).
        valid_fraction: share of the training file held out for validation (SHD/spoken_digits).
        valid_by: ``"speaker"`` (whole speakers held out) or ``"fraction"`` (class-stratified).
        split_seed: seed of the held-out split.
        cache_dir: folder of binned-frame caches (``None``: the library default).
        num_workers: DataLoader worker processes.
        adding_factor: pairs per split of the ``*_adding`` sets, as a multiple of the base split's size
            (fixed pairs drawn once from ``split_seed``; each split draws its own).
        adding_redraw: the training split of the ``*_adding`` sets draws a fresh pair at every access (the
            reference's per-batch draws) instead of a fixed list; validation and test pairs stay fixed.
        augment: augmentations of the training split (:class:`AugmentConfig`; all off by default).
        binning: ``"fixed"`` (bins of ``dt_ms`` from t = 0, keeps silences and onsets) or ``"event_anchored"``
            (SpikingJelly's SHD frames as the DCLS reference used them: each frame starts at the next event and
            takes the events within ``dt_ms`` of it, so silences are dropped; see :mod:`snn.datasets.binning`).
        label_channels: silent input channels prepended to every sample (``0``: none): the slots into which
            spiking forward-forward writes the label (``training.rule.name: forward_forward``).
    """

    dataset: Literal["spoken_digits", "shd", "ssc", "digits8x8", "dvs_gesture", "cifar10_dvs", "spoken_digits_adding",
                     "shd_adding", "digits8x8_spikes"] = "spoken_digits"
    root: str | None = None
    dt_ms: float = 10.0
    n_channels: int = 700
    pool: int = 5
    max_duration_ms: float | None = None
    train_split: Literal["train", "full_train"] = "train"
    valid_fraction: float = 0.1
    valid_by: Literal["speaker", "fraction"] = "speaker"
    split_seed: int = 0
    cache_dir: str | None = None
    num_workers: int = 0
    binning: Literal["fixed", "event_anchored"] = "fixed"
    adding_factor: int = 1
    adding_redraw: bool = False
    augment: AugmentConfig = field(default_factory=AugmentConfig)
    label_channels: int = 0


@dataclass
class TrainingConfig:
    """The training loop.

    Attributes:
        epochs: training epochs.
        batch_size: samples per optimiser step (global: split across DDP ranks).
        eval_batch_size: batch size for valid/test (``None``: ``batch_size``).
        shuffle: reshuffle the training set every epoch (``False``: file order, e.g. to compare DDP with one process).
        rule: the learning rule: its name (``backprop``: surrogate-gradient BPTT; ``stdp``, ``rstdp``, ``softhebb``,
            ``forward_forward``) or a section ``{name: ..., <the rule's options>}`` checked against that rule's
            config dataclass (:mod:`snn.rules.registry`).
        select_metric: best-model criterion on the validation set: ``"valid_acc"`` or ``"valid_loss"``.
        protocol: ``"heldout"`` (default: the best model is selected on the validation split — held-out training
            speakers for SHD — and the test set is evaluated once, at the end) or ``"paper"`` (the DCLS reference's
            SHD protocol: train on the whole training file, evaluate the test set after every epoch and report the
            best test accuracy over epochs — a test-set selection, labelled as such in the outputs; needs
            ``data.train_split: full_train``; for SSC, which has a validation file, it selects on that file).
        early_stopping_patience: stop after this many epochs without a better validation score (``None``: never).
        amp: mixed precision (autocast) on CUDA devices; ignored on CPU.
        device: ``"auto"`` (CUDA when available), ``"cpu"``, ``"cuda"``, ``"cuda:1"``, …
        seed: seeds torch, numpy, python and the data order.
        deterministic: ask torch for deterministic algorithms.
        limit_train_batches: use only this many batches per training epoch (quick checks; ``None``: all).
        threads: CPU threads of torch and of the numba kernels (``None``: their defaults, all cores; a resumed run
            then uses the counts its checkpoint recorded, for a bit-identical continuation).
        synops_penalty: weight ``w ≥ 0`` of the activity regulariser added to the loss by the backprop rule:
            ``w × expected synaptic operations per sample`` of the training forward
            (:class:`snn.energy.SynOpsPenalty`; ``0``: off). Typical useful values are ``1e-7 … 1e-5``.
    """

    epochs: int = 150
    batch_size: int = 256
    eval_batch_size: int | None = None
    shuffle: bool = True
    rule: RuleConfig = field(default_factory=lambda: _build_rule_section("backprop", "training.rule"))
    select_metric: Literal["valid_acc", "valid_loss"] = "valid_acc"
    protocol: Literal["heldout", "paper"] = "heldout"
    early_stopping_patience: int | None = None
    amp: bool = True
    device: str = "auto"
    seed: int = 0
    deterministic: bool = True
    limit_train_batches: int | None = None
    threads: int | None = None
    synops_penalty: float = 0.0


OPTIMIZERS = ("adam", "adamw", "adamax", "sgd")
SCHEDULERS = ("one_cycle", "cosine", "none")


@dataclass
class GroupConfig:
    """Optimiser settings of one parameter group (``optim.groups.<name>``); ``null`` keeps the model's default.

    The groups a model has, and its defaults for them, come from the model family (e.g. the delay network:
    ``weights``, ``norm`` — no weight decay — and ``positions`` — lr 0.1, cosine schedule).

    Attributes:
        optimizer: ``"adam"``, ``"adamw"``, ``"adamax"`` or ``"sgd"``.
        lr: learning rate.
        weight_decay: L2 weight decay (>= 0).
        scheduler: ``"one_cycle"``, ``"cosine"`` or ``"none"``.
        max_lr: one-cycle peak (``null``: ``optim.max_lr × lr / optim.lr``).
    """

    optimizer: Literal["adam", "adamw", "adamax", "sgd"] | None = None
    lr: float | None = None
    weight_decay: float | None = None
    scheduler: Literal["one_cycle", "cosine", "none"] | None = None
    max_lr: float | None = None


@dataclass
class OptimConfig:
    """Optimisers and schedules: one optimiser per parameter group of the model.

    A group's setting is, in order of precedence: ``optim.groups.<group>.<key>`` of the run, the model family's
    default for that group, the value below.

    Attributes:
        optimizer: ``"adam"`` (default), ``"adamw"``, ``"adamax"`` or ``"sgd"`` (momentum 0.9).
        lr: base learning rate.
        weight_decay: L2 weight decay (>= 0).
        scheduler: ``"one_cycle"`` (peaks at ``max_lr``), ``"cosine"`` or ``"none"``.
        max_lr: one-cycle peak of a group with the base ``lr`` (scaled by ``lr / optim.lr`` for other groups).
        scheduler_interval: step the schedules once per ``"epoch"`` (reference) or per ``"batch"``.
        grad_clip: clip the global gradient norm to this value (``None``: no clipping).
        groups: per-group overrides, e.g. ``{positions: {lr: 0.05}}``.
    """

    optimizer: Literal["adam", "adamw", "adamax", "sgd"] = "adam"
    lr: float = 1e-3
    weight_decay: float = 1e-5
    scheduler: Literal["one_cycle", "cosine", "none"] = "one_cycle"
    max_lr: float = 5e-3
    scheduler_interval: Literal["epoch", "batch"] = "epoch"
    grad_clip: float | None = None
    groups: dict[str, GroupConfig] = field(default_factory=dict)


@dataclass
class RunConfig:
    """Outputs.

    Attributes:
        name: run name; the run folder is ``out_dir/<name>-<timestamp>`` unless ``--out`` names one.
        out_dir: parent folder of run folders.
        tensorboard: also log to TensorBoard (when ``torch.utils.tensorboard`` imports).
        plots: write plots at the end (curves, raster, firing rates, delay histograms).
        energy: write the energy report on the test set at the end (when :mod:`snn.energy` provides it).
        energy_profile: hardware profile of the energy report (see ``snn.energy.available_profiles()``).
        energy_batches: test batches the energy report counts (``None``: the whole test set).
        log_energy: log synaptic operations and energy per sample (``energy_profile``) of every validation pass in
            ``metrics.csv`` (``valid_synops``, ``valid_energy_nj``; counted during the validation pass itself).
        progress: show a progress bar.
        test_at_end: evaluate the best (validation) model on the test set at the end.
    """

    name: str = "run"
    out_dir: str = "runs"
    tensorboard: bool = True
    plots: bool = True
    energy: bool = True
    energy_profile: str = "45nm_fp32"
    energy_batches: int | None = 4
    log_energy: bool = True
    progress: bool = True
    test_at_end: bool = True


@dataclass
class Config:
    """A whole run: ``data``, ``model``, ``training``, ``optim``, ``run`` sections."""

    data: DataConfig = field(default_factory=DataConfig)
    model: ModelConfig = field(default_factory=lambda: _default_model_section())
    training: TrainingConfig = field(default_factory=TrainingConfig)
    optim: OptimConfig = field(default_factory=OptimConfig)
    run: RunConfig = field(default_factory=RunConfig)


# ------------------------------------------------------------------------------------------------- checking
def _type_name(tp: Any) -> str:
    origin = typing.get_origin(tp)
    if origin is Literal:
        return "one of " + ", ".join(repr(a) for a in typing.get_args(tp))
    if origin in (Union, types.UnionType):
        return " or ".join(_type_name(a) for a in typing.get_args(tp))
    if tp is type(None):
        return "null"
    return getattr(tp, "__name__", str(tp))


def _check_value(path: str, tp: Any, value: Any) -> Any:
    """Return ``value`` converted to ``tp`` (int → float only) or raise ConfigError naming ``path``."""
    origin = typing.get_origin(tp)
    if origin in (Union, types.UnionType):
        args = typing.get_args(tp)
        if value is None and type(None) in args:
            return None
        errors = []
        for a in args:
            if a is type(None):
                continue
            try:
                return _check_value(path, a, value)
            except ConfigError as err:
                errors.append(err)
        if len(errors) == 1:  # ``X | None``: X's own message says more (e.g. "expected a finite number")
            raise errors[0]
        raise ConfigError(f"{path}: expected {_type_name(tp)}, got {value!r} ({type(value).__name__})")
    if origin is dict:
        key_tp, value_tp = typing.get_args(tp)
        if not isinstance(value, dict):
            raise ConfigError(f"{path}: expected a mapping, got {value!r} ({type(value).__name__})")
        return {_check_value(f"{path} (key)", key_tp, k): _check_value(f"{path}.{k}", value_tp, v) for k, v in value.items()}
    if tp is ModelConfig:
        return _build_model_section(value, path)
    if tp is RuleConfig:
        return _build_rule_section(value, path)
    if origin is Literal:
        allowed = typing.get_args(tp)
        if value in allowed and type(value) is type(allowed[0]):
            return value
        hint = difflib.get_close_matches(str(value), [str(a) for a in allowed], n=1)
        extra = f" (did you mean {hint[0]!r}?)" if hint else ""
        raise ConfigError(f"{path}: expected one of {', '.join(repr(a) for a in allowed)}; got {value!r}{extra}")
    if tp is bool:
        if isinstance(value, bool):
            return value
    elif tp is int:
        if isinstance(value, int) and not isinstance(value, bool):
            return value
    elif tp is float:
        number = None
        if isinstance(value, (int, float)) and not isinstance(value, bool):
            number = float(value)
        elif isinstance(value, str):  # YAML 1.1 reads "1e-6" (no dot) as a string
            try:
                number = float(value)
            except ValueError:
                pass
        if number is not None:
            if not math.isfinite(number):
                raise ConfigError(f"{path}: expected a finite number, got {value!r}")
            return number
    elif tp is str:
        if isinstance(value, str):
            return value
    elif dataclasses.is_dataclass(tp):
        return _build(tp, value, path)
    else:  # pragma: no cover - only the types above are used in the dataclasses
        raise TypeError(f"unsupported config type {tp!r} at {path}")
    raise ConfigError(f"{path}: expected {_type_name(tp)}, got {value!r} ({type(value).__name__})")


def _build(cls: type, data: Any, path: str) -> Any:
    if data is None:
        data = {}
    if not isinstance(data, dict):
        raise ConfigError(f"{path or 'config'}: expected a mapping of keys to values, got {type(data).__name__}")
    hints = typing.get_type_hints(cls)
    names = [f.name for f in dataclasses.fields(cls)]
    kwargs = {}
    for key, value in data.items():
        full = f"{path}.{key}" if path else str(key)
        if key not in names:
            hint = difflib.get_close_matches(str(key), names, n=1)
            extra = f" Did you mean {(path + '.' if path else '') + hint[0]!r}?" if hint else ""
            raise ConfigError(f"unknown key {full!r}; allowed keys{' in ' + path if path else ''}: {', '.join(names)}.{extra}")
        kwargs[key] = _check_value(full, hints[key], value)
    obj = cls(**kwargs)
    _check_ranges(obj, path)
    return obj


_POSITIVE = {
    "data": ("dt_ms", "n_channels", "pool", "adding_factor"),
    "training": ("epochs", "batch_size"),
    "augment": ("time_mask_width", "channel_mask_width"),
}


def _check_ranges(obj: Any, path: str) -> None:
    section = path.split(".")[-1] if path else ""
    if isinstance(obj, Config) and obj.training.protocol == "paper" and obj.data.dataset != "ssc" \
            and obj.data.train_split != "full_train":
        raise ConfigError("training.protocol 'paper' trains on the whole training file and selects on the test set: "
                          f"set data.train_split to 'full_train' (got {obj.data.train_split!r})")
    for name in _POSITIVE.get(section, ()):
        v = getattr(obj, name)
        if v is not None and v <= 0:
            raise ConfigError(f"{path}.{name}: expected a value > 0, got {v!r}")
    if section == "data" and not 0.0 < obj.valid_fraction < 1.0:
        raise ConfigError(f"data.valid_fraction: expected a value in (0, 1), got {obj.valid_fraction!r}")
    if section == "augment":
        for name in ("channel_shift", "time_jitter", "time_masks", "channel_masks"):
            if getattr(obj, name) < 0:
                raise ConfigError(f"{path}.{name}: expected a value >= 0 (0: off), got {getattr(obj, name)!r}")
    if section == "data" and obj.num_workers < 0:
        raise ConfigError(f"data.num_workers: expected a value >= 0, got {obj.num_workers!r}")
    if section == "data" and obj.label_channels < 0:
        raise ConfigError(f"data.label_channels: expected a value >= 0, got {obj.label_channels!r}")
    if section == "training":
        if not (obj.synops_penalty >= 0.0 and obj.synops_penalty != float("inf")):
            raise ConfigError(f"training.synops_penalty: expected a finite value >= 0, got {obj.synops_penalty!r}")
        for name in ("eval_batch_size", "early_stopping_patience", "limit_train_batches", "threads"):
            v = getattr(obj, name)
            if v is not None and v <= 0:
                raise ConfigError(f"training.{name}: expected a value > 0 or null, got {v!r}")
    if section in ("optim", "groups") or path.startswith("optim.groups."):
        for name in ("lr", "max_lr", "weight_decay", "grad_clip"):
            v = getattr(obj, name, None)
            if v is None:
                continue
            if not math.isfinite(v) or v < 0 or (v == 0 and name in ("max_lr", "grad_clip")):
                bound = "> 0" if name in ("max_lr", "grad_clip") else ">= 0"
                raise ConfigError(f"{path}.{name}: expected a finite value {bound}, got {v!r}")
    check = getattr(obj, "check", None)
    if callable(check):  # a family's own range checks (model sections)
        try:
            check()
        except (ValueError, TypeError) as err:
            raise ConfigError(f"{path}.{err}" if not str(err).startswith(path) else str(err)) from None


def _build_model_section(value: Any, path: str) -> ModelConfig:
    """The ``model:`` section as its family's config dataclass (``name`` selects the family)."""
    from snn.models.registry import get_family

    return _build_named_section(value, path, ModelConfig.name, lambda name: get_family(name).config_class)


def _build_rule_section(value: Any, path: str) -> RuleConfig:
    """``training.rule``: a rule name, or a mapping whose ``name`` selects the rule's config dataclass."""
    from snn.rules.registry import get_rule_family

    return _build_named_section({"name": value} if isinstance(value, str) else value, path, RuleConfig.name,
                                lambda name: get_rule_family(name).config_class)


def _build_named_section(value: Any, path: str, default: str, config_class_of) -> Any:
    """A section whose ``name`` key selects its dataclass (``config_class_of(name)``; ValueError: unknown name)."""
    if value is None:
        value = {}
    if not isinstance(value, dict):
        raise ConfigError(f"{path}: expected a mapping of keys to values, got {type(value).__name__}")
    name = value.get("name", default)
    try:
        cls = config_class_of(name)
    except ValueError as err:
        raise ConfigError(str(err)) from None
    obj = _build(cls, value, path)
    obj.name = name
    return obj


def _default_model_section() -> ModelConfig:
    return _build_model_section({}, "model")


#: keys that moved in version 0.2 (model families): old dotted path -> new dotted path
LEGACY_KEYS = {
    "training.sigma_init": "model.sigma_init",
    "training.sigma_final": "model.sigma_final",
    "training.sigma_decay_fraction": "model.sigma_decay_fraction",
    "training.eval_integer_delays": "model.eval_integer_delays",
    "optim.positions_lr": "optim.groups.positions.lr",
    "optim.positions_scheduler": "optim.groups.positions.scheduler",
}


def migrate_legacy(data: dict[str, Any] | None) -> tuple[dict[str, Any] | None, list[str]]:
    """Move keys of configs written before model families (:data:`LEGACY_KEYS`) to their new place.

    Returns the migrated copy and one ``"old -> new"`` line per moved key. Used for checkpoints written by
    earlier versions (their stored config) and, with a warning, for old config files.
    """
    if not isinstance(data, dict):
        return data, []
    data = copy.deepcopy(data)
    moved = []
    for old, new in LEGACY_KEYS.items():
        sec, key = old.split(".")
        section = data.get(sec)
        if not isinstance(section, dict) or key not in section:
            continue
        value = section.pop(key)
        _set_path(data, new, value, overwrite=False)
        moved.append(f"{old} -> {new}")
    return data, moved


def _set_path(data: dict[str, Any], dotted: str, value: Any, overwrite: bool = True) -> None:
    parts = dotted.split(".")
    node = data
    for p in parts[:-1]:
        if node.get(p) is None:
            node[p] = {}
        if not isinstance(node[p], dict):
            raise ConfigError(f"{dotted}: {p!r} is not a section")
        node = node[p]
    if overwrite or parts[-1] not in node:
        node[parts[-1]] = value


def config_from_dict(data: dict[str, Any] | None, *, legacy: str = "error") -> Config:
    """Build and check a :class:`Config` from nested dicts (as read from YAML).

    ``legacy``: what to do with keys that moved in version 0.2 (:data:`LEGACY_KEYS`): ``"error"`` (a
    :class:`ConfigError` naming the new key), ``"warn"`` (move them, with a warning) or ``"migrate"`` (move them
    silently, for configs stored in old checkpoints).
    """
    migrated, moved = migrate_legacy(data)
    if moved:
        if legacy == "error":
            raise ConfigError("keys moved when model families became plug-ins: " + "; ".join(moved))
        if legacy == "warn":
            warnings.warn("config keys moved (update the file): " + "; ".join(moved), DeprecationWarning, stacklevel=3)
        data = migrated
    return _build(Config, data, "")


def config_to_dict(config: Config) -> dict[str, Any]:
    """Nested plain dicts of ``config`` (YAML-ready)."""
    return dataclasses.asdict(config)


def apply_overrides(config: Config, overrides: list[str] | dict[str, Any] | None) -> Config:
    """Return a new config with dotted-path overrides (``["model.hidden=512"]``, ``{"optim.groups.positions.lr": 0.05}``).

    String values are parsed as YAML scalars/lists; every value is checked like the file's. Overriding
    ``model.name`` starts the model section afresh from that family's defaults (plus the other ``model.*`` overrides).
    """
    if not overrides:
        return config
    data = config_to_dict(config)
    items: list[tuple[str, Any]] = []
    if isinstance(overrides, dict):
        items = list(overrides.items())
    else:
        for item in overrides:
            if not isinstance(item, str) or "=" not in item:
                raise ConfigError(f"override {item!r}: expected KEY=VALUE with a dotted key, e.g. model.hidden=512")
            key, raw = item.split("=", 1)
            try:
                value = yaml.safe_load(raw) if raw.strip() else ""
            except yaml.YAMLError as err:
                raise ConfigError(f"override {item!r}: value {raw!r} is not valid YAML: {err}") from err
            items.append((key.strip(), value))
    sections = [f.name for f in dataclasses.fields(Config)]
    for key, value in items:
        if key == "model.name" and value != data["model"].get("name"):
            data["model"] = {"name": value}
        if key in ("training.rule", "training.rule.name") and isinstance(value, str) \
                and value != data["training"]["rule"].get("name"):
            data["training"]["rule"] = {"name": value}
    for key, value in items:
        parts = key.split(".")
        if len(parts) < 2 or not all(parts):
            raise ConfigError(f"override key {key!r}: expected SECTION.KEY with SECTION one of {', '.join(sections)}")
        if parts[0] not in data:
            raise ConfigError(f"unknown key {parts[0]!r}; allowed keys: {', '.join(sections)}")
        if key in LEGACY_KEYS:
            raise ConfigError(f"override key {key!r} moved to {LEGACY_KEYS[key]!r}")
        if key == "training.rule" and isinstance(value, str):  # a rule name: the section was restarted above
            key = "training.rule.name"
        _set_path(data, key, value)
    return config_from_dict(data)


def load_config(source: str | os.PathLike | Config | dict, overrides: list[str] | dict[str, Any] | None = None) -> Config:
    """Read a YAML file (or take a Config / dict), apply ``overrides`` and check everything."""
    if isinstance(source, Config):
        config = source
    elif isinstance(source, dict):
        config = config_from_dict(source)
    else:
        path = Path(source)
        if not path.is_file():
            raise FileNotFoundError(f"config file not found: {path}")
        try:
            data = yaml.load(path.read_text(), Loader=_UniqueKeyLoader)  # noqa: S506 - a SafeLoader subclass
        except ConfigError as err:
            raise ConfigError(f"{path}: {err}") from None
        except yaml.YAMLError as err:
            raise ConfigError(f"{path}: not valid YAML: {err}") from err
        try:
            config = config_from_dict(data, legacy="warn")
        except ConfigError as err:
            raise ConfigError(f"{path}: {err}") from err
    return apply_overrides(config, overrides)


def save_config(config: Config, path: str | os.PathLike) -> None:
    """Write ``config`` as YAML, atomically."""
    path = Path(path)
    buf = io.StringIO()
    yaml.safe_dump(config_to_dict(config), buf, sort_keys=False)
    path.parent.mkdir(parents=True, exist_ok=True)
    write_atomic(path, buf.getvalue())


def config_diff(a: dict[str, Any], b: dict[str, Any], prefix: str = "") -> list[str]:
    """Lines ``key: a_value != b_value`` for every dotted key whose value differs between two config dicts."""
    lines = []
    for key in sorted(set(a) | set(b)):
        full = f"{prefix}{key}"
        va, vb = a.get(key, "<missing>"), b.get(key, "<missing>")
        if isinstance(va, dict) and isinstance(vb, dict):
            lines += config_diff(va, vb, full + ".")
        elif va != vb:
            lines.append(f"{full}: {va!r} != {vb!r}")
    return lines
