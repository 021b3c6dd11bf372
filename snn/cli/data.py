"""``snn data``: make the embedded spoken-digits dataset, encode WAV files to spikes, describe a file.

Sub-commands::

    snn data make-digits --out DIR [--seed 0] [--voices 64] [--repeats 2] [--jobs N]
    snn data encode FILES... --out file.h5 [--preset spoken-digits|shd-like] [--labels-from dirname | --label N]
                    [--jobs N]
    snn data info PATH
"""
from __future__ import annotations

import argparse
import sys
from pathlib import Path

__all__ = ["add_parser"]


def add_parser(sub: argparse._SubParsersAction) -> argparse.ArgumentParser:
    """Add the ``data`` command and its sub-commands to the top-level ``snn`` parser."""
    data = sub.add_parser(
        "data",
        help="prepare spiking datasets (embedded spoken digits, WAV -> spikes, file summaries)",
        description="Prepare spiking datasets in the SHD HDF5 layout (spikes/times, spikes/units, labels, "
        "extra/keys, extra/speaker).",
    )
    data.set_defaults(func=lambda _args: (data.print_help(), 2)[1])
    cmds = data.add_subparsers(dest="data_command", metavar="SUBCOMMAND")

    make = cmds.add_parser(
        "make-digits",
        help="generate the spoken-digits dataset (espeak-ng -> cochlea -> SHD-format HDF5)",
        description="Synthesise the digits zero..nine in English and German with espeak-ng over many voices, "
        "speeds and pitches, add noise, encode them with the cochlear front end onto 700 channels, and write "
        "<prefix>_train.h5 and <prefix>_test.h5 (split by voice). The same seed gives the same arrays. "
        "The defaults reproduce the files shipped in snn/datasets/data/.",
    )
    make.add_argument("--out", required=True, type=Path, help="output folder (created if missing)")
    make.add_argument("--seed", type=int, default=0, help="random seed (default: 0)")
    make.add_argument("--voices", type=int, default=None, help="number of voices/speakers (default: 64)")
    make.add_argument("--repeats", type=int, default=None, help="utterances per voice and class (default: 2)")
    make.add_argument("--test-fraction", type=float, default=None, help="fraction of voices kept for the test split (default: 0.2)")
    make.add_argument(
        "--classes", type=str, default=None,
        help="comma-separated class ids to generate (0-9 English, 10-19 German; default: all 20)",
    )
    make.add_argument("--jobs", type=int, default=None, help="worker processes (default: all CPUs)")
    make.add_argument("--prefix", default="spoken_digits", help="file name prefix (default: spoken_digits)")
    make.add_argument("--quiet", action="store_true", help="no progress bar")
    make.set_defaults(func=_make_digits)

    enc = cmds.add_parser(
        "encode",
        help="encode WAV files into one SHD-format HDF5 file of spikes",
        description="Read WAV files (scipy.io.wavfile; stereo is averaged to mono), trim silence, resample, set "
        "the level and pass each through the cochlea (snn.datasets.encoder) with the settings of a named --preset "
        "(default spoken-digits: exactly the embedded set's encoding, so its models apply), in parallel, and write "
        "all of them to one HDF5 file in the SHD layout; the preset and every setting are stored in the file's "
        "attributes. Labels come from the parent folder names (--labels-from dirname; classes sorted by name) or "
        "one fixed --label.",
    )
    enc.add_argument("--preset", default="spoken-digits", choices=["spoken-digits", "shd-like"],
                     help="encoder settings (default: spoken-digits, the embedded dataset's); the options below "
                     "override single settings")
    enc.add_argument("files", nargs="+", type=Path, metavar="FILES", help="WAV files")
    enc.add_argument("--out", required=True, type=Path, help="output .h5 file")
    group = enc.add_mutually_exclusive_group()
    group.add_argument(
        "--labels-from", choices=["dirname"], default=None,
        help="derive labels from each file's parent folder name",
    )
    group.add_argument("--label", type=int, default=None, help="give every file this label (default: 0)")
    enc.add_argument(
        "--sample-rate", type=int, default=None,
        help="resample every file to this rate (Hz) before encoding (default: the preset's, 16000)",
    )
    enc.add_argument("--channels", type=int, default=None, help="cochlear channels (default: the preset's, 700)")
    enc.add_argument(
        "--rms-level", type=float, default=None,
        help="scale each waveform to this RMS level before encoding, full scale 1.0; 0 keeps the level "
        "(default: the preset's, 0.05)",
    )
    enc.add_argument(
        "--threshold-db", type=float, default=None,
        help="level (dB re full scale) of a sine at a channel's centre frequency that makes it fire "
        "(default: the preset's)",
    )
    enc.add_argument("--jobs", type=int, default=None, help="worker processes (default: all CPUs)")
    enc.add_argument("--quiet", action="store_true", help="no progress bar")
    enc.add_argument(
        "--times-dtype", choices=["float16", "float32"], default="float16",
        help="dtype of the stored spike times; float16 as SHD (0.5 ms resolution below 1 s), "
        "float32 for long recordings (default: float16)",
    )
    enc.set_defaults(func=_encode)

    info = cmds.add_parser(
        "info",
        help="summarise an SHD-format HDF5 file",
        description="Check every sample of an SHD-format file as the loaders do (file integrity, layout, labels, "
        "spike times and channel ids, durations) and list each problem with its sample index (exit code 1); "
        "for a valid file print samples, classes, speakers, channels, durations and spike counts.",
    )
    info.add_argument("path", type=Path, help="HDF5 file")
    info.add_argument("--channels", type=int, default=700,
                      help="channel count of the file; larger channel ids are errors (default: 700, the SHD layout)")
    info.set_defaults(func=_info)
    return data


def _make_digits(args: argparse.Namespace) -> int:
    import dataclasses

    from snn.datasets.spoken_digits_make import DigitsConfig, make_digits

    overrides = {"seed": args.seed}
    if args.voices is not None:
        overrides["n_voices"] = args.voices
    if args.repeats is not None:
        overrides["repeats"] = args.repeats
    if args.test_fraction is not None:
        overrides["test_fraction"] = args.test_fraction
    if args.classes is not None:
        try:
            overrides["classes"] = tuple(int(c) for c in args.classes.split(",") if c.strip())
        except ValueError:
            print(f"error: --classes must be comma-separated integers, got {args.classes!r}", file=sys.stderr)
            return 2
    try:
        config = dataclasses.replace(DigitsConfig(), **overrides)
    except ValueError as err:
        print(f"error: {err}", file=sys.stderr)
        return 2
    train, test = make_digits(args.out, config, processes=args.jobs, prefix=args.prefix, progress=not args.quiet)
    print(f"wrote {train} ({train.stat().st_size / 1e6:.2f} MB) and {test} ({test.stat().st_size / 1e6:.2f} MB)")
    return 0


def _load_wav(path: Path):
    """A WAV file as a float64 mono waveform (full scale 1.0) and its rate; resampling is the encoder's job."""
    import numpy as np
    from scipy.io import wavfile

    rate, data = wavfile.read(path)
    if np.issubdtype(data.dtype, np.integer):
        if data.dtype == np.uint8:
            wave = (data.astype(np.float64) - 128.0) / 128.0
        else:
            wave = data.astype(np.float64) / float(np.iinfo(data.dtype).max)
    else:
        wave = data.astype(np.float64)
    if wave.ndim == 2:
        wave = wave.mean(axis=1)
    return wave, int(rate)


def _encode(args: argparse.Namespace) -> int:
    import dataclasses

    import numpy as np

    from snn.datasets.h5_writer import write_spike_h5

    missing = [str(f) for f in args.files if not f.is_file()]
    if missing:
        print(f"error: no such file(s): {', '.join(missing)}", file=sys.stderr)
        return 2
    if args.sample_rate is not None and args.sample_rate <= 0:
        print(f"error: --sample-rate must be > 0, got {args.sample_rate}", file=sys.stderr)
        return 2
    if args.labels_from == "dirname":
        keys = sorted({f.resolve().parent.name for f in args.files})
        labels = [keys.index(f.resolve().parent.name) for f in args.files]
    else:
        label = 0 if args.label is None else args.label
        if label < 0:
            print(f"error: --label must be >= 0, got {label}", file=sys.stderr)
            return 2
        keys = [str(i) for i in range(label + 1)]
        labels = [label] * len(args.files)
    from snn.datasets.encoder import encode_many, preset

    overrides = {"n_channels": args.channels, "threshold_db": args.threshold_db, "sample_rate": args.sample_rate,
                 "rms_level": None if args.rms_level == 0 else args.rms_level}
    given = {k: v for k, v in overrides.items() if v is not None or (k == "rms_level" and args.rms_level == 0)}
    try:
        settings = dataclasses.replace(preset(args.preset), **given)
        results = encode_many(args.files, _load_wav, settings, processes=args.jobs, progress=not args.quiet)
    except ValueError as err:
        print(f"error: {err}", file=sys.stderr)
        return 2
    times, units = [r[0] for r in results], [r[1] for r in results]
    out = write_spike_h5(
        args.out, times, units, np.asarray(labels, dtype=np.int64), keys,
        times_dtype=np.float16 if args.times_dtype == "float16" else np.float32,
        attrs={"generator": "snn data encode", "files": "\n".join(str(f) for f in args.files),
               "encoder_preset": args.preset + (" (modified)" if given else ""),
               "encoder_settings": settings.to_json()},
    )
    n_spikes = sum(len(t) for t in times)
    print(f"wrote {out}: {len(times)} samples, {len(keys)} classes, {n_spikes} spikes")
    return 0


def _info(args: argparse.Namespace) -> int:
    if not args.path.is_file():
        print(f"error: no such file: {args.path}", file=sys.stderr)
        return 2
    from snn.datasets import SHD, SSC, SpokenDigits
    from snn.datasets.summary import summarize, validate_file

    # a file named like a known dataset's is held to that dataset's classes and durations
    known = next((c for c in (SpokenDigits, SHD, SSC) if args.path.name in c.files.values()), None)
    errors, notes = validate_file(args.path, n_channels=args.channels,
                                  n_classes=known.declared_classes if known else None,
                                  max_duration_s=known.declared_max_duration_s if known else None)
    for note in notes:
        print(f"warning: {args.path}: {note}", file=sys.stderr)
    if len(errors) == 1:
        print(f"snn data info: {args.path}: {errors[0]}", file=sys.stderr)
    elif errors:
        print(f"snn data info: {args.path}: {len(errors)} problems:", file=sys.stderr)
        for e in errors:
            print(f"  {e}", file=sys.stderr)
    if errors:
        return 1
    import warnings

    with warnings.catch_warnings():
        warnings.simplefilter("ignore", RuntimeWarning)  # already printed above
        print(summarize(args.path))
    return 0
