r"""Turning operation counts into energy with a hardware profile, and the report that holds the result.

All energies are **per sample** in pJ (totals over the data divided by the number of samples run).

Compute part (every profile):

.. math::

    E_{ops} = E_{AC}\,\mathrm{SynOps} + E_{MAC}\,\mathrm{MACs}_{dense,\ non\text{-}binary\ inputs}
              + E_{neuron}\,\mathrm{updates} + E_{spike}\,\mathrm{spikes}

With ``synop_count: rate_scaled`` (the spike-driven transformer papers) ``SynOps_l = Σ_t fr_{l,t} · MACs_{l,t}``
instead of the exact per-spike fan-out. A layer whose input is not binary is charged its dense MACs at every time
step it runs (direct encoding: the first layer is charged ``T`` times).

Memory-aware profiles (Lemaire et al. 2022) add addressing and memory terms; see
``snn/energy/profiles/memory_aware_45nm.yaml`` for the per-access model. Each access of ``w`` bytes to a buffer of
capacity ``C`` costs ``w · e(C)`` with ``e`` interpolated from the Horowitz SRAM points.

ANN equivalent: the same architecture with every synapse a MAC on every sample (dense MACs of all synaptic
layers; activation functions free). ``ann_convention="once"`` charges it once per sample (one frame, the
per-step dense MACs), ``"per_step"`` charges it at every time step the SNN runs; both are reported.
"""
from __future__ import annotations

import json
import math
import os
from dataclasses import dataclass, field
from typing import Any

import numpy as np

from snn.atomic import atomic_open
from snn.energy.counter import LayerCounts, OperationCounter
from snn.energy.profiles import HardwareProfile

__all__ = ["EnergyReport", "build_report", "COMPONENTS", "ANN_CONVENTIONS"]

COMPONENTS = ("synaptic", "mac", "neuron", "addressing", "weights", "potentials", "activations")
ANN_CONVENTIONS = ("once", "per_step")


def _write_atomic(path: str | os.PathLike, write) -> None:
    """``write(handle)`` into ``path`` atomically, creating its folder."""
    os.makedirs(os.path.dirname(os.path.abspath(path)), exist_ok=True)
    with atomic_open(path, "wb") as handle:
        write(handle)


def _layer_energy(c: LayerCounts, p: HardwareProfile, samples: int) -> dict[str, np.ndarray]:
    """Energy components of one layer per step (pJ, summed over samples)."""
    n = max(c.synops.size, c.updates.size, 1)
    zero = np.zeros(n)
    out = {k: zero.copy() for k in COMPONENTS}
    wb = p.word_bytes
    e = p.memory_pj_per_byte
    mem = p.memory_aware
    if c.is_synaptic:
        synops = c.synops_rate_scaled if p.synop_count == "rate_scaled" else c.synops
        if c.binary_input:
            out["synaptic"] = p.ac_pj * synops
            if mem:
                out["addressing"] = p.addressing_pj * synops
                out["weights"] = synops * wb * e(c.params * wb)
                out_per_sample = c.output_elements.max(initial=0) / samples
                out["potentials"] = 2 * synops * wb * e(out_per_sample * wb)
                out["activations"] = c.input_nonzero * wb * e(p.spike_fifo_bytes)
        else:
            out["mac"] = p.mac_pj * c.macs_dense
            if mem:
                out.update(_dense_memory(c, p, samples, 1.0))
    elif c.kind == "neuron":
        out["neuron"] = p.neuron_update_pj * c.updates + p.spike_pj * c.spikes
        if mem:
            state_bytes = c.neurons * c.state_vars * wb
            out["potentials"] = 2 * c.updates * c.state_vars * wb * e(state_bytes)
            if c.spiking:
                out["activations"] = c.spikes * wb * e(p.spike_fifo_bytes)
            else:
                out["activations"] = c.output_elements * wb * e(c.neurons * wb)
    return {k: (np.pad(v, (0, n - v.size)) if v.size < n else v) for k, v in out.items()}


def _dense_memory(c: LayerCounts, p: HardwareProfile, samples: int, scale: float | np.ndarray) -> dict[str, Any]:
    """Addressing and memory of a dense (MAC) layer: weights per MAC, inputs (conv: per MAC), outputs once."""
    wb = p.word_bytes
    e = p.memory_pj_per_byte
    in_per_sample = c.input_elements.max(initial=0) / samples
    out_per_sample = c.output_elements.max(initial=0) / samples
    reads = c.macs_dense if c.kind.startswith("conv") else c.input_elements
    return {
        "addressing": scale * p.addressing_pj * (c.input_elements + c.output_elements),
        "weights": scale * c.macs_dense * wb * e(c.params * wb),
        "activations": scale * (reads * wb * e(in_per_sample * wb) + c.output_elements * wb * e(out_per_sample * wb)),
    }


def _ann_energy(c: LayerCounts, p: HardwareProfile, samples: int, steps_default: int) -> dict[str, float]:
    """ANN-equivalent energy of a synaptic layer (pJ per sample) under both conventions."""
    total_ops = p.mac_pj * c.total("macs_dense")
    total_mem = 0.0
    if p.memory_aware:
        total_mem = sum(float(np.sum(v)) for v in _dense_memory(c, p, samples, 1.0).values())
    total = (total_ops + total_mem) / samples
    steps = c.steps if c.steps > 1 or c.macs_dense.size > 1 else steps_default
    return {"per_step": total, "once": total / max(steps, 1)}


def _clean(value: Any) -> Any:
    if isinstance(value, np.ndarray):
        return [_clean(v) for v in value.tolist()]
    if isinstance(value, float):
        return None if math.isnan(value) else value
    if isinstance(value, dict):
        return {k: _clean(v) for k, v in value.items()}
    if isinstance(value, (list, tuple)):
        return [_clean(v) for v in value]
    return value


@dataclass
class EnergyReport:
    """Counts, firing rates and energy of one model on some data under one hardware profile (per sample).

    Attributes:
        profile: name; profile_info: description, kind, synop convention, sources.
        samples: samples run; time_steps: ``T`` of the input.
        layers: per layer: ``name, kind, steps, binary_input``, per-sample totals (``synops``, ``macs``,
            ``macs_effective``, ``macs_dense``, ``updates``, ``spikes``), ``energy_pj`` by component, ``total_pj``,
            ``firing_rate`` (neurons: output; synaptic layers: input spikes) and per-step series ``per_step``.
        totals: per-sample totals of the counts and ``energy_pj`` by component, ``total_pj``.
        ann: ANN-equivalent energy (pJ per sample) ``{"once": ..., "per_step": ...}``; ann_convention: the one
            used for ``ratio``; ratio: ANN energy / SNN energy (> 1: the SNN is cheaper).
        conventions: the counting conventions, in words; skipped: layers with uncounted operations.
    """

    profile: str
    profile_info: dict[str, Any]
    samples: int
    time_steps: int
    layers: list[dict[str, Any]]
    totals: dict[str, Any]
    ann: dict[str, float] | None
    ann_convention: str
    ratio: float | None
    conventions: list[str] = field(default_factory=list)
    skipped: dict[str, str] = field(default_factory=dict)

    @property
    def total_pj(self) -> float:
        return float(self.totals["total_pj"])

    @property
    def synops(self) -> float:
        return float(self.totals["synops"])

    def to_dict(self) -> dict[str, Any]:
        return _clean({
            "profile": self.profile, "profile_info": self.profile_info, "samples": self.samples,
            "time_steps": self.time_steps, "totals": self.totals, "ann": self.ann,
            "ann_convention": self.ann_convention, "ratio": self.ratio, "conventions": self.conventions,
            "skipped": self.skipped, "layers": self.layers,
        })

    def to_json(self, path: str | os.PathLike) -> None:
        """Write the report as JSON (atomically: temp file + ``os.replace``)."""
        text = json.dumps(self.to_dict(), indent=2).encode("utf-8")
        _write_atomic(path, lambda fh: fh.write(text))

    def table(self) -> str:
        """A plain-text table: one row per layer, then the totals and the ANN comparison."""
        header = f"{'layer':<24} {'kind':<7} {'T':>4} {'rate':>7} {'SynOps':>11} {'MACs':>11} {'updates':>10} {'energy':>11}"
        lines = [f"Energy per sample — profile {self.profile} ({self.profile_info.get('description', '')})",
                 f"{self.samples} samples, T = {self.time_steps}", header, "-" * len(header)]
        for layer in self.layers:
            rate = layer.get("firing_rate")
            lines.append(
                f"{(layer['name'] or '<model>')[:24]:<24} {layer['kind']:<7} {layer['steps']:>4} "
                f"{('' if rate is None else f'{rate:.4f}'):>7} {_si(layer['synops']):>11} {_si(layer['macs']):>11} "
                f"{_si(layer['updates']):>10} {_si(layer['total_pj'] * 1e-12, 'J'):>11}"
            )
        t = self.totals
        lines.append("-" * len(header))
        lines.append(f"{'total':<24} {'':<7} {'':>4} {'':>7} {_si(t['synops']):>11} {_si(t['macs']):>11} "
                     f"{_si(t['updates']):>10} {_si(t['total_pj'] * 1e-12, 'J'):>11}")
        parts = ", ".join(f"{k} {_si(v * 1e-12, 'J')}" for k, v in t["energy_pj"].items() if v)
        lines.append(f"by component: {parts or 'none'}")
        if self.ann is not None:
            lines.append(f"ANN equivalent: {_si(self.ann['once'] * 1e-12, 'J')} once per sample, "
                         f"{_si(self.ann['per_step'] * 1e-12, 'J')} charged at every step; "
                         f"ratio ANN/SNN ({self.ann_convention}) = {self.ratio:.3g}" if self.ratio is not None else
                         "ANN equivalent: SNN energy is 0, no ratio")
        lines.extend(f"note: {c}" for c in self.conventions)
        lines.extend(f"warning: layer {k!r} ({v}) skipped" for k, v in self.skipped.items())
        return "\n".join(lines)

    def __str__(self) -> str:
        return self.table()

    def plot(self, path: str | os.PathLike) -> None:
        """Save a figure: per-layer energy bars by component (left), firing rate over layers × time (right)."""
        import matplotlib
        matplotlib.use("Agg")
        import matplotlib.pyplot as plt

        fig, (ax_bar, ax_heat) = plt.subplots(1, 2, figsize=(13, max(3.5, 0.35 * len(self.layers) + 2)))
        names = [layer["name"] or "<model>" for layer in self.layers]
        y = np.arange(len(names))
        left = np.zeros(len(names))
        for comp in COMPONENTS:
            vals = np.array([layer["energy_pj"][comp] for layer in self.layers], dtype=float)
            if vals.any():
                ax_bar.barh(y, vals, left=left, label=comp)
                left += vals
        ax_bar.set_yticks(y, names)
        ax_bar.invert_yaxis()
        ax_bar.set_xlabel("energy per sample (pJ)")
        ax_bar.set_title(f"energy by layer and component ({self.profile})")
        if left.any():
            ax_bar.legend(fontsize=8)
        rate_layers = [layer for layer in self.layers if layer.get("per_step", {}).get("firing_rate") is not None]
        if any(layer["kind"] == "neuron" for layer in rate_layers):  # the neurons' own rates; else the inputs'
            rate_layers = [layer for layer in rate_layers if layer["kind"] == "neuron"]
        if rate_layers:
            width = max(len(layer["per_step"]["firing_rate"]) for layer in rate_layers)
            grid = np.full((len(rate_layers), width), np.nan)
            for i, layer in enumerate(rate_layers):
                r = np.array([np.nan if v is None else v for v in layer["per_step"]["firing_rate"]], dtype=float)
                grid[i, : r.size] = r
            im = ax_heat.imshow(grid, aspect="auto", interpolation="nearest", cmap="viridis")
            ax_heat.set_yticks(np.arange(len(rate_layers)), [f"{(layer['name'] or '<model>')} ({'in' if layer['kind'] != 'neuron' else 'out'})" for layer in rate_layers])
            fig.colorbar(im, ax=ax_heat, label="firing rate (spikes / neuron / step)")
        ax_heat.set_xlabel("time step")
        ax_heat.set_title("firing rate over layers × time")
        fig.tight_layout()

        def write(fh):
            fig.savefig(fh, format="png", dpi=110)
        try:
            _write_atomic(path, write)
        finally:
            plt.close(fig)


def _si(value: float, unit: str = "") -> str:
    if value == 0:
        return f"0 {unit}".strip()
    prefixes = [(1e12, "T"), (1e9, "G"), (1e6, "M"), (1e3, "k"), (1.0, ""), (1e-3, "m"), (1e-6, "µ"), (1e-9, "n"),
                (1e-12, "p"), (1e-15, "f")]
    for scale, prefix in prefixes:
        if abs(value) >= scale:
            return f"{value / scale:.3g} {prefix}{unit}".strip()
    return f"{value:.3g} {unit}".strip()


def build_report(counter: OperationCounter, profile: HardwareProfile, ann_equivalent: bool = True,
                 ann_convention: str = "once") -> EnergyReport:
    """Energy of the counts in ``counter`` under ``profile`` (see the module docstring for the model)."""
    if ann_convention not in ANN_CONVENTIONS:
        raise ValueError(f"ann_convention: expected one of {ANN_CONVENTIONS}, got {ann_convention!r}")
    samples = max(counter.samples, 1)
    time_steps = counter.time_steps
    layers: list[dict[str, Any]] = []
    totals_energy = {k: 0.0 for k in COMPONENTS}
    totals = {"synops": 0.0, "synops_exact": 0.0, "synops_rate_scaled": 0.0, "macs": 0.0, "macs_effective": 0.0,
              "macs_dense": 0.0, "updates": 0.0, "spikes": 0.0}
    ann = {"once": 0.0, "per_step": 0.0}
    any_dense_input = False
    for c in counter.layers.values():
        if c.kind == "norm":
            continue
        comps = _layer_energy(c, profile, samples)
        per_step_energy = sum(comps.values())
        synops = c.synops_rate_scaled if profile.synop_count == "rate_scaled" else c.synops
        entry: dict[str, Any] = {
            "name": c.name, "kind": c.kind, "steps": c.steps, "binary_input": bool(c.binary_input) if c.is_synaptic else None,
            "synops": c.total("synops_rate_scaled" if profile.synop_count == "rate_scaled" else "synops") / samples if c.is_synaptic else 0.0,
            "synops_exact": c.total("synops") / samples if c.is_synaptic else 0.0,
            "macs": c.total("macs_dense") / samples if (c.is_synaptic and not c.binary_input) else 0.0,
            "macs_effective": c.total("macs_effective") / samples if c.is_synaptic else 0.0,
            "macs_dense": c.total("macs_dense") / samples if c.is_synaptic else 0.0,
            "updates": c.total("updates") / samples, "spikes": c.total("spikes") / samples,
            "energy_pj": {k: float(np.sum(v)) / samples for k, v in comps.items()},
            "total_pj": float(np.sum(per_step_energy)) / samples,
        }
        per_step: dict[str, Any] = {"energy_pj": per_step_energy / samples}
        if c.is_synaptic:
            any_dense_input |= not c.binary_input
            rate = c.input_nonzero / np.maximum(c.input_elements, 1)
            entry["firing_rate"] = c.total("input_nonzero") / max(c.total("input_elements"), 1) if c.binary_input else None
            per_step.update({"synops": synops / samples, "macs": (c.macs_dense if not c.binary_input else 0 * c.macs_dense) / samples,
                             "firing_rate": rate if c.binary_input else None})
            a = _ann_energy(c, profile, samples, time_steps) if ann_equivalent else None
            if a is not None:
                ann["once"] += a["once"]
                ann["per_step"] += a["per_step"]
        elif c.kind == "neuron":
            rate = c.spikes / np.maximum(c.updates, 1)
            entry["firing_rate"] = c.total("spikes") / max(c.total("updates"), 1) if c.spiking else None
            per_step.update({"updates": c.updates / samples, "spikes": c.spikes / samples,
                             "firing_rate": rate if c.spiking else None})
        entry["per_step"] = per_step
        layers.append(entry)
        for k in totals_energy:
            totals_energy[k] += entry["energy_pj"][k]
        totals["synops"] += entry["synops"]
        totals["synops_exact"] += entry["synops_exact"]
        totals["synops_rate_scaled"] += c.total("synops_rate_scaled") / samples if c.is_synaptic else 0.0
        for key in ("macs", "macs_effective", "macs_dense", "updates", "spikes"):
            totals[key] += entry[key]
    total_pj = sum(totals_energy.values())
    totals["energy_pj"] = totals_energy
    totals["total_pj"] = total_pj
    conventions = [
        "energy per sample; counts summed over every time step the layer runs",
        "synaptic operations: " + ("fr x dense MACs per step (spike-driven transformer papers' formula)"
                                   if profile.synop_count == "rate_scaled" else
                                   "each non-zero binary input x its real fan-out (padding/stride/groups included)"),
        "MACs: dense count (every connection of every input element, FLOPs/2) for layers whose input is not binary",
        "BatchNorm folded into the preceding layer: 0 operations",
    ]
    if any_dense_input:
        conventions.append("non-binary input layers (direct encoding) are charged at every time step they run (T times)")
    if profile.kind == "neuromorphic" and any_dense_input:
        conventions.append(f"{profile.name}: non-binary input layers cannot run as spikes; charged as off-chip MACs")
    if ann_equivalent:
        conventions.append("ANN equivalent: same architecture, every synapse a MAC; 'once' = one frame per sample, "
                           "'per_step' = charged at every time step")
    ratio = None
    ann_out = None
    if ann_equivalent:
        ann_out = ann
        ratio = ann[ann_convention] / total_pj if total_pj > 0 else None
    return EnergyReport(
        profile=profile.name,
        profile_info={"description": profile.description, "kind": profile.kind, "synop_count": profile.synop_count,
                      "path": profile.path, "sources": dict(profile.sources)},
        samples=counter.samples, time_steps=time_steps, layers=layers, totals=totals, ann=ann_out,
        ann_convention=ann_convention, ratio=ratio, conventions=conventions, skipped=dict(counter.skipped),
    )
