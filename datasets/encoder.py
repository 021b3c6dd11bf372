"""Audio → spikes with named settings: the conditioning (silence trimming, resampling, level) and the cochlea
parameters that decide how many spikes a recording gives, kept together so data and models stay compatible.

A model trained on spikes from one set of settings does poorly on spikes from another (the embedded set's
model scores 0.88 on utterances encoded with its own settings and 0.62 on the same utterances encoded with the
old encoder defaults, which give ~20× the spikes). So the encoder works from named presets, the file records
the preset and every setting (root attributes ``encoder_preset`` and ``encoder_settings``, JSON), and
:func:`snn.datasets.encoding.check_compatible` warns when data encoded differently meet.

==================  ===========================================================================================
preset              what
==================  ===========================================================================================
``spoken-digits``   the embedded spoken-digits set's chain (:mod:`snn.datasets.spoken_digits_make`) for a clean
                    recording: trim leading/trailing silence (5-ms frames within 40 dB of the loudest), resample
                    to 16 kHz, scale to RMS 0.05, 700 channels 50 Hz–7 kHz, τ 20 ms, refractory 30 ms, threshold
                    −35 dB. Byte-identical spikes to ``make-digits`` for the same waveform without its random
                    onset, level and noise. The default: use it to evaluate the embedded set's models.
``shd-like``        denser responses closer to SHD's rates: τ 10 ms, refractory 10 ms, threshold −40 dB, same
                    trimming, resampling, level and filterbank (about 3× the spikes of ``spoken-digits`` on
                    speech, see the docs of :data:`PRESETS`).
==================  ===========================================================================================

:func:`encode_waveform` runs one clip; :func:`encode_many` runs many in worker processes with a progress bar
(the cochlea runs at roughly 0.5 s per second of audio on one core).
"""
from __future__ import annotations

import dataclasses
import json
import math
import multiprocessing
import os
from dataclasses import dataclass
from typing import Callable, Sequence

import numpy as np
from scipy import signal

from snn.datasets.cochlea import encode

__all__ = ["EncoderSettings", "PRESETS", "DEFAULT_PRESET", "preset", "trim_silence", "resample", "scale_to_rms",
           "condition", "encode_waveform", "encode_many"]


@dataclass(frozen=True)
class EncoderSettings:
    """Every setting that shapes the spikes of a recording (see :func:`snn.datasets.cochlea.encode` for the cochlea's).

    Attributes:
        sample_rate: resample to this rate (Hz) first; ``None`` keeps each file's rate.
        trim_db: cut leading/trailing silence: keep from the first to the last 5-ms frame whose energy is
            within ``trim_db`` (negative dB) of the loudest frame; ``None`` keeps everything.
        rms_level: scale the (trimmed, resampled) waveform to this RMS level (full scale 1.0); ``None`` keeps it.
        n_channels, f_min, f_max, compression, envelope_cutoff, threshold_db, tau, refractory: the cochlea's.
    """

    sample_rate: int | None = 16000
    trim_db: float | None = -40.0
    rms_level: float | None = 0.05
    n_channels: int = 700
    f_min: float = 50.0
    f_max: float | None = 7000.0
    compression: float = 1.0 / 3.0
    envelope_cutoff: float = 100.0
    threshold_db: float = -35.0
    tau: float = 20e-3
    refractory: float = 30e-3

    def __post_init__(self) -> None:
        if self.sample_rate is not None and (not isinstance(self.sample_rate, int) or self.sample_rate <= 0):
            raise ValueError(f"sample_rate: expected a positive int (Hz) or None, got {self.sample_rate!r}")
        if self.trim_db is not None and not (math.isfinite(self.trim_db) and self.trim_db < 0):
            raise ValueError(f"trim_db: expected a negative number of dB or None, got {self.trim_db!r}")
        if self.rms_level is not None and not (math.isfinite(self.rms_level) and self.rms_level > 0):
            raise ValueError(f"rms_level: expected a number > 0 or None, got {self.rms_level!r}")

    def to_json(self) -> str:
        return json.dumps(dataclasses.asdict(self), sort_keys=True)

    @classmethod
    def from_json(cls, text: str) -> "EncoderSettings":
        return cls(**json.loads(text))


# The spoken-digits preset is the single source of the embedded set's cochlea settings: DigitsConfig's
# defaults are read from it, so the two cannot drift apart.
PRESETS: dict[str, EncoderSettings] = {
    "spoken-digits": EncoderSettings(),
    "shd-like": EncoderSettings(threshold_db=-40.0, tau=10e-3, refractory=10e-3),
}
DEFAULT_PRESET = "spoken-digits"


def preset(name: str) -> EncoderSettings:
    """The settings of a named preset; an unknown name is an error listing the known ones."""
    if name not in PRESETS:
        raise ValueError(f"preset: expected one of {sorted(PRESETS)}, got {name!r}")
    return PRESETS[name]


def trim_silence(x: np.ndarray, rate: int, rel_db: float = -40.0) -> np.ndarray:
    """Cut leading/trailing silence: keep from the first to the last 5-ms frame within ``rel_db`` of the loudest."""
    frame = max(1, rate // 200)
    n = len(x) // frame
    if n == 0:
        return x
    energy = (x[: n * frame].reshape(n, frame) ** 2).mean(axis=1)
    loud = np.flatnonzero(energy > energy.max() * 10 ** (rel_db / 10))
    if loud.size == 0:  # all-zero input
        return x
    return x[loud[0] * frame : (loud[-1] + 1) * frame]


def resample(x: np.ndarray, rate: int, target: int) -> np.ndarray:
    """Polyphase resampling from ``rate`` to ``target`` Hz (``scipy.signal.resample_poly``)."""
    if rate == target:
        return x
    g = int(np.gcd(int(rate), int(target)))
    return signal.resample_poly(x, target // g, rate // g)


def scale_to_rms(x: np.ndarray, level: float, rms_of: np.ndarray | None = None) -> np.ndarray:
    """``x`` scaled so that ``rms_of`` (default ``x``) has RMS ``level``; the arithmetic of the spoken-digits
    generator (``level / (rms + 1e-12)``), so an all-zero input stays zero."""
    ref = x if rms_of is None else rms_of
    return x * (level / (np.sqrt(np.mean(ref**2)) + 1e-12))


def condition(wave: np.ndarray, rate: int, settings: EncoderSettings) -> tuple[np.ndarray, int]:
    """Trim, resample and level a float waveform as ``settings`` say; returns ``(waveform, rate)``."""
    x = np.asarray(wave, dtype=np.float64)
    if settings.trim_db is not None:
        x = trim_silence(x, rate, settings.trim_db)
    if settings.sample_rate is not None:
        x = resample(x, rate, settings.sample_rate)
        rate = settings.sample_rate
    if settings.rms_level is not None and x.size:
        x = scale_to_rms(x, settings.rms_level)
    return x, rate


def cochlea_kwargs(settings: EncoderSettings) -> dict:
    """The keyword arguments of :func:`snn.datasets.cochlea.encode` that ``settings`` fix."""
    return dict(n_channels=settings.n_channels, f_min=settings.f_min, f_max=settings.f_max,
                compression=settings.compression, envelope_cutoff=settings.envelope_cutoff,
                threshold_db=settings.threshold_db, tau=settings.tau, refractory=settings.refractory)


def encode_waveform(wave: np.ndarray, rate: int, settings: EncoderSettings) -> tuple[np.ndarray, np.ndarray]:
    """Spikes of one recording: :func:`condition`, then the cochlea. Returns ``(times s, units)``."""
    x, rate = condition(wave, rate, settings)
    return encode(x, rate, **cochlea_kwargs(settings))


def _encode_job(job: tuple[Callable, object, EncoderSettings]) -> tuple[np.ndarray, np.ndarray]:
    load, item, settings = job
    wave, rate = load(item)
    try:
        return encode_waveform(wave, rate, settings)
    except ValueError as err:
        raise ValueError(f"{item}: {err}") from err


def encode_many(items: Sequence, load: Callable[[object], tuple[np.ndarray, int]], settings: EncoderSettings, *,
                processes: int | None = None, progress: bool = False) -> list[tuple[np.ndarray, np.ndarray]]:
    """Encode many recordings, in order, in ``processes`` worker processes (default: all CPUs).

    Args:
        items: what ``load`` takes (e.g. file paths); ``load(item) -> (float waveform, sample rate)`` runs in
            the worker, so only paths travel to the workers and only spikes come back.
        settings: the encoder settings.
        processes: worker processes; 1 runs in this process. The output does not depend on it.
        progress: show a tqdm progress bar (one tick per recording).

    Errors raised for a recording (e.g. a ``ValueError`` from the cochlea) propagate, in order.
    """
    jobs = [(load, item, settings) for item in items]
    n_proc = max(1, min(processes or os.cpu_count() or 1, len(jobs)))
    bar = _progress(len(jobs), progress)
    try:
        if n_proc == 1:
            out = []
            for job in jobs:
                out.append(_encode_job(job))
                bar.update(1)
            return out
        # fork: the workers inherit the compiled numba kernel and the filterbank cache
        with multiprocessing.get_context("fork").Pool(n_proc) as pool:
            out = []
            for result in pool.imap(_encode_job, jobs, chunksize=max(1, min(16, len(jobs) // (4 * n_proc)))):
                out.append(result)
                bar.update(1)
            return out
    finally:
        bar.close()


def _progress(total: int, enabled: bool):
    from tqdm import tqdm

    return tqdm(total=total, unit="clip", disable=not enabled)
