"""A cochlear front end that turns a waveform into spikes on a tonotopic array of channels.

The Spiking Heidelberg Digits were made (Cramer et al. 2020, the ``lauscher`` chain) with a
hydrodynamic basilar-membrane model, a transmitter-pool hair-cell model and a layer of bushy cells.
This module approximates that chain with cheaper, standard parts, one channel per place on the
basilar membrane:

1. **Basilar membrane** — a gammatone filterbank (``scipy.signal.gammatone``, 4th order IIR, run as
   four second-order sections per channel, each channel scaled to unit gain at its centre frequency)
   whose centre frequencies ``f_c`` are evenly spaced on the ERB-number scale of Glasberg & Moore
   (1990) between ``f_min`` and ``f_max``::

       ERB-number(f) = 21.4 · log10(1 + 0.00437 · f)        (f in Hz)

   Channel 0 has the lowest centre frequency (as in SHD, where low unit ids are apical/low frequency).
2. **Inner hair cell** — half-wave rectification followed by power-law compression
   ``r = max(y, 0) ** compression`` (default ``1/3``, a cube root, Stevens' loudness law), then a
   first-order low-pass envelope with cut-off ``envelope_cutoff`` (Hz)::

       e[n] = e[n-1] + α (r[n] - e[n-1]),     α = 1 - exp(-2π f_cut / f_s)

3. **Auditory nerve / bushy cell** — a leaky integrate-and-fire neuron per channel, integrated with
   the forward-Euler step ``Δt = 1 / f_s``::

       v[n] = v[n-1] + Δt / τ · (-v[n-1] + g · e[n])
       spike when v[n] ≥ 1 and the channel is not refractory; then v ← 0 and the channel stays
       silent for ``refractory`` seconds.

   The gain ``g`` is set from ``threshold_db``: a sine at a channel's centre frequency with peak
   amplitude ``A = 10^(threshold_db / 20)`` (full scale 1.0) drives that channel exactly to threshold,
   ``g · c_p · A^p = 1`` with ``c_p = E[max(sin θ, 0)^p] = Γ((p+1)/2) / (2 √π Γ(p/2 + 1))``, the mean
   of the rectified, compressed sine. Silence gives no spikes; louder sounds give more, at a rate of
   about ``1 / (t_ref + τ ln(I / (I - 1)))`` for a steady drive ``I = g · e > 1``.

The whole chain is deterministic (no random numbers); add noise to the waveform if you want
stochastic responses. Filtering, rectification, envelope and spiking run fused in one compiled
(numba) loop over time per channel, so nothing of size ``[channels, samples]`` is held in memory.
"""
from __future__ import annotations

import functools
import math

import numba
import numpy as np
from scipy import signal, special

__all__ = ["encode", "erb_space", "filterbank_sos"]


def _erb_number(f_hz: np.ndarray | float) -> np.ndarray | float:
    return 21.4 * np.log10(1.0 + 0.00437 * np.asarray(f_hz, dtype=np.float64))


def _erb_number_inv(e: np.ndarray) -> np.ndarray:
    return (10.0 ** (np.asarray(e, dtype=np.float64) / 21.4) - 1.0) / 0.00437


def erb_space(f_min: float, f_max: float, n_channels: int) -> np.ndarray:
    """Centre frequencies (Hz, ascending, shape ``[n_channels]``) evenly spaced in ERB number.

    Uses the Glasberg & Moore (1990) ERB-number scale ``21.4 log10(1 + 0.00437 f)``; the first
    frequency is ``f_min`` and the last ``f_max``.
    """
    if not (isinstance(n_channels, (int, np.integer)) and n_channels >= 1):
        raise ValueError(f"n_channels must be a positive int, got {n_channels!r}")
    if not (0 < f_min < f_max):
        raise ValueError(f"need 0 < f_min < f_max, got f_min={f_min!r}, f_max={f_max!r}")
    if n_channels == 1:
        return np.array([float(f_min)])
    e = np.linspace(_erb_number(f_min), _erb_number(f_max), n_channels)
    return _erb_number_inv(e)


@functools.lru_cache(maxsize=16)
def _filterbank_cached(sample_rate: int, f_min: float, f_max: float, n_channels: int) -> np.ndarray:
    centres = erb_space(f_min, f_max, n_channels)
    banks = np.empty((n_channels, 4, 6), dtype=np.float64)
    for c, fc in enumerate(centres):
        b, a = signal.gammatone(fc, "iir", fs=sample_rate)
        # ``a`` is (1 - 2 Re(p) z^-1 + |p|^2 z^-2)^4: a fourfold pole pair that root finding (and so
        # ``tf2sos``) cannot resolve in floating point. Recover the pole exactly from the
        # coefficients (a1 = -8 Re p, a8 = |p|^8) and keep the numerator's four distinct zeros.
        radius = a[8] ** 0.125 if a[8] > 0 else 0.0
        re_p = -a[1] / 8.0
        im_p = math.sqrt(max(radius * radius - re_p * re_p, 0.0))
        pole = complex(re_p, im_p)
        poles = np.array([pole, pole.conjugate()] * 4)
        sos = signal.zpk2sos(np.roots(b), poles, b[0] / a[0])
        _, h = signal.sosfreqz(sos, worN=[fc], fs=sample_rate)
        sos[0, :3] /= np.abs(h[0])  # exact unit gain at the centre frequency
        banks[c] = sos
    banks.setflags(write=False)
    return banks


def filterbank_sos(sample_rate: int, f_min: float, f_max: float, n_channels: int) -> np.ndarray:
    """Gammatone filterbank as second-order sections, shape ``[n_channels, 4, 6]`` (scipy ``sos`` rows).

    Channel ``c`` is ``scipy.signal.gammatone(f_c, "iir", fs=sample_rate)`` converted with ``tf2sos``
    and rescaled to gain 1 at ``f_c``; ``f_c`` from :func:`erb_space`. Cached per argument set.
    """
    return _filterbank_cached(int(sample_rate), float(f_min), float(f_max), int(n_channels))


@numba.njit(cache=True, nogil=True)
def _encode_kernel(x, sos, compression, alpha, leak, gain, refractory_steps, out_times, out_units):
    """Run filter → rectify/compress → envelope → LIF for every channel; return the spike count.

    x: [N] float64 waveform; sos: [C, S, 6]; out_times / out_units: preallocated int64 buffers
    (sample index, channel). Returns -1 if the buffers overflow.
    """
    n_samples = x.shape[0]
    n_channels = sos.shape[0]
    n_sections = sos.shape[1]
    count = 0
    cap = out_times.shape[0]
    z1 = np.zeros(n_sections)
    z2 = np.zeros(n_sections)
    for c in range(n_channels):
        z1[:] = 0.0
        z2[:] = 0.0
        env = 0.0
        v = 0.0
        refr = 0
        for n in range(n_samples):
            y = x[n]
            for s in range(n_sections):  # direct form II transposed biquads
                b0 = sos[c, s, 0]
                b1 = sos[c, s, 1]
                b2 = sos[c, s, 2]
                a1 = sos[c, s, 4]
                a2 = sos[c, s, 5]
                out = b0 * y + z1[s]
                z1[s] = b1 * y - a1 * out + z2[s]
                z2[s] = b2 * y - a2 * out
                y = out
            r = y if y > 0.0 else 0.0
            if r > 0.0:
                r = r ** compression
            env += alpha * (r - env)
            if refr > 0:
                refr -= 1
                continue
            v += leak * (gain * env - v)
            if v >= 1.0:
                if count >= cap:
                    return -1
                out_times[count] = n
                out_units[count] = c
                count += 1
                v = 0.0
                refr = refractory_steps
    return count


def _check_positive(name: str, value: float) -> None:
    if not (isinstance(value, (int, float, np.integer, np.floating)) and math.isfinite(value) and value > 0):
        raise ValueError(f"{name} must be a finite number > 0, got {value!r}")


def encode(
    waveform: np.ndarray,
    sample_rate: int,
    *,
    n_channels: int = 700,
    f_min: float = 50.0,
    f_max: float | None = None,
    compression: float = 1.0 / 3.0,
    envelope_cutoff: float = 100.0,
    threshold_db: float = -40.0,
    tau: float = 5e-3,
    refractory: float = 2e-3,
    rms_level: float | None = None,
) -> tuple[np.ndarray, np.ndarray]:
    """Turn a mono waveform into spikes on ``n_channels`` tonotopic channels (see the module docstring).

    Args:
        waveform: 1-D array ``[N]``. Floating arrays are used as they are (full scale = 1.0); integer
            arrays (e.g. int16 WAV data) are divided by their dtype's maximum.
        sample_rate: samples per second of ``waveform`` (Hz), > 0.
        n_channels: number of cochlear channels (SHD: 700).
        f_min, f_max: centre frequencies (Hz) of the lowest and highest channel; ``f_max=None`` means
            ``min(8000, 0.45 · sample_rate)``. Must satisfy ``0 < f_min < f_max < sample_rate / 2``.
        compression: exponent of the power-law compression after half-wave rectification, in (0, 1].
        envelope_cutoff: cut-off (Hz) of the first-order low-pass that smooths the rectified signal.
        threshold_db: level (dB re full scale, peak amplitude) of a sine at a channel's centre
            frequency that just brings the channel to fire; lower values give more spikes.
        tau: LIF membrane time constant (s).
        refractory: absolute refractory period (s) after each spike.
        rms_level: if given, the waveform is first scaled to this root-mean-square level (full
            scale 1.0), like the RMS normaliser at the head of SHD's conversion chain; ``None`` keeps
            the input level, so louder input gives more spikes. An all-zero waveform stays silent.

    Returns:
        ``(times, units)``: spike times in seconds (float64, ascending) and channel ids
        (int64 in ``[0, n_channels)``), both of shape ``[n_spikes]``; spikes at the same time are
        ordered by channel.

    Raises:
        ValueError / TypeError: on a non-1-D or non-numeric waveform, NaN/inf samples, a
            non-positive sample rate or inconsistent filterbank / neuron parameters.
    """
    wave = np.asarray(waveform)
    if wave.ndim != 1:
        raise ValueError(f"waveform must be 1-D [samples], got shape {wave.shape}")
    if not (np.issubdtype(wave.dtype, np.floating) or np.issubdtype(wave.dtype, np.integer)):
        raise TypeError(f"waveform must hold real numbers, got dtype {wave.dtype}")
    if isinstance(sample_rate, bool) or not isinstance(sample_rate, (int, np.integer)) or sample_rate <= 0:
        raise ValueError(f"sample_rate must be a positive int (Hz), got {sample_rate!r}")
    if not (isinstance(n_channels, (int, np.integer)) and n_channels >= 1):
        raise ValueError(f"n_channels must be a positive int, got {n_channels!r}")
    if f_max is None:
        f_max = min(8000.0, 0.45 * sample_rate)
    _check_positive("f_min", f_min)
    _check_positive("f_max", f_max)
    if not (f_min < f_max < sample_rate / 2):
        raise ValueError(
            f"need f_min < f_max < sample_rate / 2 = {sample_rate / 2}, got f_min={f_min}, f_max={f_max}"
        )
    if not (0 < compression <= 1):
        raise ValueError(f"compression must be in (0, 1], got {compression!r}")
    for name, value in (("envelope_cutoff", envelope_cutoff), ("tau", tau)):
        _check_positive(name, value)
    if not (isinstance(threshold_db, (int, float, np.integer, np.floating)) and math.isfinite(threshold_db)):
        raise ValueError(f"threshold_db must be a finite number (dB), got {threshold_db!r}")
    if not (math.isfinite(refractory) and refractory >= 0):
        raise ValueError(f"refractory must be a finite number >= 0 (s), got {refractory!r}")
    if rms_level is not None:
        _check_positive("rms_level", rms_level)
    if np.issubdtype(wave.dtype, np.integer):
        x = wave.astype(np.float64) / float(np.iinfo(wave.dtype).max)
    else:
        x = wave.astype(np.float64)
        if not np.all(np.isfinite(x)):
            raise ValueError("waveform contains NaN or infinite samples")
    if rms_level is not None and x.size:
        rms = float(np.sqrt(np.mean(x * x)))
        if rms > 0:
            x = x * (rms_level / rms)

    sos = filterbank_sos(sample_rate, f_min, f_max, n_channels)
    dt = 1.0 / sample_rate
    alpha = 1.0 - math.exp(-2.0 * math.pi * envelope_cutoff * dt)
    leak = min(dt / tau, 1.0)
    refractory_steps = int(round(refractory * sample_rate))
    c_p = special.gamma((compression + 1) / 2) / (2 * math.sqrt(math.pi) * special.gamma(compression / 2 + 1))
    gain = 1.0 / (c_p * 10.0 ** (compression * threshold_db / 20.0))
    # a channel spikes at most once per (refractory_steps + 1) samples
    cap = max(1024, n_channels * (x.shape[0] // (refractory_steps + 1) + 1) // 8)
    while True:
        times_idx = np.empty(cap, dtype=np.int64)
        units = np.empty(cap, dtype=np.int64)
        count = _encode_kernel(x, sos, float(compression), alpha, leak, float(gain), refractory_steps, times_idx, units)
        if count >= 0:
            break
        cap *= 4
    times_idx = times_idx[:count]
    units = units[:count]
    order = np.lexsort((units, times_idx))
    return times_idx[order] * dt, units[order]
