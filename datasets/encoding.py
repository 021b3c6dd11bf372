"""Which encoder settings a spike file was made with, and a warning when a model meets data encoded differently.

``snn data encode`` stores its settings in the file (root attributes ``encoder_preset``, ``encoder_settings``);
the spoken-digits generator stores its whole configuration (``config``), from which the same settings follow.
Original SHD/SSC files carry neither: their encoding is unknown here and never warned about.

Call :func:`check_compatible` wherever a model trained on one file is run on another (``snn eval`` with the run's
training file and the evaluated file; a user's script)::

    from snn.datasets.encoding import check_compatible
    check_compatible("runs/x/train.h5", "mine.h5")   # warns EncodingMismatchWarning listing the differences
"""
from __future__ import annotations

import json
import os
import warnings

import h5py

from snn.datasets.encoder import PRESETS, EncoderSettings

__all__ = ["EncodingMismatchWarning", "encoding_of", "differences", "check_compatible"]

_DIGITS_GENERATOR = "snn.datasets.spoken_digits_make.make_digits"


class EncodingMismatchWarning(UserWarning):
    """Data encoded with other settings than a model's training data: expect much lower accuracy."""


def encoding_of(source: str | os.PathLike | EncoderSettings) -> EncoderSettings | None:
    """The encoder settings of a spike file (or the settings themselves); ``None`` when the file does not say."""
    if isinstance(source, EncoderSettings):
        return source
    with h5py.File(source, "r") as f:
        attrs = dict(f.attrs)
    text = _str(attrs.get("encoder_settings"))
    if text:
        return EncoderSettings.from_json(text)
    if _str(attrs.get("generator")) == _DIGITS_GENERATOR and attrs.get("config") is not None:
        config = json.loads(_str(attrs["config"]))
        base = PRESETS["spoken-digits"]
        fields = {name: config[name] for name in ("sample_rate", "n_channels", "f_min", "f_max", "compression",
                                                  "envelope_cutoff", "threshold_db", "tau", "refractory")
                  if name in config}
        if "speech_rms" in config:
            fields["rms_level"] = config["speech_rms"]
        return EncoderSettings(**{**_fields(base), **fields})
    return None


def differences(reference: EncoderSettings, other: EncoderSettings) -> dict[str, tuple]:
    """``{setting: (reference value, other value)}`` for every setting that differs."""
    a, b = _fields(reference), _fields(other)
    return {k: (a[k], b[k]) for k in a if a[k] != b[k]}


def check_compatible(reference: str | os.PathLike | EncoderSettings, data: str | os.PathLike | EncoderSettings,
                     *, stacklevel: int = 2) -> dict[str, tuple]:
    """Warn (:class:`EncodingMismatchWarning`) if ``data`` was encoded with other settings than ``reference``
    (a model's training file, or settings). Returns the differences (empty when they match or either side's
    encoding is unknown)."""
    ref, other = encoding_of(reference), encoding_of(data)
    if ref is None or other is None:
        return {}
    diff = differences(ref, other)
    if diff:
        listed = ", ".join(f"{k}: {a!r} vs {b!r}" for k, a, b in ((k, *v) for k, v in diff.items()))
        warnings.warn(
            f"{data} was encoded with other settings than {reference} ({listed}); a model trained on one gives "
            "much lower accuracy on the other. Re-encode with `snn data encode --preset ...` to match.",
            EncodingMismatchWarning, stacklevel=stacklevel,
        )
    return diff


def _fields(settings: EncoderSettings) -> dict:
    return {name: getattr(settings, name) for name in EncoderSettings.__dataclass_fields__}


def _str(value) -> str | None:
    if value is None:
        return None
    return value.decode() if isinstance(value, bytes) else str(value)
