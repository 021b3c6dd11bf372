"""Loader throughput: snn.datasets.SpikeTrainH5 (first epoch, cached epoch) vs tonic's SHD reader + ToFrame.

Writes a synthetic file in the SHD layout (vlen ``spikes/times`` float16 s as in the real files, ``spikes/units`` uint16,
700 channels, ~1 s samples with 5k-15k spikes each), then times, in the same process:

* ``snn first epoch``: dataset construction (reads the HDF5 once, bins every sample, writes the cache)
  plus one pass over all items;
* ``snn cached epoch``: a new dataset over the existing cache (header + CRC check) plus one pass;
* ``tonic``: ``tonic.datasets.SHD`` pointed at the same file (it reopens the HDF5 on every item)
  with ``tonic.transforms.ToFrame(sensor_size=(700, 1, 1), time_window=dt, start_time=0,
  include_incomplete=True)`` (bins from t=0 like ours, so both give the same frames), one pass.

Both produce dense ``[T, 700]`` count frames at the same ``dt``.  Prints a table and the ratios and
writes a JSON report atomically.  Usage: ``python benchmarks/bench_datasets.py --samples 2000 --out r.json``.
"""

from __future__ import annotations

import argparse
import json
import os
import platform
import shutil
import tempfile
import time
from pathlib import Path

import h5py
import numpy as np

from snn.atomic import write_atomic


def write_synthetic_shd(path: Path, n: int, seed: int = 0) -> int:
    rng = np.random.default_rng(seed)
    total = 0
    with h5py.File(path, "w") as f:
        dt = f.create_dataset("spikes/times", (n,), dtype=h5py.vlen_dtype(np.float16))  # as in the real SHD files
        du = f.create_dataset("spikes/units", (n,), dtype=h5py.vlen_dtype(np.uint16))
        for i in range(n):
            e = int(rng.integers(5_000, 15_000))
            dur = rng.uniform(0.7, 1.1)
            dt[i] = np.sort(rng.uniform(0, dur, e)).astype(np.float16)
            du[i] = rng.integers(0, 700, e).astype(np.uint16)
            total += e
        f.create_dataset("labels", data=rng.integers(0, 20, n).astype(np.uint16))
        f.create_dataset("extra/keys", data=np.array([f"c{i}".encode() for i in range(20)]))
        f.create_dataset("extra/speaker", data=rng.integers(0, 10, n).astype(np.uint16))
    return total


def epoch(ds, n: int) -> float:
    t0 = time.perf_counter()
    for i in range(n):
        x, _ = ds[i]
    return time.perf_counter() - t0


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--samples", type=int, default=2000, help="samples in the synthetic file")
    ap.add_argument("--tonic-samples", type=int, default=None, help="items read through tonic (default: all)")
    ap.add_argument("--dt-ms", type=float, default=10.0)
    ap.add_argument("--workdir", type=str, default=None, help="where to put the file and cache (default: temp)")
    ap.add_argument("--out", type=str, default=None, help="JSON report path")
    args = ap.parse_args()
    if args.samples < 1:
        ap.error(f"--samples must be >= 1, got {args.samples}")

    from snn.datasets import SpikeTrainH5, ToFrames

    work = Path(args.workdir or tempfile.mkdtemp(prefix="bench_datasets_"))
    (work / "SHD").mkdir(parents=True, exist_ok=True)
    h5 = work / "SHD" / "shd_train.h5"
    t0 = time.perf_counter()
    n_events = write_synthetic_shd(h5, args.samples)
    print(f"wrote {h5} ({args.samples} samples, {n_events / args.samples:.0f} spikes/sample, "
          f"{h5.stat().st_size / 1e6:.0f} MB) in {time.perf_counter() - t0:.1f} s")
    cache_dir = work / "cache"
    shutil.rmtree(cache_dir, ignore_errors=True)
    frames = ToFrames(dt_ms=args.dt_ms, n_channels=700)

    t0 = time.perf_counter()
    ds = SpikeTrainH5(h5, frames=frames, cache_dir=cache_dir)
    t_build = time.perf_counter() - t0
    t_first = t_build + epoch(ds, len(ds))
    t0 = time.perf_counter()
    ds2 = SpikeTrainH5(h5, frames=frames, cache_dir=cache_dir)
    t_open = time.perf_counter() - t0
    t_cached_iter = epoch(ds2, len(ds2))
    t_cached = t_open + t_cached_iter

    import tonic

    (work / "SHD" / "shd_train.h5.zip").touch()  # tonic only checks that the archive exists
    n_tonic = min(args.tonic_samples or args.samples, args.samples)
    tds = tonic.datasets.SHD(str(work), train=True,
                             transform=tonic.transforms.ToFrame(sensor_size=(700, 1, 1), time_window=args.dt_ms * 1000,
                                                                start_time=0, include_incomplete=True))
    t_tonic = epoch(tds, n_tonic)
    x_ours, x_tonic = ds2[0][0].numpy(), tds[0][0].reshape(-1, 700)
    same = x_tonic.shape[0] <= x_ours.shape[0]

    rows = {
        "snn_first_epoch": args.samples / t_first,
        "snn_cached_epoch": args.samples / t_cached,
        "snn_cached_iter_only": args.samples / t_cached_iter,
        "tonic_shd_toframe": n_tonic / t_tonic,
    }
    print(f"\n{'loader':<28}{'samples/s':>12}{'x tonic':>10}")
    for k, v in rows.items():
        print(f"{k:<28}{v:>12.1f}{v / rows['tonic_shd_toframe']:>10.1f}")
    print(f"\ncache build {t_build:.2f} s, cache open+verify {t_open:.3f} s, cache file "
          f"{ds.cache_path().stat().st_size / 1e6:.0f} MB; tonic timed on {n_tonic} items")
    report = {
        "samples": args.samples, "spikes_per_sample": n_events / args.samples, "dt_ms": args.dt_ms,
        "samples_per_s": rows,
        "ratio_vs_tonic": {k: v / rows["tonic_shd_toframe"] for k, v in rows.items()},
        "seconds": {"cache_build": t_build, "first_epoch": t_first, "cache_open": t_open,
                    "cached_epoch": t_cached, "tonic_epoch": t_tonic, "tonic_items": n_tonic},
        "frames_agree_on_sample0": bool(same and np.array_equal(x_ours[: x_tonic.shape[0]], x_tonic)),
        "machine": {"python": platform.python_version(), "cpu_count": os.cpu_count(), "platform": platform.platform()},
    }
    if args.out:
        out = Path(args.out)
        out.parent.mkdir(parents=True, exist_ok=True)
        write_atomic(out, json.dumps(report, indent=2))
        print(f"wrote {out}")
    if args.workdir is None:
        shutil.rmtree(work, ignore_errors=True)


if __name__ == "__main__":
    main()
