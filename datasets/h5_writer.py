"""Write spike trains in the HDF5 layout of the Spiking Heidelberg Digits (SHD/SSC).

Layout (one row per sample; ``vlen`` = HDF5 variable-length sequence)::

    /spikes/times    [n_samples] vlen float16   spike times in seconds
    /spikes/units    [n_samples] vlen uint16    channel ids (SHD: 0..699)
    /labels          [n_samples] uint16         class ids
    /extra/keys      [n_classes] bytes          class names, ``keys[label]``
    /extra/speaker   [n_samples] uint16         speaker ids

The dtypes follow the published SHD files: times are vlen float16 (tonic issue #321: the float16 times
of ``shd_train.h5`` overflow when multiplied by 1e6 without a cast), units uint16. float16 resolves
about 0.5 ms below 1 s, 1 ms below 2 s and 8 ms below 16 s and overflows above 65504 s; pass
``times_dtype=np.float32`` for long recordings. SHD's optional ``extra/meta_info`` group (speaker
gender/age/height) is not written. Files are written to a temporary name and moved into place with
``os.replace``, so a reader never sees a half-written file.
"""
from __future__ import annotations

import os
from collections.abc import Sequence
from pathlib import Path

import h5py
import numpy as np

from snn.atomic import atomic_path

__all__ = ["write_spike_h5"]

_TIME_DTYPES = (np.dtype(np.float16), np.dtype(np.float32), np.dtype(np.float64))


def _as_key_bytes(keys: Sequence[str | bytes]) -> np.ndarray:
    out = []
    for i, key in enumerate(keys):
        if isinstance(key, bytes):
            out.append(key)
        elif isinstance(key, str):
            out.append(key.encode("utf-8"))
        else:
            raise TypeError(f"keys[{i}] must be str or bytes, got {type(key).__name__}")
    width = max((len(k) for k in out), default=1)
    return np.array(out, dtype=f"S{max(width, 1)}")


def write_spike_h5(
    path: str | os.PathLike,
    times: Sequence[np.ndarray],
    units: Sequence[np.ndarray],
    labels: Sequence[int] | np.ndarray,
    keys: Sequence[str | bytes],
    speakers: Sequence[int] | np.ndarray | None = None,
    *,
    compression: str | None = "gzip",
    compression_opts: int | None = 9,
    times_dtype: np.dtype | type = np.float16,
    attrs: dict[str, str | int | float] | None = None,
) -> Path:
    """Write samples of spikes to ``path`` in SHD's HDF5 layout (see the module docstring).

    Args:
        path: output file; its folder must exist. Replaced atomically if it exists.
        times: one 1-D array of spike times (seconds, >= 0) per sample.
        units: one 1-D array of channel ids (integers in ``[0, 65535]``) per sample, the same length
            as the matching ``times`` entry.
        labels: class id per sample, each in ``[0, len(keys))``.
        keys: class names; ``keys[label]`` names class ``label``. Stored as UTF-8 bytes.
        speakers: speaker id per sample (``[0, 65535]``); ``None`` writes zeros.
        compression: h5py filter for the datasets (``"gzip"``, ``"lzf"`` or ``None``).
        compression_opts: gzip level (0-9); ignored for other filters.
        times_dtype: float16 (as SHD), float32 or float64.
        attrs: optional root attributes (e.g. how the file was made).

    Returns:
        ``Path(path)``.
    """
    n = len(times)
    if len(units) != n:
        raise ValueError(f"units must have one array per sample: len(times)={n}, len(units)={len(units)}")
    labels_arr = np.asarray(labels)
    if labels_arr.shape != (n,):
        raise ValueError(f"labels must have shape ({n},), got {labels_arr.shape}")
    if n and not np.issubdtype(labels_arr.dtype, np.integer):
        raise TypeError(f"labels must be integers, got dtype {labels_arr.dtype}")
    key_bytes = _as_key_bytes(keys)
    if n and (labels_arr.min() < 0 or labels_arr.max() >= len(key_bytes)):
        raise ValueError(
            f"labels must lie in [0, len(keys)={len(key_bytes)}), got range [{labels_arr.min()}, {labels_arr.max()}]"
        )
    if speakers is None:
        speakers_arr = np.zeros(n, dtype=np.uint16)
    else:
        speakers_arr = np.asarray(speakers)
        if speakers_arr.shape != (n,):
            raise ValueError(f"speakers must have shape ({n},), got {speakers_arr.shape}")
        if n and (not np.issubdtype(speakers_arr.dtype, np.integer) or speakers_arr.min() < 0 or speakers_arr.max() > 65535):
            raise ValueError("speakers must be integers in [0, 65535]")
    t_dtype = np.dtype(times_dtype)
    if t_dtype not in _TIME_DTYPES:
        raise ValueError(f"times_dtype must be float16, float32 or float64, got {t_dtype}")
    if compression not in ("gzip", "lzf", None):
        raise ValueError(f"compression must be 'gzip', 'lzf' or None, got {compression!r}")

    times_rows, units_rows = [], []
    for i, (t, u) in enumerate(zip(times, units)):
        t = np.asarray(t)
        u = np.asarray(u)
        if t.ndim != 1 or u.ndim != 1 or t.shape != u.shape:
            raise ValueError(f"sample {i}: times and units must be 1-D of equal length, got {t.shape} and {u.shape}")
        if t.size:
            if not np.all(np.isfinite(t)) or t.min() < 0:
                raise ValueError(f"sample {i}: times must be finite and >= 0 seconds")
            if not np.issubdtype(u.dtype, np.integer) or u.min() < 0 or u.max() > 65535:
                raise ValueError(f"sample {i}: units must be integers in [0, 65535]")
            if t.max() > np.finfo(t_dtype).max:
                raise ValueError(f"sample {i}: time {t.max()} s overflows {t_dtype}; pass times_dtype=np.float32")
        times_rows.append(t.astype(t_dtype))
        units_rows.append(u.astype(np.uint16))

    path = Path(path)
    if not path.parent.is_dir():
        raise FileNotFoundError(f"folder of path does not exist: {path.parent}")
    opts = {"compression": compression}
    if compression == "gzip":
        opts["compression_opts"] = compression_opts
        opts["shuffle"] = True
    with atomic_path(path) as tmp, h5py.File(tmp, "w") as f:
        spikes = f.create_group("spikes")
        for name, rows, dtype in (("times", times_rows, t_dtype), ("units", units_rows, np.dtype(np.uint16))):
            column = np.empty(n, dtype=object)
            column[:] = rows
            spikes.create_dataset(name, data=column, dtype=h5py.vlen_dtype(dtype), **(opts if n else {}))
        f.create_dataset("labels", data=labels_arr.astype(np.uint16), **(opts if n else {}))
        extra = f.create_group("extra")
        extra.create_dataset("keys", data=key_bytes)
        extra.create_dataset("speaker", data=speakers_arr.astype(np.uint16), **(opts if n else {}))
        for k, v in (attrs or {}).items():
            f.attrs[k] = v
    return path
