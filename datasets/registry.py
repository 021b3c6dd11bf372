"""Dataset registry: ``get_dataset("shd", "train", root=...)``."""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

from torch.utils.data import Dataset

__all__ = ["get_dataset", "DATASETS"]


def _shd(split: str, root: str | None, **kw: Any) -> Dataset:
    from snn.datasets.shd import SHD

    return SHD(_need_root("shd", root), split, **kw)


def _ssc(split: str, root: str | None, **kw: Any) -> Dataset:
    from snn.datasets.shd import SSC

    return SSC(_need_root("ssc", root), split, **kw)


def _digits(split: str, root: str | None, **kw: Any) -> Dataset:
    from snn.datasets.shd import SpokenDigits

    return SpokenDigits(split, root=root, **kw)


def _vision(cls_name: str) -> Callable[..., Dataset]:
    def make(split: str, root: str | None, **kw: Any) -> Dataset:
        from snn.datasets import vision

        return getattr(vision, cls_name)(_need_root(cls_name, root), split, **kw)

    return make


def _need_root(name: str, root: str | None) -> str:
    if root is None:
        raise ValueError(f"dataset {name!r} needs root= (the folder holding its files), got None")
    return root


DATASETS: dict[str, Callable[..., Dataset]] = {
    "shd": _shd,
    "ssc": _ssc,
    "spoken_digits": _digits,
    "dvs_gesture": _vision("DVSGesture"),
    "cifar10_dvs": _vision("CIFAR10DVS"),
    "nmnist": _vision("NMNIST"),
}


def get_dataset(name: str, split: str, root: str | None = None, **kwargs: Any) -> Dataset:
    """Build a registered dataset by name.

    Args:
        name: one of ``"shd"``, ``"ssc"``, ``"spoken_digits"``, ``"dvs_gesture"``, ``"cifar10_dvs"``, ``"nmnist"``
            (case-insensitive; ``-`` and ``_`` are equivalent).
        split: the dataset's split name (``"train"``, ``"valid"``, ``"test"``, …).
        root: data folder (optional for ``"spoken_digits"``, which ships with the package).
        **kwargs: passed to the dataset class (``frames``, ``cache_dir``, ``download``, …).
    """
    key = name.lower().replace("-", "_")
    if key not in DATASETS:
        raise ValueError(f"unknown dataset {name!r}; expected one of {sorted(DATASETS)}")
    return DATASETS[key](split, root, **kwargs)
