"""The Heidelberg spiking datasets (SHD, SSC) and the embedded spoken-digits set.

Files (from https://zenkelab.org/datasets/, also fetched by ``tonic.datasets.SHD`` / ``SSC``):

===========  =========================================  =========  ==========================
dataset      files                                      classes    splits
===========  =========================================  =========  ==========================
SHD          ``shd_train.h5``, ``shd_test.h5``          20         train / test (+ held-out valid)
SSC          ``ssc_train.h5``, ``ssc_valid.h5``,        35         train / valid / test
             ``ssc_test.h5``
SpokenDigits ``spoken_digits_train.h5``,                20         train / test (+ held-out valid)
             ``spoken_digits_test.h5`` (in the package)
===========  =========================================  =========  ==========================

SHD has no validation split.  Here ``split="train"`` and ``split="valid"`` are the two parts of
a seeded held-out split of ``shd_train.h5`` (:func:`~snn.datasets.splits.holdout_split`): by
default whole speakers (``valid_by="speaker"``) covering at least ``valid_fraction`` (10 %) of
the samples, chosen with ``seed``.  Use ``split="full_train"`` for the whole training file, as
the published SHD numbers do.

Files are looked for in ``root``, ``root/SHD`` (``root/SSC``) — the folder tonic downloads to.
With ``download=True`` a missing file is fetched through tonic (which checks its MD5); otherwise
a missing file raises :class:`FileNotFoundError` saying where it was expected and where to get it.
"""

from __future__ import annotations

import os
from pathlib import Path
from typing import Any

import numpy as np

from snn.datasets.binning import ToFrames
from snn.datasets.spike_h5 import SpikeTrainH5
from snn.datasets.splits import holdout_split

__all__ = ["SHD", "SSC", "SpokenDigits", "DATA_DIR", "find_file"]

DATA_DIR = Path(__file__).resolve().parent / "data"
_URL = "https://zenkelab.org/datasets/"


def find_file(root: str | os.PathLike, filename: str, subdirs: tuple[str, ...], *, what: str, hint: str) -> Path:
    """First existing ``root/<sub>/filename`` for ``sub`` in ``("", *subdirs)``; else FileNotFoundError."""
    root = Path(root).expanduser()
    candidates = [root / filename] + [root / s / filename for s in subdirs]
    for c in candidates:
        if c.is_file():
            return c
    raise FileNotFoundError(
        f"{what}: file {filename!r} not found; looked for {', '.join(str(c) for c in candidates)}. {hint}"
    )


class _HeidelbergBase(SpikeTrainH5):
    files: dict[str, str] = {}
    subdir = ""
    tonic_name = ""

    def __init__(
        self,
        root: str | os.PathLike,
        split: str = "train",
        *,
        frames: ToFrames | None = ToFrames(),
        download: bool = False,
        **kwargs: Any,
    ) -> None:
        self.root = Path(root).expanduser()
        self.split = split
        super().__init__(self._resolve(split, download), frames=frames, **kwargs)

    def _filename(self, split: str) -> str:
        if split not in self.files:
            raise ValueError(f"split must be one of {sorted(self.files)} for {type(self).__name__}, got {split!r}")
        return self.files[split]

    def _resolve(self, split: str, download: bool) -> Path:
        name = self._filename(split)
        hint = (
            f"Download {name}.zip (or .gz) from {_URL} and unpack it into {self.root}, or pass download=True "
            f"to fetch it through tonic (tonic.datasets.{self.tonic_name}) when a network is available. "
            f"Expected files: {', '.join(sorted(set(self.files.values())))}."
        )
        try:
            return find_file(self.root, name, (self.subdir,), what=type(self).__name__, hint=hint)
        except FileNotFoundError:
            if not download:
                raise
        self._download(split)
        return find_file(self.root, name, (self.subdir,), what=type(self).__name__, hint=hint)

    def _download(self, split: str) -> None:  # network; not exercised by the tests
        raise NotImplementedError


class SHD(_HeidelbergBase):
    """Spiking Heidelberg Digits (Cramer et al., 2020): 20 spoken digits (English + German), 700 channels.

    Args:
        root: folder holding ``shd_train.h5`` / ``shd_test.h5`` (or a ``SHD/`` folder made by tonic).
        split: ``"train"`` / ``"valid"`` (seeded held-out parts of ``shd_train.h5``), ``"full_train"``
            (the whole training file) or ``"test"``.
        valid_fraction: share of training samples held out for ``"valid"``.
        valid_by: ``"speaker"`` (whole speakers held out) or ``"fraction"`` (class-stratified).
        seed: seed of the held-out split.
        download: fetch missing files through tonic (network).
        **kwargs: ``frames``, ``cache``, ``cache_dir``, ``transform``, … of :class:`SpikeTrainH5`.

    Items are ``(x [T, C] float32, label)``; see :class:`SpikeTrainH5`.
    """

    files = {"train": "shd_train.h5", "valid": "shd_train.h5", "full_train": "shd_train.h5", "test": "shd_test.h5"}
    subdir = "SHD"
    tonic_name = "SHD"
    declared_classes = 20
    declared_max_duration_s = 2.0  # the longest SHD recordings last about 1.4 s

    def __init__(
        self,
        root: str | os.PathLike,
        split: str = "train",
        *,
        valid_fraction: float = 0.1,
        valid_by: str = "speaker",
        seed: int = 0,
        download: bool = False,
        **kwargs: Any,
    ) -> None:
        if split in ("train", "valid"):
            # validate split arguments before any file work
            if not 0.0 < valid_fraction < 1.0:
                raise ValueError(f"valid_fraction must lie in (0, 1), got {valid_fraction!r}")
            if valid_by not in ("speaker", "fraction"):
                raise ValueError(f"valid_by must be 'speaker' or 'fraction', got {valid_by!r}")
        self.valid_fraction, self.valid_by, self.seed = valid_fraction, valid_by, seed
        indices = kwargs.pop("indices", None)
        super().__init__(root, split, download=download, **kwargs)
        if split in ("train", "valid"):
            if indices is not None:
                raise ValueError("indices cannot be combined with split='train'/'valid' (they are chosen by the split)")
            tr, va = holdout_split(self._labels, self._speakers, fraction=valid_fraction, by=valid_by, seed=seed)
            self.indices = tr if split == "train" else va
        elif indices is not None:
            self.indices = np.asarray(indices, dtype=np.int64)

    def _download(self, split: str) -> None:
        import tonic

        tonic.datasets.SHD(str(self.root), train=split != "test")


class SSC(_HeidelbergBase):
    """Spiking Speech Commands (Cramer et al., 2020): 35 keywords, 700 channels, its own valid split.

    Args:
        root: folder holding ``ssc_{train,valid,test}.h5`` (or a ``SSC/`` folder made by tonic).
        split: ``"train"``, ``"valid"`` or ``"test"``.
        download: fetch missing files through tonic (network).
        **kwargs: see :class:`SpikeTrainH5`.
    """

    files = {"train": "ssc_train.h5", "valid": "ssc_valid.h5", "test": "ssc_test.h5"}
    subdir = "SSC"
    tonic_name = "SSC"
    declared_classes = 35
    declared_max_duration_s = 2.0  # Speech Commands clips last at most 1 s

    def _download(self, split: str) -> None:
        import tonic

        tonic.datasets.SSC(str(self.root), split=split)


class SpokenDigits(SHD):
    """The embedded spoken-digits set shipped with the package (SHD layout, 700 channels, 20 classes).

    Generated reproducibly by ``snn data make-digits`` (see :mod:`snn.datasets.spoken_digits_make`).
    Splits as for :class:`SHD`: ``"valid"`` holds whole speakers out of the training file, seeded.

    Args:
        split: ``"train"``, ``"valid"``, ``"full_train"`` or ``"test"``.
        root: folder with ``spoken_digits_{train,test}.h5`` (default: the package's ``data/`` folder).
        **kwargs: as for :class:`SHD` (``valid_fraction``, ``valid_by``, ``seed``, ``frames``, …).
    """

    files = {
        "train": "spoken_digits_train.h5",
        "valid": "spoken_digits_train.h5",
        "full_train": "spoken_digits_train.h5",
        "test": "spoken_digits_test.h5",
    }
    subdir = ""
    tonic_name = ""

    def __init__(self, split: str = "train", *, root: str | os.PathLike | None = None, **kwargs: Any) -> None:
        if kwargs.get("download"):
            raise ValueError("SpokenDigits ships with the package; download=True does not apply")
        super().__init__(DATA_DIR if root is None else root, split, **kwargs)

    def _resolve(self, split: str, download: bool) -> Path:
        name = self._filename(split)
        hint = "The embedded files are generated with `snn data make-digits` into the package's datasets/data/ folder."
        return find_file(self.root, name, (), what="SpokenDigits", hint=hint)
