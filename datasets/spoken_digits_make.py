"""Generator of the embedded *spoken digits* dataset: SHD's recipe on synthetic speech.

The Spiking Heidelberg Digits are the digits zero to nine spoken in English and German (20 classes)
by 12 speakers, passed through a cochlea model onto 700 channels. This module makes a small dataset
the same way from speech synthesised with ``espeak-ng`` (Debian package ``espeak-ng``):

1. **Voices** (the "speakers"): every usable espeak-ng voice variant (``m1``..``m8``, ``f1``..``f5``,
   ``klatt2``, ``belinda``, ...) becomes one speaker, who speaks English with one accent drawn for it
   (``en-us``, ``en-gb``, ``en-gb-scotland``, ...) and German with ``de``; each speaker also gets its
   own base speed (words per minute) and pitch (espeak ``-p``).
2. **Utterances**: for each speaker, class and repeat, ``espeak-ng`` speaks the word with the speaker's
   speed and pitch jittered per utterance; leading/trailing silence is trimmed, the speech is resampled
   to ``sample_rate``, scaled to a random level (``level_db`` around ``speech_rms``), delayed by a random
   onset, and mixed with white or pink noise at a random signal-to-noise ratio.
3. **Spikes**: :func:`snn.datasets.cochlea.encode` on 700 channels.
4. **Files**: :func:`snn.datasets.h5_writer.write_spike_h5` in SHD's layout. Train and test are split by
   speaker (a seeded ``test_fraction`` of the voices appears only in the test file).

Class ids follow SHD: 0-9 English ``zero``..``nine``, 10-19 German ``null``..``neun``; ``extra/keys``
holds ``english-zero`` .. ``german-neun``. Everything random comes from ``numpy.random.SeedSequence``
keyed by ``(seed, sample index)``, so the same seed gives the same arrays whatever the number of worker
processes. Run it with ``snn data make-digits --out DIR --seed 0``.
"""
from __future__ import annotations

import dataclasses
import json
import multiprocessing
import os
import shutil
import subprocess
from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path

import numpy as np

from snn.datasets.cochlea import encode
from snn.datasets.encoder import PRESETS, resample, scale_to_rms, trim_silence
from snn.datasets.h5_writer import write_spike_h5

__all__ = [
    "ENGLISH_WORDS",
    "GERMAN_WORDS",
    "KEYS",
    "ENGLISH_ACCENTS",
    "VOICE_VARIANTS",
    "DigitsConfig",
    "Voice",
    "make_voices",
    "synthesize",
    "render_utterance",
    "make_digits",
]

ENGLISH_WORDS = ("zero", "one", "two", "three", "four", "five", "six", "seven", "eight", "nine")
GERMAN_WORDS = ("null", "eins", "zwei", "drei", "vier", "fünf", "sechs", "sieben", "acht", "neun")
KEYS = tuple(f"english-{w}" for w in ENGLISH_WORDS) + tuple(f"german-{w}" for w in GERMAN_WORDS)
ENGLISH_ACCENTS = (
    "en-us", "en-us-nyc", "en-gb", "en-gb-x-rp", "en-gb-scotland", "en-gb-x-gbclan", "en-gb-x-gbcwmd", "en-029",
)
# espeak-ng 1.51 voice variants (``espeak-ng --voices=variant``), minus whispers, robots, the
# "Demonic" and "fast" variants, and two that render identically to ``klatt`` (caleb, klatt6).
VOICE_VARIANTS = (
    "m1", "m2", "m3", "m4", "m5", "m6", "m7", "m8", "f1", "f2", "f3", "f4", "f5",
    "klatt", "klatt2", "klatt3", "klatt4", "klatt5",
    "Alex", "Alicia", "Andrea", "Andy", "Annie", "AnxiousAndy", "Denis", "Diogo", "Gene", "Gene2", "Henrique",
    "Hugo", "Jacky", "Lee", "Marco", "Mario", "Michael", "Mike", "Nguyen", "RicishayMax", "RicishayMax2",
    "RicishayMax3", "Storm", "Tweaky", "adam", "anika", "announcer", "antonio", "aunty", "belinda", "benjamin",
    "boris", "croak", "david", "ed", "edward", "edward2", "grandma", "grandpa", "gustave", "iven", "iven2",
    "iven3", "iven4", "john", "kaukovalta", "linda", "marcelo", "max", "michel", "miguel", "norbert", "pablo",
    "paul", "pedro", "quincy", "rob", "robert", "sandro", "shelby", "steph", "steph2", "steph3", "travis",
    "victor", "zac",
)
_ESPEAK_RATE = 22050  # espeak-ng's output sample rate


_PRESET = PRESETS["spoken-digits"]


@dataclass(frozen=True)
class DigitsConfig:
    """Everything that defines the generated dataset (stored as JSON in each file's ``config`` attribute).

    Units: speeds in words per minute (espeak ``-s``), pitch on espeak's 0-99 ``-p`` scale, times in
    seconds, levels and SNRs in dB, frequencies in Hz.
    """

    seed: int = 0
    n_voices: int | None = 64  # None: all of VOICE_VARIANTS
    test_fraction: float = 0.2
    repeats: int = 2
    classes: tuple[int, ...] = tuple(range(20))
    sample_rate: int = _PRESET.sample_rate
    speed_range: tuple[float, float] = (120.0, 210.0)  # per-voice base speed
    speed_jitter: float = 0.12  # per-utterance relative jitter
    pitch_range: tuple[float, float] = (15.0, 85.0)  # per-voice base pitch
    pitch_jitter: float = 10.0
    onset_range: tuple[float, float] = (0.0, 0.12)  # random leading silence (s)
    max_duration: float = 1.0
    speech_rms: float = _PRESET.rms_level
    level_db: tuple[float, float] = (-3.0, 3.0)
    snr_db: tuple[float, float] = (12.0, 35.0)
    # cochlea: the encoder's "spoken-digits" preset is the single source of these values
    n_channels: int = _PRESET.n_channels
    f_min: float = _PRESET.f_min
    f_max: float = _PRESET.f_max
    compression: float = _PRESET.compression
    envelope_cutoff: float = _PRESET.envelope_cutoff
    threshold_db: float = _PRESET.threshold_db
    tau: float = _PRESET.tau
    refractory: float = _PRESET.refractory

    def __post_init__(self) -> None:
        if self.n_voices is not None and not (2 <= self.n_voices <= len(VOICE_VARIANTS)):
            raise ValueError(f"n_voices must be in [2, {len(VOICE_VARIANTS)}] or None, got {self.n_voices}")
        if not (0 < self.test_fraction < 1):
            raise ValueError(f"test_fraction must be in (0, 1), got {self.test_fraction}")
        if self.repeats < 1:
            raise ValueError(f"repeats must be >= 1, got {self.repeats}")
        if not self.classes or any(not (0 <= c < len(KEYS)) for c in self.classes):
            raise ValueError(f"classes must be a non-empty subset of 0..{len(KEYS) - 1}, got {self.classes}")
        if self.max_duration <= self.onset_range[1]:
            raise ValueError(f"max_duration ({self.max_duration}) must exceed the largest onset ({self.onset_range[1]})")


@dataclass(frozen=True)
class Voice:
    """One synthetic speaker: an espeak-ng variant with an English accent and base speed/pitch."""

    speaker: int
    variant: str
    english: str
    german: str
    speed: float
    pitch: float

    @property
    def name(self) -> str:
        return f"{self.variant}/{self.english}"


def make_voices(config: DigitsConfig) -> tuple[list[Voice], list[Voice]]:
    """The (train, test) voices of ``config``: disjoint, seeded, speaker ids 0..n-1 in a fixed order."""
    rng = np.random.default_rng(np.random.SeedSequence([config.seed, 0x701CE]))
    n = len(VOICE_VARIANTS) if config.n_voices is None else config.n_voices
    chosen = rng.permutation(len(VOICE_VARIANTS))[:n]
    voices = []
    for speaker, idx in enumerate(sorted(chosen)):
        voices.append(
            Voice(
                speaker=speaker,
                variant=VOICE_VARIANTS[idx],
                english=str(rng.choice(ENGLISH_ACCENTS)),
                german="de",
                speed=float(rng.uniform(*config.speed_range)),
                pitch=float(rng.uniform(*config.pitch_range)),
            )
        )
    n_test = max(1, int(round(config.test_fraction * n)))
    order = rng.permutation(n)
    test_ids = set(order[:n_test].tolist())
    train = [v for v in voices if v.speaker not in test_ids]
    test = [v for v in voices if v.speaker in test_ids]
    return train, test


def _espeak() -> str:
    exe = shutil.which("espeak-ng")
    if exe is None:
        raise RuntimeError("espeak-ng is not installed (Debian/Ubuntu: apt-get install espeak-ng)")
    return exe


def synthesize(text: str, voice: str, *, speed: int = 175, pitch: int = 50) -> tuple[np.ndarray, int]:
    """Speak ``text`` with espeak-ng; returns ``(waveform float64 [N] in [-1, 1], sample_rate)``.

    ``voice`` is an espeak-ng voice such as ``"en-gb+m3"``; ``speed`` in words per minute (80-450),
    ``pitch`` on espeak's 0-99 scale.
    """
    cmd = [_espeak(), "-v", voice, "-s", str(int(speed)), "-p", str(int(pitch)), "--stdout", text]
    proc = subprocess.run(cmd, capture_output=True, check=False, env={**os.environ, "LC_ALL": "C.UTF-8"})
    if proc.returncode != 0 or len(proc.stdout) <= 44:
        raise RuntimeError(f"espeak-ng failed for voice {voice!r}, text {text!r}: {proc.stderr.decode(errors='replace')}")
    raw = proc.stdout
    # RIFF/WAVE, 16-bit mono PCM; espeak writes the data chunk last (its size field may be a placeholder).
    pos = raw.find(b"data", 12)
    if raw[:4] != b"RIFF" or pos < 0:
        raise RuntimeError(f"espeak-ng wrote no WAV data for voice {voice!r}")
    rate = int.from_bytes(raw[24:28], "little")
    pcm = np.frombuffer(raw[pos + 8 : pos + 8 + ((len(raw) - pos - 8) // 2) * 2], dtype="<i2")
    return pcm.astype(np.float64) / 32768.0, rate


def _noise(rng: np.random.Generator, n: int, pink: bool) -> np.ndarray:
    white = rng.standard_normal(n)
    if not pink:
        return white
    spectrum = np.fft.rfft(white)
    f = np.arange(spectrum.size, dtype=np.float64)
    f[0] = 1.0
    out = np.fft.irfft(spectrum / np.sqrt(f), n)
    return out / out.std()


def render_utterance(config: DigitsConfig, voice: Voice, label: int, index: int) -> tuple[np.ndarray, np.ndarray]:
    """Synthesise, augment and encode one utterance; returns ``(times s, units)`` from the cochlea.

    ``index`` (the sample's position in the whole dataset) keys the random numbers.
    """
    rng = np.random.default_rng(np.random.SeedSequence([config.seed, 1, index]))
    english = label < 10
    word = ENGLISH_WORDS[label] if english else GERMAN_WORDS[label - 10]
    speed = float(np.clip(voice.speed * (1.0 + rng.uniform(-1, 1) * config.speed_jitter), 80, 450))
    pitch = float(np.clip(voice.pitch + rng.uniform(-1, 1) * config.pitch_jitter, 0, 99))
    espeak_voice = f"{voice.english if english else voice.german}+{voice.variant}"
    wave, rate = synthesize(word, espeak_voice, speed=int(round(speed)), pitch=int(round(pitch)))
    # the conditioning shared with the encoder's "spoken-digits" preset (snn.datasets.encoder)
    wave = trim_silence(wave, rate, _PRESET.trim_db)
    wave = resample(wave, rate, config.sample_rate)
    rate = config.sample_rate
    onset = int(rng.uniform(*config.onset_range) * rate)
    total = int(config.max_duration * rate)
    speech = np.zeros(min(total, onset + len(wave)))
    speech[onset:] = wave[: len(speech) - onset]
    level = config.speech_rms * 10 ** (rng.uniform(*config.level_db) / 20)
    speech = scale_to_rms(speech, level, rms_of=wave)
    snr = rng.uniform(*config.snr_db)
    noise = _noise(rng, len(speech), pink=bool(rng.integers(2)))
    mix = speech + noise * level * 10 ** (-snr / 20)
    return encode(
        mix,
        rate,
        n_channels=config.n_channels,
        f_min=config.f_min,
        f_max=config.f_max,
        compression=config.compression,
        envelope_cutoff=config.envelope_cutoff,
        threshold_db=config.threshold_db,
        tau=config.tau,
        refractory=config.refractory,
    )


def _job(args: tuple[DigitsConfig, Voice, int, int]) -> tuple[np.ndarray, np.ndarray]:
    config, voice, label, index = args
    t, u = render_utterance(config, voice, label, index)
    return t.astype(np.float32), u.astype(np.uint16)


def _plan(config: DigitsConfig, voices: Sequence[Voice], start: int) -> list[tuple[DigitsConfig, Voice, int, int]]:
    jobs = []
    for voice in voices:
        for label in config.classes:
            for _ in range(config.repeats):
                jobs.append((config, voice, label, start + len(jobs)))
    return jobs


def make_digits(
    out_dir: str | os.PathLike,
    config: DigitsConfig | None = None,
    *,
    processes: int | None = None,
    prefix: str = "spoken_digits",
    progress: bool = False,
) -> tuple[Path, Path]:
    """Generate ``<prefix>_train.h5`` and ``<prefix>_test.h5`` in ``out_dir``; returns their paths.

    Args:
        out_dir: output folder (created if missing).
        config: dataset definition; ``DigitsConfig()`` is what the committed files were made with.
        processes: worker processes (default: all CPUs); the output does not depend on it.
        prefix: file name prefix.
        progress: show a tqdm progress bar.
    """
    config = config or DigitsConfig()
    _espeak()
    out = Path(out_dir)
    out.mkdir(parents=True, exist_ok=True)
    train_voices, test_voices = make_voices(config)
    train_jobs = _plan(config, train_voices, 0)
    test_jobs = _plan(config, test_voices, len(train_jobs))
    jobs = train_jobs + test_jobs
    n_proc = processes or os.cpu_count() or 1
    if n_proc > 1:
        with multiprocessing.get_context("fork").Pool(n_proc) as pool:
            iterator = pool.imap(_job, jobs, chunksize=8)
            results = list(_progress(iterator, len(jobs), progress))
    else:
        results = [_job(j) for j in _progress(iter(jobs), len(jobs), progress)]
    meta_config = json.dumps(dataclasses.asdict(config))
    paths = []
    for split, split_jobs, split_results, split_voices in (
        ("train", train_jobs, results[: len(train_jobs)], train_voices),
        ("test", test_jobs, results[len(train_jobs) :], test_voices),
    ):
        voices_json = json.dumps({v.speaker: dataclasses.asdict(v) for v in split_voices})
        path = write_spike_h5(
            out / f"{prefix}_{split}.h5",
            [r[0] for r in split_results],
            [r[1] for r in split_results],
            np.array([j[2] for j in split_jobs], dtype=np.int64),
            KEYS,
            np.array([j[1].speaker for j in split_jobs], dtype=np.int64),
            attrs={
                "description": f"snn embedded spoken digits ({split}): espeak-ng speech -> snn.datasets.cochlea",
                "generator": "snn.datasets.spoken_digits_make.make_digits",
                "config": meta_config,
                "voices": voices_json,
            },
        )
        paths.append(path)
    return paths[0], paths[1]


def _progress(iterator, total: int, enabled: bool):
    if not enabled:
        return iterator
    from tqdm import tqdm

    return tqdm(iterator, total=total, unit="utt")
