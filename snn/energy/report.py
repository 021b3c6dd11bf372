r"""Turning operation counts into energy with a hardware profile, and the report that holds the result.

All energies are **per sample** in pJ (totals over the data divided by the number of samples run), counted on each
sample's real steps only.

Compute part (every profile):

.. math::

    E_{ops} = E_{AC}\,\mathrm{SOPs} + E_{MAC}\,\mathrm{MACs}_{real\ inputs} + E_{neuron}\,\mathrm{updates}
              + E_{spike}\,\mathrm{spikes}

SOPs are the events entering a layer (spikes, or integer spike counts: a count ``k`` is ``k`` events) times their
real fan-out; with ``synop_count: rate_scaled`` (the spike-driven transformer papers)
``SOPs_l = Σ_t fr_{l,t} · MACs_{l,t}`` instead. Real-valued inputs (direct encoding of images or audio samples)
are charged their dense MACs at every step they run.

Memory-aware profiles (Lemaire et al. 2022) add addressing and memory terms; see
``snn/energy/profiles/memory_aware_45nm.yaml`` for the per-access model. Each access of ``w`` bytes to a buffer of
capacity ``C`` costs ``w · e(C)`` with ``e`` interpolated from the Horowitz SRAM points.

ANN equivalent: the same architecture with every synapse a MAC (dense MACs of every synaptic row per frame; the
activation functions free). ``E_frame`` is computed per sample-step, so batches of mixed lengths give the per-sample
value. Two conventions:

* ``per_step`` (like-for-like, the default): the ANN is applied to the same frames as the SNN, i.e. each sample's
  real input steps: ``E_ANN = E_frame · mean_b F_b`` with ``F_b = P_b · L_b`` (``P_b`` passes of the inference over
  the sample, e.g. one per label for forward-forward; 1 for most models). A model that makes its own time steps
  from one frame of intensities (a Poisson encoder, :class:`snn.energy.protocol.OwnTimeAxis`) declares the frames
  its ANN equivalent reads (1 per pass), so its ANN is not charged at every step the SNN runs;
* ``once``: one frame per pass (what the spike-driven transformer papers use for a static image):
  ``E_ANN = E_frame · mean_b P_b``.

The ANN/SNN ratio is reported under two conventions for the SNN: the **Spike-Driven Transformer papers'** (first
synaptic layer charged as MACs at every real step whatever its input, the other layers ``E_AC × SOPs``, no neuron
or memory terms; ``report.ratio``) and the **event** convention (this report's total, where event inputs of the
first layer are accumulates too).
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

__all__ = ["EnergyReport", "build_report", "COMPONENTS", "ANN_CONVENTIONS", "SNN_CONVENTIONS"]

COMPONENTS = ("synaptic", "mac", "neuron", "addressing", "weights", "potentials", "activations")
ANN_CONVENTIONS = ("per_step", "once")
SNN_CONVENTIONS = ("sdt", "events")


def _write_atomic(path: str | os.PathLike, write) -> None:
    """``write(handle)`` into ``path`` atomically, creating its folder."""
    os.makedirs(os.path.dirname(os.path.abspath(path)), exist_ok=True)
    with atomic_open(path, "wb") as handle:
        write(handle)


def _layer_energy(c: LayerCounts, p: HardwareProfile, samples: int) -> dict[str, np.ndarray]:
    """Energy components of one row per step (pJ, summed over samples)."""
    n = max(c.synops.size, c.updates.size, 1)
    out = {k: np.zeros(n) for k in COMPONENTS}
    wb = p.word_bytes
    e = p.memory_pj_per_byte
    mem = p.memory_aware
    if c.is_synaptic:
        synops = c.synops_rate_scaled if p.synop_count == "rate_scaled" else c.synops
        out["synaptic"] = p.ac_pj * synops
        out["mac"] = p.mac_pj * c.macs
        if mem:
            if c.total("synops") > 0:
                out["addressing"] = p.addressing_pj * synops
                out["weights"] = synops * wb * e(c.params * wb)
                out_per_sample = c.output_elements.max(initial=0) / samples
                out["potentials"] = 2 * synops * wb * e(out_per_sample * wb)
                out["activations"] = c.input_nonzero * wb * e(p.spike_fifo_bytes)
            if c.total("macs") > 0:  # the calls with real-valued input, as a fraction of each step's dense MACs
                share = np.divide(c.macs, c.macs_dense, out=np.zeros_like(c.macs), where=c.macs_dense > 0)
                for k, v in _dense_memory(c, p, samples, share).items():
                    out[k] = out[k] + v
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


def _ann_energy(c: LayerCounts, p: HardwareProfile, samples: int) -> float:
    """ANN-equivalent energy of a synaptic row over all the data (pJ): its dense MACs (and memory)."""
    total = p.mac_pj * c.total("macs_dense")
    if p.memory_aware:
        total += sum(float(np.sum(v)) for v in _dense_memory(c, p, samples, 1.0).values())
    return total


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
        samples: samples run; time_steps: longest padded ``T`` of the input; frames_per_sample: mean real input
            steps per sample (``L_b``); passes_per_sample: model calls per sample (``P_b``); ann_frames_per_sample:
            frames the ANN equivalent reads per sample (``F_b``, all passes).
        form: which form of the model was counted (e.g. its ``evaluation()`` context).
        layers: per row: ``name, kind, rule`` (``events``/``MACs``/``mixed``) and ``rule_reasons``,
            ``steps_per_sample`` (mean real steps the row ran per sample), ``steps`` (per-step series length),
            per-sample totals (``synops``, ``macs``, ``macs_effective``, ``macs_dense``, ``updates``, ``spikes``),
            ``energy_pj`` by component, ``total_pj``, ``firing_rate`` and per-step series ``per_step``.
        totals: per-sample totals of the counts and ``energy_pj`` by component, ``total_pj``.
        ann: ANN-equivalent energy (pJ per sample) ``{"per_step": ..., "once": ...}``.
        ratios: ``{snn_convention: {ann_convention: ANN / SNN}}`` for ``sdt`` and ``events`` (> 1: SNN cheaper);
        snn_sdt_pj: SNN energy under the spike-driven transformer convention; ann_convention: the one of ``ratio``;
        ratio: the headline, ``ratios["sdt"][ann_convention]``.
        conventions: the counting conventions, in words; skipped: rows with uncounted operations.
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
    ratios: dict[str, dict[str, float | None]] | None = None
    snn_sdt_pj: float = 0.0
    frames_per_sample: float = 0.0
    passes_per_sample: float = 1.0
    ann_frames_per_sample: float = 0.0
    form: str = "as is"
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
            "time_steps": self.time_steps, "frames_per_sample": self.frames_per_sample,
            "passes_per_sample": self.passes_per_sample, "ann_frames_per_sample": self.ann_frames_per_sample,
            "form": self.form,
            "totals": self.totals, "ann": self.ann, "ann_convention": self.ann_convention, "ratio": self.ratio,
            "ratios": self.ratios, "snn_sdt_pj": self.snn_sdt_pj, "conventions": self.conventions,
            "skipped": self.skipped, "layers": self.layers,
        })

    def to_json(self, path: str | os.PathLike) -> None:
        """Write the report as JSON (atomically: temp file + ``os.replace``)."""
        text = json.dumps(self.to_dict(), indent=2).encode("utf-8")
        _write_atomic(path, lambda fh: fh.write(text))

    def table(self) -> str:
        """A plain-text table: one row per layer, then the totals, the input rules and the ANN comparison."""
        header = (f"{'layer':<24} {'kind':<7} {'rule':<6} {'steps':>6} {'rate':>7} {'SynOps':>10} {'MACs':>10} "
                  f"{'updates':>9} {'energy':>10}")
        lines = [f"Energy per sample — profile {self.profile} ({self.profile_info.get('description', '')})",
                 f"{self.samples} samples, {self.frames_per_sample:.1f} real input steps per sample on average "
                 f"(batches padded to at most {self.time_steps}); model form counted: {self.form}"
                 + (f"; the inference ran the model {self.passes_per_sample:g} times per sample (every figure "
                    "covers all of them)" if self.passes_per_sample != 1 else ""),
                 "'steps': real steps each layer ran per sample, on average (more after a layer that lengthens "
                 "the time axis, e.g. a delay layer's right padding); 'rate': spikes per neuron per step (neuron "
                 "rows: their output; synapse rows: their input); 'updates': neuron state updates per sample (one "
                 "per neuron per real step); SynOps: input events × fan-out; MACs: real-valued inputs, every "
                 "connection",
                 header, "-" * len(header)]
        for layer in self.layers:
            rate = layer.get("firing_rate")
            lines.append(
                f"{(layer['name'] or '<model>')[:24]:<24} {layer['kind'][:7]:<7} {(layer['rule'] or '')[:6]:<6} "
                f"{layer['steps_per_sample']:>6.1f} {('' if rate is None else f'{rate:.4f}'):>7} "
                f"{_si(layer['synops']):>10} {_si(layer['macs']):>10} {_si(layer['updates']):>9} "
                f"{_si(layer['total_pj'] * 1e-12, 'J'):>10}"
            )
        t = self.totals
        lines.append("-" * len(header))
        lines.append(f"{'total':<24} {'':<7} {'':<6} {'':>6} {'':>7} {_si(t['synops']):>10} {_si(t['macs']):>10} "
                     f"{_si(t['updates']):>9} {_si(t['total_pj'] * 1e-12, 'J'):>10}")
        parts = ", ".join(f"{k} {_si(v * 1e-12, 'J')}" for k, v in t["energy_pj"].items() if v)
        lines.append(f"by component: {parts or 'none'}")
        for layer in self.layers:
            for reason, rule in (layer.get("rule_reasons") or {}).items():
                what = "AC x fan-out per event" if rule == "events" else "dense MACs at every step it runs"
                lines.append(f"input rule: {layer['name'] or '<model>'!r} {rule}: {reason} -> {what}")
        if self.ann is not None and self.ratios is not None:
            r = self.ratios
            passes = f" in {self.passes_per_sample:g} passes" if self.passes_per_sample != 1 else ""
            lines.append(f"ANN with the same architecture on the same frames ({self.ann_frames_per_sample:.1f} frames "
                         f"per sample{passes}, like-for-like): {_si(self.ann['per_step'] * 1e-12, 'J')} per sample")
            lines.append(f"  ANN/SNN = {_fmt(r['sdt']['per_step'])} under the Spike-Driven Transformer papers' "
                         f"convention (first layer MACs at every step, other layers AC x SOPs; SNN "
                         f"{_si(self.snn_sdt_pj * 1e-12, 'J')})")
            lines.append(f"  ANN/SNN = {_fmt(r['events']['per_step'])} with event inputs counted as events (this "
                         f"report's total, {_si(self.total_pj * 1e-12, 'J')})")
            lines.append(f"ANN once per sample (one frame{' per pass' if passes else ''}): "
                         f"{_si(self.ann['once'] * 1e-12, 'J')}; ANN/SNN = "
                         f"{_fmt(r['sdt']['once'])} (Spike-Driven Transformer convention), {_fmt(r['events']['once'])} "
                         "(events)")
        lines.extend(f"note: {c}" for c in self.conventions)
        lines.extend(f"warning: {k!r} ({v}) skipped" for k, v in self.skipped.items())
        return "\n".join(lines)

    def __str__(self) -> str:
        return self.table()

    def plot(self, path: str | os.PathLike) -> None:
        """Save a figure: per-layer energy bars by component (left), firing rate over layers × time (right)."""
        import matplotlib
        matplotlib.use("Agg")
        import matplotlib.pyplot as plt

        names = [layer["name"] or "<model>" for layer in self.layers]
        ann_pj = self.ann["per_step"] if self.ann is not None else None
        rows = names + (["ANN, same architecture"] if ann_pj is not None else [])
        fig, (ax_bar, ax_heat) = plt.subplots(1, 2, figsize=(13, max(3.5, 0.35 * len(rows) + 2)))
        largest = max([float(sum(layer["energy_pj"].values())) for layer in self.layers] + [ann_pj or 0.0, 1.0])
        scale, unit = _energy_unit(largest)
        y = np.arange(len(rows))
        left = np.zeros(len(rows))
        for comp in COMPONENTS:
            vals = np.array([layer["energy_pj"][comp] for layer in self.layers] + ([0.0] if ann_pj is not None else []),
                            dtype=float) / scale
            if vals.any():
                ax_bar.barh(y, vals, left=left, label=comp)
                left += vals
        if ann_pj is not None:
            ax_bar.barh(y[-1], ann_pj / scale, color="0.6", hatch="//", label="ANN (every synapse a MAC, same frames)")
        empty = [n for n, layer in zip(names, self.layers) if not any(layer["energy_pj"].values())]
        ax_bar.set_yticks(y, rows)
        ax_bar.invert_yaxis()
        ax_bar.set_xlabel(f"energy per sample ({unit})")
        title = f"energy by layer and component ({self.profile})"
        if empty:
            title += (f"\nno bar: {', '.join(empty[:4])}{' …' if len(empty) > 4 else ''} — nothing this profile prices "
                      "(e.g. neuron updates under a compute-only profile, or no input events)")
        ax_bar.set_title(title, fontsize=10)
        if left.any() or ann_pj is not None:
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


def _energy_unit(largest_pj: float) -> tuple[float, str]:
    """``(divisor, unit)`` that shows energies given in pJ with readable numbers (pJ, nJ, µJ or mJ)."""
    for scale, unit in ((1e9, "mJ"), (1e6, "µJ"), (1e3, "nJ")):
        if largest_pj >= scale:
            return scale, unit
    return 1.0, "pJ"


def _si(value: float, unit: str = "") -> str:
    if value == 0:
        return f"0 {unit}".strip()
    prefixes = [(1e12, "T"), (1e9, "G"), (1e6, "M"), (1e3, "k"), (1.0, ""), (1e-3, "m"), (1e-6, "µ"), (1e-9, "n"),
                (1e-12, "p"), (1e-15, "f")]
    for scale, prefix in prefixes:
        if abs(value) >= scale:
            return f"{value / scale:.3g} {prefix}{unit}".strip()
    return f"{value:.3g} {unit}".strip()


def _fmt(value: float | None) -> str:
    return "n/a (SNN energy 0)" if value is None else f"{value:.3g}"


def _ratio(ann: float, snn: float) -> float | None:
    return ann / snn if snn > 0 else None


def build_report(counter: OperationCounter, profile: HardwareProfile, ann_equivalent: bool = True,
                 ann_convention: str = "per_step") -> EnergyReport:
    """Energy of the counts in ``counter`` under ``profile`` (see the module docstring for the model)."""
    if ann_convention not in ANN_CONVENTIONS:
        raise ValueError(f"ann_convention: expected one of {ANN_CONVENTIONS}, got {ann_convention!r}")
    samples = max(counter.samples, 1)
    frames = counter.frames / samples
    passes = counter.passes / samples if counter.passes else 1.0
    ann_frames = counter.ann_frames / samples if counter.passes else frames
    rate_scaled = profile.synop_count == "rate_scaled"
    layers: list[dict[str, Any]] = []
    totals_energy = {k: 0.0 for k in COMPONENTS}
    totals = {"synops": 0.0, "synops_exact": 0.0, "synops_rate_scaled": 0.0, "macs": 0.0, "macs_effective": 0.0,
              "macs_dense": 0.0, "updates": 0.0, "spikes": 0.0}
    ann_frame = ann_compute_frame = ann_fixed = ann_compute_fixed = 0.0
    sdt = 0.0
    first = True
    any_real, any_counts, unmasked = False, False, []
    for c in counter.layers.values():
        if c.kind == "norm":
            continue
        comps = _layer_energy(c, profile, samples)
        per_step_energy = sum(comps.values())
        syn = c.is_synaptic
        synops = c.synops_rate_scaled if rate_scaled else c.synops
        entry: dict[str, Any] = {
            "name": c.name, "kind": c.kind, "rule": c.rule if syn else None,
            "rule_reasons": dict(c.rules) if syn else None, "steps": c.steps,
            "steps_per_sample": c.sample_steps / samples, "binary_input": bool(c.binary_input) if syn else None,
            "synops": float(np.sum(synops)) / samples if syn else 0.0,
            "synops_exact": c.total("synops") / samples if syn else 0.0,
            "macs": c.total("macs") / samples if syn else 0.0,
            "macs_effective": c.total("macs_effective") / samples if syn else 0.0,
            "macs_dense": c.total("macs_dense") / samples if syn else 0.0,
            "updates": c.total("updates") / samples, "spikes": c.total("spikes") / samples,
            "energy_pj": {k: float(np.sum(v)) / samples for k, v in comps.items()},
            "total_pj": float(np.sum(per_step_energy)) / samples,
        }
        per_step: dict[str, Any] = {"energy_pj": per_step_energy / samples}
        if syn:
            any_real |= c.total("macs") > 0
            any_counts |= any("count" in r and v == "events" for r, v in c.rules.items())
            if c.unmasked:
                unmasked.append(c.name or "<model>")
            rate = np.divide(c.input_nonzero, c.input_elements, out=np.zeros_like(c.input_nonzero),
                             where=c.input_elements > 0)
            entry["firing_rate"] = (c.total("input_nonzero") / max(c.total("input_elements"), 1)
                                    if c.binary_input else None)
            per_step.update({"synops": synops / samples, "macs": c.macs / samples,
                             "firing_rate": rate if c.binary_input else None})
            if ann_equivalent and c.sample_steps > 0:  # per real frame of one sample
                ann_frame += _ann_energy(c, profile, samples) / c.sample_steps
                ann_compute_frame += profile.mac_pj * c.total("macs_dense") / c.sample_steps
            elif ann_equivalent:  # steps not resolvable: the whole sequence, once per sample
                ann_fixed += _ann_energy(c, profile, samples) / samples
                ann_compute_fixed += profile.mac_pj * c.total("macs_dense") / samples
            # the spike-driven transformer papers: first layer MACs at every step, the others as counted
            sdt += (profile.mac_pj * entry["macs_dense"] if first else
                    profile.ac_pj * entry["synops"] + profile.mac_pj * entry["macs"])
            first = False
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
        totals["synops_rate_scaled"] += c.total("synops_rate_scaled") / samples if syn else 0.0
        for key in ("macs", "macs_effective", "macs_dense", "updates", "spikes"):
            totals[key] += entry[key]
    total_pj = sum(totals_energy.values())
    totals["energy_pj"] = totals_energy
    totals["total_pj"] = total_pj
    conventions = [
        "energy per sample; counts summed over each sample's real steps (padded steps cost nothing)",
        "synaptic operations: " + ("fr x dense MACs per step (spike-driven transformer papers' formula)"
                                   if rate_scaled else
                                   "each input event x its real fan-out (padding/stride/groups included); "
                                   "an integer spike count k is k events"),
        "MACs: dense count (every connection of every input element, FLOPs/2) for layers whose input is real-valued",
        "BatchNorm folded into the preceding layer: 0 operations",
    ]
    if any_real:
        conventions.append("real-valued inputs (e.g. direct encoding of images or audio samples) are charged dense "
                           "MACs at every step they run (T times)")
    if any_counts:
        conventions.append("event inputs given as integer spike counts are events (a count k = k spikes), not "
                           "direct encoding")
    if profile.kind == "neuromorphic" and any_real:
        conventions.append(f"{profile.name}: real-valued inputs cannot run as spikes; charged as off-chip MACs")
    if unmasked:
        conventions.append(f"steps not resolvable for {unmasked}: their padded steps could not be dropped")
    ann_out = ratios = ratio = None
    if ann_equivalent:
        ann_out = {"per_step": ann_frame * ann_frames + ann_fixed, "once": ann_frame * passes + ann_fixed}
        sdt_ann = {"per_step": ann_compute_frame * ann_frames + ann_compute_fixed,
                   "once": ann_compute_frame * passes + ann_compute_fixed}
        ratios = {"sdt": {k: _ratio(v, sdt) for k, v in sdt_ann.items()},
                  "events": {k: _ratio(v, total_pj) for k, v in ann_out.items()}}
        ratio = ratios["sdt"][ann_convention]
        conventions.append("ANN equivalent: same architecture, every synapse a MAC, priced per real frame; "
                           "'per_step' = on the same frames as the SNN (like-for-like), 'once' = one frame per sample"
                           + (" and pass" if passes != 1 else ""))
        if abs(ann_frames - frames * passes) > 1e-9 * max(ann_frames, 1.0):
            conventions.append(f"the model makes its own time steps from one frame of its input: its ANN equivalent "
                               f"reads {ann_frames:g} frame(s) per sample, not one per step the SNN runs")
    return EnergyReport(
        profile=profile.name,
        profile_info={"description": profile.description, "kind": profile.kind, "synop_count": profile.synop_count,
                      "path": profile.path, "sources": dict(profile.sources)},
        samples=counter.samples, time_steps=counter.time_steps, layers=layers, totals=totals, ann=ann_out,
        ann_convention=ann_convention, ratio=ratio, ratios=ratios, snn_sdt_pj=sdt, frames_per_sample=frames,
        passes_per_sample=passes, ann_frames_per_sample=ann_frames,
        form=counter.form or "as is", conventions=conventions, skipped=dict(counter.skipped),
    )
