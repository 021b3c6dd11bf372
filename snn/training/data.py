"""Datasets for a run, built from :class:`snn.config.DataConfig`, and the checks against the model."""
from __future__ import annotations

import dataclasses
from dataclasses import dataclass

from torch.utils.data import Dataset

from snn.config import AugmentConfig, DataConfig
from snn.datasets import SHD, SSC, ChannelMask, ChannelShift, Compose, SpokenDigits, TimeJitter, TimeMask, ToFrames
from snn.datasets.label_slots import LabelSlots

__all__ = ["ADDING_SETS", "RunData", "augmentation", "build_datasets", "build_split"]


@dataclass
class RunData:
    """The three splits of a run and what the model must match."""

    train: Dataset
    valid: Dataset | None
    test: Dataset | None
    n_inputs: int
    n_classes: int
    classes: list[str]


def _frames(cfg: DataConfig) -> ToFrames:
    return ToFrames(dt_ms=cfg.dt_ms, n_channels=cfg.n_channels, pool=cfg.pool, max_duration_ms=cfg.max_duration_ms,
                    grid=cfg.binning)


def augmentation(cfg: AugmentConfig) -> Compose | None:
    """The training split's per-item transform from ``data.augment`` (``None`` when every augmentation is off)."""
    steps = []
    if cfg.channel_shift:
        steps.append(ChannelShift(cfg.channel_shift))
    if cfg.time_jitter:
        steps.append(TimeJitter(cfg.time_jitter))
    if cfg.time_masks:
        steps.append(TimeMask(cfg.time_mask_width, cfg.time_masks))
    if cfg.channel_masks:
        steps.append(ChannelMask(cfg.channel_mask_width, cfg.channel_masks))
    return Compose(steps) if steps else None


def build_split(cfg: DataConfig, split: str) -> Dataset | None:
    """One split (``"train"``, ``"valid"``, ``"test"``; ``"train"`` means ``cfg.train_split``) of the configured
    dataset, with ``cfg.label_channels`` silent channels prepended (:class:`~snn.datasets.label_slots.LabelSlots`)."""
    if split not in ("train", "valid", "test"):
        raise ValueError(f"split must be 'train', 'valid' or 'test', got {split!r}")
    ds = _split(cfg, split)
    return LabelSlots(ds, cfg.label_channels) if cfg.label_channels and ds is not None else ds


def _split(cfg: DataConfig, split: str) -> Dataset | None:
    if cfg.dataset in ADDING_SETS:
        return _adding_split(cfg, split)
    kw = {"frames": _frames(cfg), "cache_dir": cfg.cache_dir}
    if split == "train":
        kw["transform"] = augmentation(cfg.augment)
    name = cfg.dataset
    file_split = cfg.train_split if split == "train" else split
    if name in ("spoken_digits", "shd"):
        if file_split in ("train", "valid"):
            kw.update(valid_fraction=cfg.valid_fraction, valid_by=cfg.valid_by, seed=cfg.split_seed)
        if name == "spoken_digits":
            return SpokenDigits(file_split, root=cfg.root, **kw)
        if cfg.root is None:
            raise ValueError("data.root: the SHD dataset needs the folder holding shd_train.h5 / shd_test.h5, got null")
        return SHD(cfg.root, file_split, **kw)
    if name == "ssc":
        if cfg.root is None:
            raise ValueError("data.root: the SSC dataset needs the folder holding ssc_{train,valid,test}.h5, got null")
        if cfg.train_split != "train":
            raise ValueError(f"data.train_split: SSC has its own validation file; expected 'train', got {cfg.train_split!r}")
        return SSC(cfg.root, file_split, **kw)
    if name == "digits8x8_spikes":
        return _digits_spikes(cfg, split)
    if name in _IMAGE_SETS:
        return _image_split(cfg, file_split)
    raise ValueError(f"data.dataset: expected one of 'spoken_digits', 'shd', 'ssc', 'digits8x8_spikes', "
                     f"{', '.join(map(repr, _IMAGE_SETS + tuple(ADDING_SETS)))}, got {name!r}")


#: SHD-Adding sets and the dataset each is built from
ADDING_SETS = {"spoken_digits_adding": "spoken_digits", "shd_adding": "shd"}


def _adding_split(cfg: DataConfig, split: str) -> Dataset:
    """SHD-Adding pairs drawn within one split of the base set (each split its own seed, so the pairs differ)."""
    from snn.datasets.shd_adding import SHDAdding

    base = _split(dataclasses.replace(cfg, dataset=ADDING_SETS[cfg.dataset]), split)  # label slots: added once, after
    seed = cfg.split_seed * 3 + ("train", "valid", "test").index(split)
    return SHDAdding(base, n_samples=cfg.adding_factor * len(base), seed=seed,
                     redraw=cfg.adding_redraw and split == "train")


_IMAGE_SETS = ("digits8x8", "dvs_gesture", "cifar10_dvs")


def _image_split(cfg: DataConfig, split: str) -> Dataset:
    """The spike-driven transformers' image sets; the event sets' ``valid`` is a held-out part of their train set."""
    from snn.datasets import CIFAR10DVS, Digits8x8, DVSGesture, holdout_split
    from snn.datasets.frame_pool import PoolFrames

    if cfg.dataset == "digits8x8":
        return Digits8x8(split, valid_fraction=cfg.valid_fraction, seed=cfg.split_seed)
    if cfg.root is None:
        raise ValueError(f"data.root: {cfg.dataset} needs the folder holding tonic's files, got null")
    cls, extra = (DVSGesture, {}) if cfg.dataset == "dvs_gesture" else (CIFAR10DVS, {"transform": PoolFrames(2)})
    ds = cls(cfg.root, "test" if split == "test" else "train", cache_dir=cfg.cache_dir, **extra)
    if split in ("train", "valid"):
        tr, va = holdout_split(ds.labels, None, fraction=cfg.valid_fraction, by="fraction", seed=cfg.split_seed)
        ds.indices = ds.indices[tr if split == "train" else va]
    return ds


def _digits_spikes(cfg: DataConfig, split: str) -> Dataset:
    """8×8 digits as regular spike trains (T = 16): the fixed 1,437/360 train/test split; ``valid`` is a
    class-stratified ``valid_fraction`` of the train part."""
    from snn.datasets import holdout_split
    from snn.datasets.digits8x8_spikes import Digits8x8Spikes

    if split == "test":
        return Digits8x8Spikes("test")
    ds = Digits8x8Spikes("train")
    tr, va = holdout_split(ds.labels, None, fraction=cfg.valid_fraction, by="fraction", seed=cfg.split_seed)
    return ds.select(tr if split == "train" else va)


def _n_classes(ds) -> int:
    n = len(ds.classes)
    labels = ds.labels
    if labels.size and int(labels.max()) >= n:
        n = int(labels.max()) + 1
    return n


def build_datasets(cfg: DataConfig, test: bool = True) -> RunData:
    """Train, valid and (optionally) test splits; checks that they agree on channels and classes."""
    train = build_split(cfg, "train")
    valid = build_split(cfg, "valid")
    test_ds = build_split(cfg, "test") if test else None

    n_classes = _n_classes(train)
    for name, ds in (("valid", valid), ("test", test_ds)):
        if ds is None:
            continue
        if ds.n_channels != train.n_channels:
            raise ValueError(f"data: the {name} split has {ds.n_channels} channels, the train split {train.n_channels}")
        if _n_classes(ds) > n_classes:
            raise ValueError(f"data: the {name} split has labels up to {_n_classes(ds) - 1}, the train split only {n_classes} classes")
    return RunData(train, valid, test_ds, train.n_channels, n_classes, train.classes)
