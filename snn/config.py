"""Run configurations: plain YAML files mapped onto nested dataclasses, checked before any work.

A config file has up to five sections, each a dataclass below::

    data:     DataConfig      which dataset, binning (dt_ms, pool), held-out split, loader workers
    model:    ModelConfig     the delay network's shape and neuron constants (times in ms)
    training: TrainingConfig  epochs, batch size, learning rule, sigma schedule, early stopping, seed, device
    optim:    OptimConfig     weight and position optimisers and their schedules, gradient clipping
    run:      RunConfig       run name and folder, logging, plots, energy report

Missing keys take the defaults below. Unknown keys and values of the wrong type raise :class:`ConfigError`
naming the key path (``model.hidden``), the expected type or the allowed values, and the received value.
Overrides use the same dotted paths: ``load_config("a.yaml", overrides=["model.hidden=512"])``; the value
is parsed as YAML (``512`` → int, ``null`` → None, ``[1, 2]`` → list) and then checked like the file's.
"""
from __future__ import annotations

import dataclasses
import difflib
import io
import math
import os
import types
import typing
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Literal, Union

import yaml

from snn.atomic import write_atomic

__all__ = [
    "ConfigError", "DataConfig", "ModelConfig", "TrainingConfig", "OptimConfig", "RunConfig", "Config",
    "load_config", "config_from_dict", "config_to_dict", "apply_overrides", "save_config", "config_diff",
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
class DataConfig:
    """Dataset and preprocessing.

    Attributes:
        dataset: ``"spoken_digits"`` (embedded), ``"shd"`` or ``"ssc"``.
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
    """

    dataset: Literal["spoken_digits", "shd", "ssc"] = "spoken_digits"
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


@dataclass
class ModelConfig:
    """The feed-forward delay network (:class:`snn.models.DelayNet`).

    Attributes:
        name: model family; only ``"delaynet"`` so far.
        hidden: neurons per hidden layer.
        layers: hidden layers (delay → BatchNorm → LIF → dropout each); a delay readout follows.
        max_delay: delay taps ``D`` (delays ``0 … D-1`` steps; odd, as in the reference).
        kernel_count: delay elements per synapse.
        delays: ``"learned"`` (DCLS), ``"frozen_zero"`` (the ablation: every delay 0, same layers and padding)
            or ``"frozen_random"`` (random integer delays that are not trained: the reference's ``snn_delays_lr0``).
        tau_ms: LIF and readout membrane time constant, ms (divided by ``data.dt_ms`` to steps).
        v_threshold: hidden LIF threshold.
        surrogate_alpha: ATan surrogate sharpness.
        detach_reset: stop the gradient through the reset.
        dropout: dropout probability on hidden spikes (one mask per sequence).
        batchnorm: BatchNorm1d over channels after each hidden delay layer.
        bias: bias in the delay layers.
        n_inputs: input channels (``None``: taken from the data; if set it must match the data).
        n_classes: classes (``None``: taken from the data; if set it must match the data).
        backend: neuron kernel backend (``"auto"``, ``"torch"``, ``"numba"``, ``"cupy"``).
    """

    name: Literal["delaynet"] = "delaynet"
    hidden: int = 256
    layers: int = 2
    max_delay: int = 25
    kernel_count: int = 1
    delays: Literal["learned", "frozen_zero", "frozen_random"] = "learned"
    tau_ms: float = 10.05
    v_threshold: float = 1.0
    surrogate_alpha: float = 5.0
    detach_reset: bool = True
    dropout: float = 0.4
    batchnorm: bool = True
    bias: bool = False
    n_inputs: int | None = None
    n_classes: int | None = None
    backend: Literal["auto", "torch", "numba", "cupy"] = "auto"


@dataclass
class TrainingConfig:
    """The training loop.

    Attributes:
        epochs: training epochs.
        batch_size: samples per optimiser step (global: split across DDP ranks).
        eval_batch_size: batch size for valid/test (``None``: ``batch_size``).
        shuffle: reshuffle the training set every epoch (``False``: file order, e.g. to compare DDP with one process).
        rule: learning rule (``"backprop"``: surrogate-gradient BPTT).
        sigma_init: initial delay-kernel width in taps (``None``: ``max_delay // 2``, the reference's).
        sigma_final: width reached after ``sigma_decay_fraction`` of the epochs (exponential decay).
        sigma_decay_fraction: share of the epochs over which the width decays (reference: 1/4).
        eval_integer_delays: evaluate with rounded integer delays (triangle, σ = 0), as the reference.
        select_metric: best-model criterion on the validation set: ``"valid_acc"`` or ``"valid_loss"``.
        early_stopping_patience: stop after this many epochs without a better validation score (``None``: never).
        amp: mixed precision (autocast) on CUDA devices; ignored on CPU.
        device: ``"auto"`` (CUDA when available), ``"cpu"``, ``"cuda"``, ``"cuda:1"``, …
        seed: seeds torch, numpy, python and the data order.
        deterministic: ask torch for deterministic algorithms.
        limit_train_batches: use only this many batches per training epoch (quick checks; ``None``: all).
        threads: CPU threads of torch and of the numba kernels (``None``: their defaults, all cores).
        synops_penalty: weight ``w ≥ 0`` of the activity regulariser added to the loss by the backprop rule:
            ``w × expected synaptic operations per sample`` of the training forward
            (:class:`snn.energy.SynOpsPenalty`; ``0``: off). Typical useful values are ``1e-7 … 1e-5``.
    """

    epochs: int = 150
    batch_size: int = 256
    eval_batch_size: int | None = None
    shuffle: bool = True
    rule: Literal["backprop"] = "backprop"
    sigma_init: float | None = None
    sigma_final: float = 0.23
    sigma_decay_fraction: float = 0.25
    eval_integer_delays: bool = True
    select_metric: Literal["valid_acc", "valid_loss"] = "valid_acc"
    early_stopping_patience: int | None = None
    amp: bool = True
    device: str = "auto"
    seed: int = 0
    deterministic: bool = True
    limit_train_batches: int | None = None
    threads: int | None = None
    synops_penalty: float = 0.0


@dataclass
class OptimConfig:
    """Optimisers (Adam) and schedules, as in the reference: weights and positions are optimised separately.

    Attributes:
        lr: base learning rate of the weights (BatchNorm parameters use it without weight decay).
        weight_decay: L2 decay of the synaptic weights.
        scheduler: weights schedule: ``"one_cycle"`` (peaks at ``max_lr``), ``"cosine"`` or ``"none"``.
        max_lr: one-cycle peak.
        positions_lr: learning rate of the delay positions.
        positions_scheduler: positions schedule: ``"cosine"``, ``"one_cycle"`` (peak ``5 × positions_lr``) or ``"none"``.
        scheduler_interval: step the schedules once per ``"epoch"`` (reference) or per ``"batch"``.
        grad_clip: clip the global gradient norm to this value (``None``: no clipping).
    """

    lr: float = 1e-3
    weight_decay: float = 1e-5
    scheduler: Literal["one_cycle", "cosine", "none"] = "one_cycle"
    max_lr: float = 5e-3
    positions_lr: float = 0.1
    positions_scheduler: Literal["cosine", "one_cycle", "none"] = "cosine"
    scheduler_interval: Literal["epoch", "batch"] = "epoch"
    grad_clip: float | None = None


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
    model: ModelConfig = field(default_factory=ModelConfig)
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
    "data": ("dt_ms", "n_channels", "pool"),
    "model": ("hidden", "layers", "max_delay", "kernel_count", "tau_ms", "surrogate_alpha"),
    "training": ("epochs", "batch_size"),
}


def _check_ranges(obj: Any, path: str) -> None:
    section = path.split(".")[-1] if path else ""
    for name in _POSITIVE.get(section, ()):
        v = getattr(obj, name)
        if v is not None and v <= 0:
            raise ConfigError(f"{path}.{name}: expected a value > 0, got {v!r}")
    if section == "data" and not 0.0 < obj.valid_fraction < 1.0:
        raise ConfigError(f"data.valid_fraction: expected a value in (0, 1), got {obj.valid_fraction!r}")
    if section == "data" and obj.num_workers < 0:
        raise ConfigError(f"data.num_workers: expected a value >= 0, got {obj.num_workers!r}")
    if section == "model" and not 0.0 <= obj.dropout < 1.0:
        raise ConfigError(f"model.dropout: expected a value in [0, 1), got {obj.dropout!r}")
    if section == "training":
        if not 0.0 <= obj.sigma_decay_fraction <= 1.0:
            raise ConfigError(f"training.sigma_decay_fraction: expected a value in [0, 1], got {obj.sigma_decay_fraction!r}")
        if not (obj.synops_penalty >= 0.0 and obj.synops_penalty != float("inf")):
            raise ConfigError(f"training.synops_penalty: expected a finite value >= 0, got {obj.synops_penalty!r}")
        for name in ("eval_batch_size", "early_stopping_patience", "limit_train_batches", "threads"):
            v = getattr(obj, name)
            if v is not None and v <= 0:
                raise ConfigError(f"training.{name}: expected a value > 0 or null, got {v!r}")
    if section == "optim" and obj.grad_clip is not None and obj.grad_clip <= 0:
        raise ConfigError(f"optim.grad_clip: expected a value > 0 or null, got {obj.grad_clip!r}")


def config_from_dict(data: dict[str, Any] | None) -> Config:
    """Build and check a :class:`Config` from nested dicts (as read from YAML)."""
    return _build(Config, data, "")


def config_to_dict(config: Config) -> dict[str, Any]:
    """Nested plain dicts of ``config`` (YAML-ready)."""
    return dataclasses.asdict(config)


def apply_overrides(config: Config, overrides: list[str] | dict[str, Any] | None) -> Config:
    """Return a new config with dotted-path overrides (``["model.hidden=512"]`` or ``{"model.hidden": 512}``).

    String values are parsed as YAML scalars/lists; every value is checked like the file's.
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
    for key, value in items:
        parts = key.split(".")
        if len(parts) != 2:
            raise ConfigError(
                f"override key {key!r}: expected SECTION.KEY with SECTION one of "
                f"{', '.join(f.name for f in dataclasses.fields(Config))}"
            )
        section, name = parts
        if section not in data:
            raise ConfigError(f"unknown key {section!r}; allowed keys: {', '.join(data)}")
        data[section][name] = value
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
            config = config_from_dict(data)
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
