"""Event-camera datasets (DVS128 Gesture, CIFAR10-DVS, N-MNIST) as cached frame tensors ``[T, P, H, W]``.

Events are ``(t µs, x, y, p)`` structured arrays as tonic returns them.  :class:`ToFrames2D`
bins one recording into ``T`` frames of per-pixel, per-polarity counts, in one of two modes that
follow tonic's ``ToFrame`` slicing (windows start at the first event ``t_0``):

* ``n_frames=N`` (what the spike-driven transformers use: T=16 for Gesture, T=10 for CIFAR10-DVS):
  window ``w = ⌊(t_last − t_0) / N⌋`` µs, frame ``k = ⌊(t − t_0) / w⌋``, events with ``k ≥ N`` dropped
  (tonic's ``n_time_bins``);
* ``dt_ms``: frame ``k = ⌊(t − t_0) / (1000·dt)⌋``, ``T = k_max + 1`` (tonic's ``time_window`` with
  ``include_incomplete=True``).

The wrapped tonic dataset is read once, each recording binned and appended to a frame cache
(:mod:`snn.datasets.cache`) keyed by the source files and the binning parameters; items then come
from the memory-mapped cache.  Nothing is downloaded unless ``download=True``; a missing dataset
raises :class:`FileNotFoundError` naming the expected path and archive.
"""

from __future__ import annotations

import os
from collections.abc import Callable, Sequence
from pathlib import Path
from typing import Any

import numpy as np
import torch
from torch.utils.data import Dataset

from snn.datasets.cache import FrameCache, cache_key, default_cache_dir, open_or_build
from snn.datasets.splits import holdout_split

__all__ = ["bin_events_2d", "ToFrames2D", "EventFramesDataset", "DVSGesture", "CIFAR10DVS", "NMNIST"]


def bin_events_2d(
    events: np.ndarray,
    sensor_size: tuple[int, int, int],
    *,
    n_frames: int | None = None,
    dt_ms: float | None = None,
    dtype: np.dtype | type = np.float32,
) -> np.ndarray:
    """Bin DVS events (fields ``t`` µs, ``x``, ``y``, ``p``) into frames ``[T, P, H, W]``.

    ``sensor_size`` is ``(W, H, P)`` like tonic.  Give exactly one of ``n_frames`` and ``dt_ms``.
    An empty recording gives ``max(n_frames, 1)`` zero frames.
    """
    if (n_frames is None) == (dt_ms is None):
        raise ValueError(f"give exactly one of n_frames and dt_ms, got n_frames={n_frames!r}, dt_ms={dt_ms!r}")
    if n_frames is not None and (not isinstance(n_frames, (int, np.integer)) or n_frames < 1):
        raise ValueError(f"n_frames must be an int >= 1, got {n_frames!r}")
    if dt_ms is not None and not dt_ms > 0:
        raise ValueError(f"dt_ms must be > 0, got {dt_ms!r}")
    W, H, P = (int(s) for s in sensor_size)
    names = events.dtype.names or ()
    if not {"t", "x", "y", "p"} <= set(names):
        raise ValueError(f"events need fields t, x, y, p; got {names}")
    if events.size == 0:
        return np.zeros((n_frames or 1, P, H, W), dtype=dtype)
    t = events["t"].astype(np.int64)
    x, y, p = (events[k].astype(np.int64) for k in ("x", "y", "p"))
    if x.min() < 0 or x.max() >= W or y.min() < 0 or y.max() >= H or p.min() < 0 or p.max() >= P:
        raise ValueError(
            f"events outside sensor_size (W={W}, H={H}, P={P}): x in [{x.min()}, {x.max()}], "
            f"y in [{y.min()}, {y.max()}], p in [{p.min()}, {p.max()}]"
        )
    t0 = t.min()
    if n_frames is not None:
        window = max((int(t.max()) - int(t0)) // n_frames, 1)
        k = (t - t0) // window
        keep = k < n_frames
        k, x, y, p = k[keep], x[keep], y[keep], p[keep]
        T = n_frames
    else:
        k = np.floor((t - t0) / (dt_ms * 1000.0)).astype(np.int64)
        T = int(k.max()) + 1
    flat = ((k * P + p) * H + y) * W + x
    return np.bincount(flat, minlength=T * P * H * W).reshape(T, P, H, W).astype(dtype, copy=False)


class ToFrames2D:
    """Event-camera binning transform: events → ``[T, P, H, W]`` float32 counts (see :func:`bin_events_2d`).

    Args:
        sensor_size: ``(W, H, P)``.
        n_frames: fixed number of frames per recording (choose for fixed-T models).
        dt_ms: fixed frame duration instead (variable ``T``; batch with :func:`pad_collate`).
    """

    def __init__(self, sensor_size: tuple[int, int, int], n_frames: int | None = None, dt_ms: float | None = None) -> None:
        if len(tuple(sensor_size)) != 3:
            raise ValueError(f"sensor_size must be (W, H, P), got {sensor_size!r}")
        if (n_frames is None) == (dt_ms is None):
            raise ValueError(f"give exactly one of n_frames and dt_ms, got n_frames={n_frames!r}, dt_ms={dt_ms!r}")
        if n_frames is not None and (not isinstance(n_frames, int) or n_frames < 1):
            raise ValueError(f"n_frames must be an int >= 1, got {n_frames!r}")
        if dt_ms is not None and not dt_ms > 0:
            raise ValueError(f"dt_ms must be > 0, got {dt_ms!r}")
        self.sensor_size = tuple(int(s) for s in sensor_size)
        self.n_frames = n_frames
        self.dt_ms = None if dt_ms is None else float(dt_ms)

    @property
    def frame_shape(self) -> tuple[int, int, int]:
        W, H, P = self.sensor_size
        return (P, H, W)

    def cache_key(self) -> dict[str, Any]:
        return {"kind": "ToFrames2D", "sensor_size": list(self.sensor_size), "n_frames": self.n_frames, "dt_ms": self.dt_ms}

    def __call__(self, events: np.ndarray, dtype=np.float32) -> np.ndarray:
        return bin_events_2d(events, self.sensor_size, n_frames=self.n_frames, dt_ms=self.dt_ms, dtype=dtype)

    def __repr__(self) -> str:
        return f"ToFrames2D(sensor_size={self.sensor_size}, n_frames={self.n_frames}, dt_ms={self.dt_ms})"


class EventFramesDataset(Dataset):
    """Cached frames over any event source (a sequence of ``(events, label)``, e.g. a tonic dataset).

    Args:
        source: ``len(source)`` and ``source[i] -> (events, label)``.
        frames: the binning transform.
        identity: JSON-able description of the source's files for the cache key (paths, sizes, mtimes).
        name: file-name stem of the cache.
        indices: optional subset of source indices.
        cache, cache_dir, transform, target_transform, verify_cache: as in :class:`SpikeTrainH5`.

    Items: ``(x float32 [T, P, H, W], label int)``.
    """

    def __init__(
        self,
        source: Any,
        frames: ToFrames2D,
        *,
        identity: Any,
        name: str = "events",
        indices: Sequence[int] | np.ndarray | None = None,
        cache: bool = True,
        cache_dir: str | os.PathLike | None = None,
        transform: Callable | None = None,
        target_transform: Callable | None = None,
        verify_cache: bool = True,
    ) -> None:
        if not isinstance(frames, ToFrames2D):
            raise TypeError(f"frames must be a ToFrames2D, got {type(frames).__name__}")
        self.source, self.frames, self.name = source, frames, name
        self.transform, self.target_transform = transform, target_transform
        n = len(source)
        self.indices = np.arange(n, dtype=np.int64) if indices is None else np.asarray(indices, dtype=np.int64)
        self.cache_dir = Path(cache_dir) if cache_dir is not None else default_cache_dir()
        self._key = cache_key(identity, frames.cache_key(), n)
        self._labels: np.ndarray | None = None
        self._cache: FrameCache | None = None
        if cache:
            self._cache = self._open_or_build(verify_cache)
            self._labels = self._cache.labels

    def cache_path(self) -> Path:
        return self.cache_dir / f"{self.name}-{self._key[:20]}.frames"

    def _open_or_build(self, verify: bool) -> FrameCache:
        def chunks():
            for i in range(len(self.source)):
                ev, y = self.source[i]
                f = self.frames(ev, dtype=np.int64)
                if f.size and f.max() > np.iinfo(np.uint16).max:
                    raise ValueError(f"{self.name} sample {i}: a pixel holds {f.max()} events, more than uint16 holds")
                yield f.astype(np.uint16), np.array([f.shape[0]]), np.array([int(y)])

        return open_or_build(self.cache_path(), self._key, chunks, frame_shape=self.frames.frame_shape,
                             dtype=np.uint16, meta={"source": self.name, "frames": self.frames.cache_key()},
                             verify=verify, n_samples=len(self.source), what=self.name)

    def __len__(self) -> int:
        return int(self.indices.size)

    def __getitem__(self, i: int):
        j = int(self.indices[i])
        if self._cache is not None:
            x = torch.from_numpy(np.asarray(self._cache[j], dtype=np.float32))
            label: Any = int(self._labels[j])
        else:
            ev, label = self.source[j]
            x = torch.from_numpy(self.frames(ev))
            label = int(label)
        if self.transform is not None:
            x = self.transform(x)
        if self.target_transform is not None:
            label = self.target_transform(label)
        return x, label

    @property
    def labels(self) -> np.ndarray:
        if self._labels is None:
            return np.asarray([int(self.source[int(j)][1]) for j in self.indices])
        return self._labels[self.indices]

    def __repr__(self) -> str:
        return f"{type(self).__name__}(n={len(self)}, frames={self.frames!r}, cached={self._cache is not None})"


def _source_identity(files: Sequence[str]) -> dict[str, Any]:
    """Cache identity of a tonic dataset: its file list with sizes and mtimes, hashed to a digest."""
    import hashlib

    h = hashlib.sha256()
    for f in files:
        st = os.stat(f)
        h.update(f"{os.path.abspath(f)}|{st.st_size}|{st.st_mtime_ns}\n".encode())
    return {"n_files": len(files), "digest": h.hexdigest()}


class _TonicVision(EventFramesDataset):
    tonic_name = ""
    sensor_size: tuple[int, int, int] = (0, 0, 0)
    archives: dict[str, str] = {}
    default_frames = 16
    url = ""

    def __init__(
        self,
        root: str | os.PathLike,
        split: str = "train",
        *,
        frames: ToFrames2D | None = None,
        download: bool = False,
        cache: bool = True,
        cache_dir: str | os.PathLike | None = None,
        transform: Callable | None = None,
        target_transform: Callable | None = None,
        verify_cache: bool = True,
        **tonic_kwargs: Any,
    ) -> None:
        if split not in self.archives:
            raise ValueError(f"split must be one of {sorted(self.archives)} for {type(self).__name__}, got {split!r}")
        self.root, self.split = Path(root).expanduser(), split
        folder = self.root / self.tonic_name
        archive = folder / self.archives[split]
        if not archive.is_file() and not download:
            raise FileNotFoundError(
                f"{type(self).__name__}: {archive} not found. Download {self.archives[split]} from {self.url} "
                f"into {folder} (tonic's layout), or pass download=True to fetch it through "
                f"tonic.datasets.{self.tonic_name} when a network is available."
            )
        src = self._tonic(str(self.root), split, **tonic_kwargs)
        frames = frames or ToFrames2D(self.sensor_size, n_frames=self.default_frames)
        super().__init__(
            src, frames, identity=[self.tonic_name, split, tonic_kwargs, _source_identity(src.data)],
            name=f"{self.tonic_name}-{self._source_split(split)}", indices=self._indices(src, split),
            cache=cache, cache_dir=cache_dir, transform=transform, target_transform=target_transform,
            verify_cache=verify_cache,
        )

    def _tonic(self, root: str, split: str, **kw: Any):
        raise NotImplementedError

    def _source_split(self, split: str) -> str:
        return split

    def _indices(self, src: Any, split: str) -> np.ndarray | None:
        return None

    @property
    def n_channels(self) -> int:
        """Input channels of a frame (the polarities)."""
        return self.frames.frame_shape[0]

    @property
    def classes(self) -> list[str]:
        c = getattr(self.source, "classes", None)
        if isinstance(c, dict):
            return [k for k, _ in sorted(c.items(), key=lambda kv: kv[1])]
        return list(c) if c is not None else [str(i) for i in range(int(self.labels.max()) + 1)]


class DVSGesture(_TonicVision):
    """DVS128 Gesture (Amir et al., 2017): 11 gestures, 128×128, 2 polarities; frames ``[T, 2, 128, 128]``.

    Default binning: ``T = 16`` frames per recording (the spike-driven transformer's setting).
    Splits ``"train"`` / ``"test"`` (the official user split).
    """

    tonic_name = "DVSGesture"
    sensor_size = (128, 128, 2)
    archives = {"train": "ibmGestureTrain.tar.gz", "test": "ibmGestureTest.tar.gz"}
    default_frames = 16
    url = "https://research.ibm.com/interactive/dvsgesture/ (or tonic's mirror)"

    def _tonic(self, root: str, split: str, **kw: Any):
        import tonic

        return tonic.datasets.DVSGesture(root, train=split == "train", **kw)


class CIFAR10DVS(_TonicVision):
    """CIFAR10-DVS (Li et al., 2017): 10 classes, 128×128, 2 polarities; frames ``[T, 2, 128, 128]``.

    The set has no official split: ``"train"`` / ``"test"`` are a class-stratified 90 % / 10 % split
    seeded with 0 (the usual protocol); ``"all"`` is every recording.  Default ``T = 10``.
    """

    tonic_name = "CIFAR10DVS"
    sensor_size = (128, 128, 2)
    archives = {"train": "CIFAR10DVS.zip", "test": "CIFAR10DVS.zip", "all": "CIFAR10DVS.zip"}
    default_frames = 10
    url = "https://figshare.com/articles/dataset/CIFAR10-DVS_New/4724671"

    def _tonic(self, root: str, split: str, **kw: Any):
        import tonic

        return tonic.datasets.CIFAR10DVS(root, **kw)

    def _source_split(self, split: str) -> str:
        return "all"

    def _indices(self, src: Any, split: str) -> np.ndarray | None:
        if split == "all":
            return None
        tr, te = holdout_split(np.asarray(src.targets), None, fraction=0.1, by="fraction", seed=0)
        return tr if split == "train" else te


class NMNIST(_TonicVision):
    """N-MNIST (Orchard et al., 2015): 10 digits, 34×34, 2 polarities; frames ``[T, 2, 34, 34]``.

    Splits ``"train"`` / ``"test"``; extra keyword arguments (``first_saccade_only``) go to tonic.
    Default ``T = 10`` frames.
    """

    tonic_name = "NMNIST"
    sensor_size = (34, 34, 2)
    archives = {"train": "train.zip", "test": "test.zip"}
    default_frames = 10
    url = "https://www.garrickorchard.com/datasets/n-mnist"

    def _tonic(self, root: str, split: str, **kw: Any):
        import tonic

        return tonic.datasets.NMNIST(root, train=split == "train", **kw)
