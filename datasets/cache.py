"""On-disk cache of binned frames: one file per (source file, preprocessing) pair.

Layout of a cache file (little-endian)::

    bytes [0, 4096)          magic ``SNNFRM02``, CRC-32 of the JSON (8 hex digits), JSON header
                             (padded with spaces)
    bytes [4096, 4096+D)     frames, C-contiguous ``[ΣT_i, *frame_shape]`` of ``header["dtype"]``
    then                     ``offsets`` int64 ``[N+1]``: sample ``i`` is rows ``offsets[i]:offsets[i+1]``
    then                     ``labels`` int64 ``[N]``

The header holds the cache key (a hash of the source identity and every preprocessing
parameter), the shapes, a CRC-32 of the frame bytes and a CRC-32 of the offsets and labels, so
every byte the reader trusts is covered by a checksum: a flipped bit in the offsets would swap
samples' frames, one in the labels would change a class, silently.  The file is written to a
temporary name in the same folder and moved into place with ``os.replace`` only when complete,
so readers never see a half-written cache; :func:`open_or_build` removes the temporary files of
builders that were killed.  On open the magic, the header's checksum, the key, shapes and file size
are checked, and the offsets and labels against their checksum (cheap: 16 bytes per sample);
``verify=True`` also checks the frames.  Anything that does not match is reported as
:class:`CacheError`, which :func:`open_or_build` turns into a warning and a rebuild.  Data are read
through ``np.memmap``, so an epoch over the cache touches only the pages it needs.
"""

from __future__ import annotations

import hashlib
import json
import os
import warnings
import zlib
from collections.abc import Callable, Iterable
from pathlib import Path
from typing import Any

import numpy as np

from snn.atomic import atomic_open, remove_stale_temps

__all__ = ["CacheError", "FrameCache", "cache_key", "source_identity", "default_cache_dir", "write_frame_cache",
           "open_or_build"]

_MAGIC = b"SNNFRM02"
_HEADER_BYTES = 4096
_FORMAT_VERSION = 2


class CacheError(RuntimeError):
    """A cache file is missing, stale or corrupt (the caller rebuilds it)."""


def default_cache_dir() -> Path:
    """``$SNN_CACHE_DIR`` if set, else ``$XDG_CACHE_HOME/snn-sim/frames`` (``~/.cache/snn-sim/frames``)."""
    env = os.environ.get("SNN_CACHE_DIR")
    if env:
        return Path(env).expanduser()
    base = os.environ.get("XDG_CACHE_HOME") or os.path.join(os.path.expanduser("~"), ".cache")
    return Path(base) / "snn-sim" / "frames"


def source_identity(path: str | os.PathLike) -> dict[str, Any]:
    """Identity of a source file for cache keys: absolute path, size in bytes and mtime (ns)."""
    p = Path(path).resolve()
    st = p.stat()
    return {"path": str(p), "size": st.st_size, "mtime_ns": st.st_mtime_ns}


def cache_key(*parts: Any) -> str:
    """Stable SHA-256 (hex, 32 chars) of JSON-serialisable parts, including the format version."""
    blob = json.dumps([_FORMAT_VERSION, *parts], sort_keys=True, default=str).encode()
    return hashlib.sha256(blob).hexdigest()[:32]


def write_frame_cache(
    path: str | os.PathLike,
    key: str,
    chunks: Iterable[tuple[np.ndarray, np.ndarray, np.ndarray]],
    *,
    frame_shape: tuple[int, ...],
    dtype: np.dtype | type,
    meta: dict[str, Any] | None = None,
) -> None:
    """Stream ``(frames [ΣT, *frame_shape], lengths [n], labels [n])`` chunks into a cache file, atomically.

    Raises whatever the chunk iterator raises; in that case no file is left behind.
    """
    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    dtype = np.dtype(dtype)
    with atomic_open(path, "wb", fsync=True) as fh:
        fh.write(b"\0" * _HEADER_BYTES)
        crc = 0
        lengths: list[np.ndarray] = []
        labels: list[np.ndarray] = []
        for frames, lens, labs in chunks:
            frames = np.ascontiguousarray(frames, dtype=dtype)
            if frames.shape[1:] != tuple(frame_shape) or frames.shape[0] != int(np.sum(lens)):
                raise ValueError(
                    f"cache chunk has shape {frames.shape} for lengths summing to {int(np.sum(lens))}, "
                    f"expected [ΣT, {', '.join(map(str, frame_shape))}]"
                )
            buf = memoryview(frames).cast("B")
            crc = zlib.crc32(buf, crc)
            fh.write(buf)
            lengths.append(np.asarray(lens, dtype=np.int64))
            labels.append(np.asarray(labs, dtype=np.int64).reshape(-1))
            if labels[-1].size != lengths[-1].size:
                raise ValueError(f"cache chunk has {labels[-1].size} labels for {lengths[-1].size} samples")
        all_len = np.concatenate(lengths) if lengths else np.zeros(0, np.int64)
        offsets = np.zeros(all_len.size + 1, dtype=np.int64)
        np.cumsum(all_len, out=offsets[1:])
        index = offsets.tobytes() + (np.concatenate(labels) if labels else np.zeros(0, np.int64)).tobytes()
        fh.write(index)
        header = {
            "version": _FORMAT_VERSION,
            "key": key,
            "dtype": dtype.str,
            "frame_shape": list(frame_shape),
            "n_samples": int(all_len.size),
            "n_rows": int(offsets[-1]),
            "crc32": crc,
            "index_crc32": zlib.crc32(index),
            "meta": meta or {},
        }
        body = json.dumps(header).encode()
        blob = _MAGIC + f"{zlib.crc32(body):08x}".encode() + body
        if len(blob) > _HEADER_BYTES:
            raise ValueError(f"cache header too large ({len(blob)} bytes > {_HEADER_BYTES})")
        fh.seek(0)
        fh.write(blob.ljust(_HEADER_BYTES, b" "))


class FrameCache:
    """Read-only view of a cache file: ``cache[i]`` → ``np.ndarray [T_i, *frame_shape]`` (memory-mapped).

    Args:
        path: cache file.
        key: expected cache key; a different key raises :class:`CacheError`.
        verify: recompute the CRC-32 of the frame bytes (reads the whole file once); the header, offsets and
            labels are always checked.

    The memory map is opened lazily and reopened after a fork (DataLoader workers).
    """

    def __init__(self, path: str | os.PathLike, key: str, *, verify: bool = False) -> None:
        self.path = Path(path)
        if not self.path.is_file():
            raise CacheError(f"no cache file at {self.path}")
        try:
            with open(self.path, "rb") as fh:
                raw = fh.read(_HEADER_BYTES)
            if len(raw) < _HEADER_BYTES or not raw[:6] == _MAGIC[:6]:
                raise CacheError(f"cache file {self.path} has no valid header (truncated or not a cache file)")
            if not raw.startswith(_MAGIC):
                raise CacheError(f"cache file {self.path} is stale (format {raw[:8].decode(errors='replace')}, "
                                 f"expected {_MAGIC.decode()})")
            body = raw[len(_MAGIC) + 8:].rstrip(b" ")
            if raw[len(_MAGIC):len(_MAGIC) + 8] != f"{zlib.crc32(body):08x}".encode():
                raise CacheError(f"cache file {self.path}: its header fails its CRC-32 check (corrupt)")
            header = json.loads(body.decode())
        except (UnicodeDecodeError, json.JSONDecodeError) as err:
            raise CacheError(f"cache file {self.path} has an unreadable header: {err}") from err
        if header.get("version") != _FORMAT_VERSION or header.get("key") != key:
            raise CacheError(f"cache file {self.path} is stale (key {header.get('key')!r}, expected {key!r})")
        self.dtype = np.dtype(header["dtype"])
        self.frame_shape = tuple(int(s) for s in header["frame_shape"])
        self.n_samples = int(header["n_samples"])
        self.n_rows = int(header["n_rows"])
        self.meta = header.get("meta", {})
        row_bytes = self.dtype.itemsize * int(np.prod(self.frame_shape, dtype=np.int64))
        self._data_bytes = self.n_rows * row_bytes
        expected = _HEADER_BYTES + self._data_bytes + 8 * (2 * self.n_samples + 1)
        actual = self.path.stat().st_size
        if actual != expected:
            raise CacheError(f"cache file {self.path} has {actual} bytes, expected {expected} (truncated?)")
        with open(self.path, "rb") as fh:
            fh.seek(_HEADER_BYTES + self._data_bytes)
            index = fh.read(8 * (2 * self.n_samples + 1))
        if zlib.crc32(index) != header.get("index_crc32"):
            raise CacheError(f"cache file {self.path}: its sample offsets or labels fail their CRC-32 check (corrupt)")
        self.offsets = np.frombuffer(index, dtype=np.int64, count=self.n_samples + 1)
        self.labels = np.frombuffer(index, dtype=np.int64, offset=8 * (self.n_samples + 1))
        if self.offsets[0] != 0 or self.offsets[-1] != self.n_rows or np.any(np.diff(self.offsets) < 0):
            raise CacheError(f"cache file {self.path} has inconsistent sample offsets")
        if verify:
            crc = 0
            with open(self.path, "rb") as fh:
                fh.seek(_HEADER_BYTES)
                left = self._data_bytes
                while left:
                    block = fh.read(min(left, 1 << 24))
                    if not block:
                        break
                    crc = zlib.crc32(block, crc)
                    left -= len(block)
            if crc != header["crc32"]:
                raise CacheError(f"cache file {self.path}: its frames fail their CRC-32 check (corrupt)")
        self._mm: np.ndarray | None = None
        self._pid: int | None = None

    @property
    def lengths(self) -> np.ndarray:
        """Per-sample number of time steps ``T_i``, ``[N]`` int64."""
        return np.diff(self.offsets)

    @property
    def data(self) -> np.ndarray:
        """All frames, ``[ΣT_i, *frame_shape]`` memory map."""
        if self._mm is None or self._pid != os.getpid():
            if self.n_rows == 0:
                self._mm = np.zeros((0, *self.frame_shape), dtype=self.dtype)
            else:
                self._mm = np.memmap(self.path, dtype=self.dtype, mode="r", offset=_HEADER_BYTES,
                                     shape=(self.n_rows, *self.frame_shape))
            self._pid = os.getpid()
        return self._mm

    def __len__(self) -> int:
        return self.n_samples

    def __getitem__(self, i: int) -> np.ndarray:
        return self.data[self.offsets[i]:self.offsets[i + 1]]

    def __getstate__(self) -> dict[str, Any]:
        state = self.__dict__.copy()
        state["_mm"] = None
        state["_pid"] = None
        return state


def open_or_build(
    path: str | os.PathLike,
    key: str,
    chunks: Callable[[], Iterable[tuple[np.ndarray, np.ndarray, np.ndarray]]],
    *,
    frame_shape: tuple[int, ...],
    dtype: np.dtype | type,
    meta: dict[str, Any] | None = None,
    verify: bool = True,
    n_samples: int | None = None,
    what: str = "",
) -> FrameCache:
    """Open the cache at ``path``, or (re)build it from ``chunks()`` when missing, stale or corrupt.

    Args:
        path, key: the cache file and its expected key.
        chunks: called only when a build is needed; yields chunks as for :func:`write_frame_cache`.
        frame_shape, dtype, meta: as for :func:`write_frame_cache`.
        verify: check the frames' checksum of an existing cache (header, offsets and labels are always checked).
        n_samples: expected number of samples; a cache with another count is rebuilt.
        what: the source, for the rebuild warning.

    Temporary files that killed builders left in the cache folder are removed first (never a live builder's).
    """
    path = Path(path)
    remove_stale_temps(path.parent, "*.frames")
    if path.exists():
        try:
            cache = FrameCache(path, key, verify=verify)
            if n_samples is None or len(cache) == n_samples:
                return cache
            reason = f"has {len(cache)} samples, the source has {n_samples}"
        except CacheError as err:
            reason = str(err)
        warnings.warn(f"rebuilding frame cache for {what or path.name}: {reason}", RuntimeWarning, stacklevel=3)
    write_frame_cache(path, key, chunks(), frame_shape=frame_shape, dtype=dtype, meta=meta)
    return FrameCache(path, key)
