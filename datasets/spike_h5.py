"""Map-style dataset over any HDF5 file in the Heidelberg spiking-dataset (SHD/SSC) layout.

File layout (as distributed at zenkelab.org; ``N`` samples)::

    spikes/times     [N] vlen float   spike times of each sample, seconds
    spikes/units     [N] vlen uint16  channel id of each spike, 0..699
    labels           [N] int          class index
    extra/keys       [K] bytes/str    class names (optional)
    extra/speaker    [N] int          speaker id (optional)

The file is opened lazily, once per process: the handle is dropped on pickling and reopened when
the process id changes, so DataLoader workers (fork or spawn) each hold their own handle.  On
construction the file's integrity is checked once, before libhdf5 reads it (:mod:`snn.datasets.integrity`:
the heap structure, whose damage would make libhdf5 loop forever, and the published checksum of SHD/SSC
files), then the layout (required keys, equal lengths) and the labels (integers, within the stated
classes); the spikes are checked when they are read (channel ids in range, times finite and ``>= 0``,
durations plausible, no empty sample unless ``allow_empty=True``; :mod:`snn.datasets.checks`), and every
error names the file and the sample.

With a :class:`~snn.datasets.binning.ToFrames` transform and ``cache=True`` the whole file is
binned once, in vectorised chunks, into a cache file (see :mod:`snn.datasets.cache`) keyed by the
file's path, size and mtime and by every binning parameter; items are then read from the
memory-mapped cache only.  A stale or corrupt cache is rebuilt with a warning.
"""

from __future__ import annotations

import os
import warnings
from collections.abc import Callable, Sequence
from pathlib import Path
from typing import Any

import h5py
import numpy as np
import torch
from torch.utils.data import Dataset

from snn.datasets.binning import ToFrames
from snn.datasets.checks import duration_problems, event_problems, label_problems
from snn.datasets.cache import FrameCache, cache_key, default_cache_dir, open_or_build, source_identity, write_frame_cache
from snn.datasets.integrity import verify_h5

__all__ = ["SpikeTrainH5", "DatasetFormatError", "EVENT_DTYPE", "REQUIRED_KEYS", "layout_problems"]

REQUIRED_KEYS = ("spikes/times", "spikes/units", "labels")
EVENT_DTYPE = np.dtype([("t", np.int64), ("x", np.int64), ("p", np.int64)])
_CHUNK = 128  # samples per vectorised binning chunk


class DatasetFormatError(ValueError):
    """A dataset file is unreadable, truncated, or does not follow the expected layout."""


def _decode(names: np.ndarray) -> list[str]:
    return [n.decode() if isinstance(n, (bytes, np.bytes_)) else str(n) for n in np.asarray(names).ravel()]


class SpikeTrainH5(Dataset):
    """Spike-train samples from an SHD-layout HDF5 file.

    Args:
        path: the ``.h5`` file.
        frames: binning transform; ``None`` returns raw events instead of frames.
        cache: cache binned frames on disk (only with ``frames``).
        cache_dir: folder for cache files (default :func:`~snn.datasets.cache.default_cache_dir`).
        transform: applied to each item's frames tensor (or raw events with ``frames=None``).
        target_transform: applied to the int label.
        indices: optional subset of sample indices (used for held-out splits).
        allow_empty: accept samples without spikes (they bin to one zero frame); else an error.
        verify_cache: recompute the cache's CRC-32 when opening an existing cache.
        n_classes: the number of classes the file holds, if known (a larger label is an error); subclasses
            state their dataset's.
        max_duration_s: the longest sample the dataset can hold, s (a longer one is an error); subclasses
            state their dataset's.
        verify_file: check the file's integrity before the first read (once per file version; see
            :mod:`snn.datasets.integrity`).

    Items:
        ``frames``: ``(x, label)`` with ``x`` a float32 tensor ``[T, C]`` (``C = n_channels``) and an
        int ``label``.  ``frames=None``: ``(events, label)`` with ``events`` a structured array with
        fields ``t`` (µs, int64), ``x`` (channel) and ``p`` (always 1), like tonic.
    """

    #: classes and longest sample (s) of the dataset a subclass reads (``None``: unknown)
    declared_classes: int | None = None
    declared_max_duration_s: float | None = None

    def __init__(
        self,
        path: str | os.PathLike,
        *,
        frames: ToFrames | None = ToFrames(),
        cache: bool = True,
        cache_dir: str | os.PathLike | None = None,
        transform: Callable | None = None,
        target_transform: Callable | None = None,
        indices: Sequence[int] | np.ndarray | None = None,
        allow_empty: bool = False,
        verify_cache: bool = True,
        n_classes: int | None = None,
        max_duration_s: float | None = None,
        verify_file: bool = True,
    ) -> None:
        if frames is not None and not isinstance(frames, ToFrames):
            raise TypeError(f"frames must be a ToFrames or None, got {type(frames).__name__}")
        self.path = Path(path)
        if not self.path.is_file():
            raise FileNotFoundError(f"dataset file not found: {self.path}")
        self.frames = frames
        self.transform = transform
        self.target_transform = target_transform
        self.allow_empty = bool(allow_empty)
        self.n_classes_stated = n_classes if n_classes is not None else self.declared_classes
        self.max_duration_s = max_duration_s if max_duration_s is not None else self.declared_max_duration_s
        self._h5: h5py.File | None = None
        self._pid: int | None = None
        self.cache_dir = Path(cache_dir) if cache_dir is not None else default_cache_dir()
        if verify_file:
            problems = verify_h5(self.path, self.cache_dir)
            if problems:
                raise DatasetFormatError(f"{self.path}: {problems[0]}")
        self._check_layout()
        if indices is None:
            self.indices = np.arange(self._n_file, dtype=np.int64)
        else:
            self.indices = np.asarray(indices, dtype=np.int64).ravel()
            if self.indices.size and (self.indices.min() < 0 or self.indices.max() >= self._n_file):
                raise ValueError(
                    f"indices must lie in [0, {self._n_file}) for {self.path}, "
                    f"got range [{self.indices.min()}, {self.indices.max()}]"
                )
        self._cache: FrameCache | None = None
        if frames is not None and cache:
            self._cache = self._open_or_build_cache(verify_cache)

    # ------------------------------------------------------------------ file access
    def _open(self) -> h5py.File:
        try:
            return h5py.File(self.path, "r")
        except OSError as err:
            raise DatasetFormatError(
                f"{self.path}: cannot be read as HDF5 (truncated or corrupt download?): {err}"
            ) from err

    def _file(self) -> h5py.File:
        if self._h5 is None or self._pid != os.getpid():
            self._h5 = self._open()
            self._pid = os.getpid()
        return self._h5

    def __getstate__(self) -> dict[str, Any]:
        state = self.__dict__.copy()
        state["_h5"] = None
        state["_pid"] = None
        return state

    def _check_layout(self) -> None:
        with self._open() as f:
            problems = layout_problems(f)
            if problems:
                raise DatasetFormatError(f"{self.path}: {problems[0]}")
            n_l = f["labels"].shape[0]
            try:
                raw_labels = f["labels"][()]
                self._speakers = (
                    np.asarray(f["extra/speaker"][()], dtype=np.int64) if "extra/speaker" in f else None
                )
                keys = f["extra/keys"][()] if "extra/keys" in f else None
            except (OSError, ValueError) as err:
                raise DatasetFormatError(f"{self.path}: cannot read labels/extra (corrupt file?): {err}") from err
        if self._speakers is not None and self._speakers.shape[0] != n_l:
            raise DatasetFormatError(
                f"{self.path}: extra/speaker has {self._speakers.shape[0]} entries, labels {n_l}"
            )
        self._n_file = int(n_l)
        names = _decode(keys) if keys is not None else None
        self._labels, errors, notes = label_problems(raw_labels, n_classes=self.n_classes_stated, names=names)
        if errors:
            raise DatasetFormatError(f"{self.path}: {errors[0]}")
        for note in notes:
            warnings.warn(f"{self.path}: {note}", RuntimeWarning, stacklevel=3)
        n_classes = int(self._labels.max()) + 1 if self._labels.size else 0
        if names is not None:
            self._classes = names
        else:
            self._classes = [str(i) for i in range(max(n_classes, self.n_classes_stated or 0))]

    def read_events(self, j: int) -> tuple[np.ndarray, np.ndarray]:
        """Raw spikes of file sample ``j``: ``(times_s float64 [E], units int64 [E])``, checked."""
        f = self._file()
        try:
            t = np.asarray(f["spikes/times"][j], dtype=np.float64)
            u = np.asarray(f["spikes/units"][j], dtype=np.int64)
        except (OSError, ValueError) as err:
            raise DatasetFormatError(f"{self.path}: cannot read sample {j} (corrupt file?): {err}") from err
        self._check_events([t], [u], j)
        return t, u

    def _check_events(self, times: list[np.ndarray], units: list[np.ndarray], first: int,
                      reference_s: float | None = None) -> None:
        """Raise :class:`DatasetFormatError` for the first implausible sample among ``first, first + 1, ...``."""
        n_ch = self.frames.n_channels if self.frames is not None else None
        for k, (t, u) in enumerate(zip(times, units)):
            problems = event_problems(t, u, first + k, n_channels=n_ch, allow_empty=self.allow_empty)
            if problems:
                raise DatasetFormatError(f"{self.path}: {problems[0]}")
        durations = np.array([float(np.max(t)) if len(t) else 0.0 for t in times])
        problems = duration_problems(durations, first, max_duration_s=self.max_duration_s, reference_s=reference_s,
                                     name=type(self).__name__)
        if problems:
            raise DatasetFormatError(f"{self.path}: {problems[0]}")

    # ------------------------------------------------------------------ cache
    def cache_key(self) -> str:
        assert self.frames is not None
        return cache_key(source_identity(self.path), self.frames.cache_key(), {"allow_empty": self.allow_empty})

    def cache_path(self) -> Path:
        return self.cache_dir / f"{self.path.stem}-{self.cache_key()[:20]}.frames"

    def _open_or_build_cache(self, verify: bool) -> FrameCache:
        assert self.frames is not None
        return open_or_build(self.cache_path(), self.cache_key(), self._chunks, frame_shape=(self.frames.n_out,),
                             dtype=self._cache_dtype(), meta=self._cache_meta(), verify=verify,
                             n_samples=self._n_file, what=str(self.path))

    def _cache_dtype(self) -> type:
        assert self.frames is not None
        return np.uint8 if self.frames.binary else np.uint16

    def _cache_meta(self) -> dict[str, Any]:
        assert self.frames is not None
        return {"source": str(self.path), "frames": self.frames.cache_key()}

    def _chunks(self):
        assert self.frames is not None
        dtype = self._cache_dtype()
        with self._open() as f:
            ds_t, ds_u = f["spikes/times"], f["spikes/units"]
            reference: float | None = None  # typical duration: the median of the first chunk
            for a in range(0, self._n_file, _CHUNK):
                b = min(a + _CHUNK, self._n_file)
                try:
                    ts, us = list(ds_t[a:b]), list(ds_u[a:b])
                except (OSError, ValueError) as err:
                    raise DatasetFormatError(
                        f"{self.path}: cannot read samples {a}..{b - 1} (truncated or corrupt file?): {err}"
                    ) from err
                if reference is None:
                    reference = float(np.median([float(np.max(t)) if len(t) else 0.0 for t in ts]))
                self._check_events(ts, us, a, reference)
                counts = np.fromiter((t.size for t in ts), dtype=np.int64, count=b - a)
                offsets = np.zeros(b - a + 1, dtype=np.int64)
                np.cumsum(counts, out=offsets[1:])
                t_cat = np.concatenate(ts) if ts else np.zeros(0)
                u_cat = np.concatenate(us) if us else np.zeros(0, np.int64)
                frames, lengths = self.frames.batch(t_cat, u_cat, offsets, dtype=np.int32)
                if frames.size and frames.max() > np.iinfo(dtype).max:
                    raise DatasetFormatError(
                        f"{self.path}: a bin holds {frames.max()} spikes, more than the cache's uint16 can store; use a smaller dt_ms"
                    )
                yield frames.astype(dtype), lengths, self._labels[a:b]

    def build_cache(self, path: Path, key: str) -> None:
        """Bin every sample of the file and write the cache atomically."""
        assert self.frames is not None
        write_frame_cache(path, key, self._chunks(), frame_shape=(self.frames.n_out,), dtype=self._cache_dtype(),
                          meta=self._cache_meta())

    # ------------------------------------------------------------------ dataset API
    def __len__(self) -> int:
        return int(self.indices.size)

    def __getitem__(self, i: int):
        if not -len(self) <= i < len(self):
            raise IndexError(f"index {i} out of range for a dataset of {len(self)} samples")
        j = int(self.indices[i])
        label: Any = int(self._labels[j])
        if self.frames is None:
            t, u = self.read_events(j)
            item: Any = np.empty(t.size, dtype=EVENT_DTYPE)
            item["t"] = (t * 1e6).astype(np.int64)
            item["x"] = u
            item["p"] = 1
        else:
            if self._cache is not None:
                x = np.asarray(self._cache[j], dtype=np.float32)
            else:
                x = self.frames(*self.read_events(j))
            item = torch.from_numpy(x)
        if self.transform is not None:
            item = self.transform(item)
        if self.target_transform is not None:
            label = self.target_transform(label)
        return item, label

    @property
    def classes(self) -> list[str]:
        """Class names from ``extra/keys`` (or ``"0", "1", …`` when absent)."""
        return list(self._classes)

    @property
    def n_channels(self) -> int:
        """Input channels of each frame (after pooling); source channels with ``frames=None``."""
        return self.frames.n_out if self.frames is not None else 700

    @property
    def labels(self) -> np.ndarray:
        """Labels of the samples in this dataset (after ``indices``), ``[N]`` int64."""
        return self._labels[self.indices]

    @property
    def speakers(self) -> np.ndarray | None:
        """Speaker ids ``[N]`` (``None`` when the file has no ``extra/speaker``)."""
        return None if self._speakers is None else self._speakers[self.indices]

    @property
    def lengths(self) -> np.ndarray | None:
        """Time steps ``T_i`` of each item (from the cache; ``None`` without one)."""
        return None if self._cache is None else self._cache.lengths[self.indices]

    def extra_repr(self) -> str:
        return f"path={str(self.path)!r}, n={len(self)}, frames={self.frames!r}, cached={self._cache is not None}"

    def __repr__(self) -> str:
        return f"{type(self).__name__}({self.extra_repr()})"


def layout_problems(f: h5py.File) -> list[str]:
    """Problems of an open file's layout: missing required datasets, or datasets of different lengths."""
    missing = [k for k in REQUIRED_KEYS if k not in f]
    if missing:
        return [f"missing dataset(s) {missing}; expected the SHD layout with {list(REQUIRED_KEYS)} "
                f"(+ optional extra/keys, extra/speaker), found {sorted(_walk(f))}"]
    n_t, n_u, n_l = (f[k].shape[0] if f[k].shape else -1 for k in REQUIRED_KEYS)
    if not (n_t == n_u == n_l):
        return [f"inconsistent lengths: spikes/times has {n_t} samples, spikes/units {n_u}, labels {n_l} "
                f"(truncated file?)"]
    return []


def _walk(f: h5py.File) -> list[str]:
    names: list[str] = []
    f.visit(names.append)
    return names
