"""Hardware energy profiles as data: YAML files whose every constant cites its published source.

A profile turns operation counts into energy (pJ). Built-in profiles live in ``snn/energy/profiles/*.yaml``;
a user profile is any YAML file with the same layout::

    name: my_chip
    kind: compute | memory_aware | neuromorphic
    description: "..."
    synop_count: exact | rate_scaled     # per-spike fan-out, or fr x dense MACs (spike-driven transformer papers)
    constants:                            # pJ per event, each {value, source}
      mac_pj:           {value: 4.6, source: "..."}   # one multiply-accumulate (non-binary input)
      ac_pj:            {value: 0.9, source: "..."}   # one synaptic operation (binary input x one connection)
      neuron_update_pj: {value: 0.0, source: "..."}   # one neuron, one time step
      spike_pj:         {value: 0.0, source: "..."}   # one output spike (routing)
      addressing_pj:    {value: 0.1, source: "..."}   # memory_aware only: one address computation
    memory:                               # memory_aware only
      word_bits: 32
      spike_fifo_bytes: 4096
      sram_read_64bit_pj: [{bytes: 8192, value: 10.0, source: "..."}, ...]
"""
from __future__ import annotations

import math
import os
from dataclasses import dataclass, field
from pathlib import Path

import yaml

__all__ = ["HardwareProfile", "load_profile", "available_profiles", "PROFILE_DIR"]

PROFILE_DIR = Path(__file__).resolve().parent / "profiles"
_KINDS = ("compute", "memory_aware", "neuromorphic")
_SYNOP_COUNTS = ("exact", "rate_scaled")
_REQUIRED = ("mac_pj", "ac_pj", "neuron_update_pj", "spike_pj")
_OPTIONAL = ("addressing_pj",)


@dataclass(frozen=True)
class HardwareProfile:
    """Energy constants of one hardware target (all energies in pJ).

    Attributes:
        name, kind, description: identification; ``kind`` is ``compute``, ``memory_aware`` or ``neuromorphic``.
        synop_count: ``"exact"`` (each spike × its real fan-out) or ``"rate_scaled"`` (``fr_l × dense MACs``).
        mac_pj, ac_pj, neuron_update_pj, spike_pj, addressing_pj: energy per event.
        word_bits: width of a stored weight / state / activation word (memory-aware model).
        spike_fifo_bytes: capacity of the spike-event buffer (memory-aware model).
        sram_points: ``((capacity_bytes, pJ_per_byte), ...)`` increasing in capacity (memory-aware model).
        sources: constant name → citation.
        path: the file it was read from.
    """

    name: str
    kind: str
    description: str
    synop_count: str
    mac_pj: float
    ac_pj: float
    neuron_update_pj: float
    spike_pj: float
    addressing_pj: float = 0.0
    word_bits: int = 32
    spike_fifo_bytes: int = 4096
    sram_points: tuple[tuple[float, float], ...] = ()
    sources: dict[str, str] = field(default_factory=dict, compare=False)
    path: str = ""

    @property
    def memory_aware(self) -> bool:
        return self.kind == "memory_aware"

    @property
    def word_bytes(self) -> float:
        return self.word_bits / 8.0

    def memory_pj_per_byte(self, capacity_bytes: float) -> float:
        """Energy of one byte accessed in a buffer of ``capacity_bytes``: linear between the SRAM points, through
        ``(0, 0)``, constant above the largest point."""
        if not self.sram_points:
            return 0.0
        points = ((0.0, 0.0),) + self.sram_points
        c = max(0.0, float(capacity_bytes))
        if c >= points[-1][0]:
            return points[-1][1]
        for (x0, y0), (x1, y1) in zip(points[:-1], points[1:]):
            if c <= x1:
                return y0 + (y1 - y0) * (c - x0) / (x1 - x0)
        return points[-1][1]  # unreachable: the loop covers [0, last point]


def available_profiles() -> list[str]:
    """Names of the built-in profiles (files in :data:`PROFILE_DIR`)."""
    return sorted(p.stem for p in PROFILE_DIR.glob("*.yaml"))


def _number(where: str, value: object) -> float:
    if isinstance(value, bool) or not isinstance(value, (int, float)) or not math.isfinite(value) or value < 0:
        raise ValueError(f"{where}: expected a finite number >= 0, got {value!r}")
    return float(value)


def _constant(path: str, key: str, entry: object) -> tuple[float, str]:
    if not isinstance(entry, dict) or "value" not in entry or "source" not in entry:
        raise ValueError(f"profile {path}: constants.{key} must be a mapping with 'value' and 'source', got {entry!r}")
    source = entry["source"]
    if not isinstance(source, str) or not source.strip():
        raise ValueError(f"profile {path}: constants.{key}.source must cite a published source, got {source!r}")
    return _number(f"profile {path}: constants.{key}.value", entry["value"]), source


def load_profile(name_or_path: str | os.PathLike | HardwareProfile) -> HardwareProfile:
    """Load a built-in profile by name (see :func:`available_profiles`) or a user YAML file by path.

    Raises:
        ValueError: unknown name (the message lists the available ones) or a malformed file (naming the key).
    """
    if isinstance(name_or_path, HardwareProfile):
        return name_or_path
    if not isinstance(name_or_path, (str, os.PathLike)):
        raise TypeError(f"profile: expected a name, a path or a HardwareProfile, got {type(name_or_path).__name__}")
    text = os.fspath(name_or_path)
    candidate = Path(text)
    if candidate.suffix in (".yaml", ".yml") or os.sep in text or candidate.is_file():
        if not candidate.is_file():
            raise ValueError(f"profile: file {text!r} does not exist")
        path = candidate
    else:
        path = PROFILE_DIR / f"{text}.yaml"
        if not path.is_file():
            raise ValueError(f"profile: unknown name {text!r}; available: {', '.join(available_profiles())} "
                             "(or pass the path of a YAML file)")
    with open(path, encoding="utf-8") as fh:
        data = yaml.safe_load(fh)
    where = str(path)
    if not isinstance(data, dict):
        raise ValueError(f"profile {where}: expected a mapping at the top level, got {type(data).__name__}")
    kind = data.get("kind")
    if kind not in _KINDS:
        raise ValueError(f"profile {where}: kind must be one of {_KINDS}, got {kind!r}")
    synop_count = data.get("synop_count", "exact")
    if synop_count not in _SYNOP_COUNTS:
        raise ValueError(f"profile {where}: synop_count must be one of {_SYNOP_COUNTS}, got {synop_count!r}")
    constants = data.get("constants")
    if not isinstance(constants, dict):
        raise ValueError(f"profile {where}: 'constants' must be a mapping, got {constants!r}")
    unknown = set(constants) - set(_REQUIRED) - set(_OPTIONAL)
    if unknown:
        raise ValueError(f"profile {where}: unknown constants {sorted(unknown)}; known: {list(_REQUIRED + _OPTIONAL)}")
    values: dict[str, float] = {}
    sources: dict[str, str] = {}
    for key in _REQUIRED + _OPTIONAL:
        if key not in constants:
            if key in _REQUIRED:
                raise ValueError(f"profile {where}: constants.{key} is missing (required: {list(_REQUIRED)})")
            continue
        values[key], sources[key] = _constant(where, key, constants[key])
    extra: dict[str, object] = {}
    memory = data.get("memory")
    if kind == "memory_aware":
        if not isinstance(memory, dict):
            raise ValueError(f"profile {where}: kind 'memory_aware' needs a 'memory' mapping, got {memory!r}")
        points = memory.get("sram_read_64bit_pj")
        if not isinstance(points, list) or not points:
            raise ValueError(f"profile {where}: memory.sram_read_64bit_pj must be a non-empty list, got {points!r}")
        parsed = []
        for i, point in enumerate(points):
            if not isinstance(point, dict) or "bytes" not in point:
                raise ValueError(f"profile {where}: memory.sram_read_64bit_pj[{i}] needs 'bytes', 'value', 'source'")
            value, source = _constant(where, f"memory.sram_read_64bit_pj[{i}]", point)
            size = _number(f"profile {where}: memory.sram_read_64bit_pj[{i}].bytes", point["bytes"])
            parsed.append((size, value / 8.0))
            sources[f"sram_{int(size)}B"] = source
        sizes = [p[0] for p in parsed]
        if sizes != sorted(sizes) or len(set(sizes)) != len(sizes) or sizes[0] <= 0:
            raise ValueError(f"profile {where}: memory.sram_read_64bit_pj sizes must be > 0 and increasing, got {sizes}")
        extra["sram_points"] = tuple(parsed)
        extra["word_bits"] = int(_number(f"profile {where}: memory.word_bits", memory.get("word_bits", 32)))
        extra["spike_fifo_bytes"] = int(_number(f"profile {where}: memory.spike_fifo_bytes", memory.get("spike_fifo_bytes", 4096)))
    return HardwareProfile(
        name=str(data.get("name", path.stem)), kind=kind, description=str(data.get("description", "")),
        synop_count=synop_count, sources=sources, path=where, **values, **extra,
    )
