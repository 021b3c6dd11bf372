"""``snn export`` and ``snn import``: move trained networks out to and in from NIR files (:mod:`snn.interop.nir`)."""
from __future__ import annotations

import argparse
import json
import warnings

__all__ = ["add_parser"]

_EXPORT_EPILOG = """\
examples:
  snn export runs/spoken_digits-20250101-120000 --to model.nir
  snn export runs/my_run/last.pt --to model.nir --dt 0.001

The file holds the inference network (integer delays, BatchNorm folded, dropout and surrogates left out); the
simulation step goes into its metadata ("dt", seconds) so `snn import` and other tools can read it back.
"""

_IMPORT_EPILOG = """\
examples:
  snn import model.nir                   (dt from the file's metadata, as `snn export` writes it)
  snn import norse_graph.nir --dt 0.001 --steps 100
"""


def add_parser(sub: argparse._SubParsersAction) -> None:
    """Register ``export`` and ``import`` on the ``snn`` command's sub-parsers."""
    e = sub.add_parser(
        "export", help="write a trained run's network as a NIR graph",
        description="Rebuild the network of a run folder (its best.pt) or checkpoint in its inference form and write "
                    "it as a NIR graph (HDF5), readable by snnTorch, Norse, SpikingJelly and neuromorphic toolchains.",
        epilog=_EXPORT_EPILOG, formatter_class=argparse.RawDescriptionHelpFormatter,
    )
    e.add_argument("run", metavar="RUN", help="run folder (uses best.pt) or a .pt checkpoint")
    e.add_argument("--to", dest="out", metavar="FILE.nir", required=True, help="output NIR file")
    e.add_argument("--checkpoint", choices=("best", "last"), default="best",
                   help="which checkpoint of a run folder (default best)")
    e.add_argument("--dt", type=float, default=None, metavar="SECONDS",
                   help="simulation step in seconds (default: the run's data.dt_ms / 1000)")
    e.add_argument("--trust-checkpoint", action="store_true",
                   help="load a checkpoint that holds pickled Python objects (only for files whose source you trust)")
    e.set_defaults(func=_export)

    i = sub.add_parser(
        "import", help="build the network of a NIR graph and report what it contains",
        description="Read a NIR file (from snn export, snnTorch, Norse, ...), build this package's module for it and "
                    "list its nodes, neurons and parameters; --steps runs it on random spikes.",
        epilog=_IMPORT_EPILOG, formatter_class=argparse.RawDescriptionHelpFormatter,
    )
    i.add_argument("file", metavar="FILE.nir", help="NIR graph file")
    i.add_argument("--dt", type=float, default=None, metavar="SECONDS",
                   help="simulation step in seconds (default: the file's metadata 'dt')")
    i.add_argument("--steps", type=int, default=0, metavar="T",
                   help="also run T steps of random input spikes (batch 1) and report the output")
    i.add_argument("--json", action="store_true", help="print the report as JSON")
    i.set_defaults(func=_import)


def _export(args: argparse.Namespace) -> int:
    import contextlib

    import snn
    from snn.interop.nir import NIRExportWarning, to_nir, write_nir
    from snn.training.checkpoint import trust_checkpoints
    from snn.training.experiment import load_run

    # bad input (run folder, checkpoint, unrepresentable layer): one line and exit code 2, in snn.cli.main
    with trust_checkpoints(args.trust_checkpoint):
        model, cfg, _data = load_run(args.run, device="cpu", checkpoint=args.checkpoint)
    dt = args.dt if args.dt is not None else cfg.data.dt_ms / 1000.0
    evaluation = model.evaluation() if hasattr(model, "evaluation") else contextlib.nullcontext()
    with warnings.catch_warnings(record=True) as caught, evaluation:
        warnings.simplefilter("always", NIRExportWarning)
        graph = to_nir(model, dt)
    graph.metadata.update({"model": str(cfg.model.name), "source": str(args.run)})
    path = write_nir(graph, args.out)
    kinds = [type(n).__name__ for k, n in graph.nodes.items() if k not in ("input", "output")]
    print(f"wrote {path}: {cfg.model.name} as {len(kinds)} NIR nodes ({', '.join(kinds)}), dt = {dt:g} s "
          f"(snn-sim {snn.__version__})")
    for w in caught:
        if issubclass(w.category, NIRExportWarning):
            print(f"note: {w.message}")
    return 0


def _report(graph, net, dt: float) -> dict:
    import numpy as np

    neurons = {"spiking": 0, "leaky_integrator": 0}
    nodes: dict[str, int] = {}

    def walk(g) -> None:
        for node in g.nodes.values():
            kind = type(node).__name__
            nodes[kind] = nodes.get(kind, 0) + 1
            if kind == "NIRGraph":
                walk(node)
            elif kind in ("LIF", "IF", "CubaLIF"):
                neurons["spiking"] += int(np.asarray(node.v_threshold).size)
            elif kind in ("LI", "CubaLI"):
                neurons["leaky_integrator"] += int(np.asarray(node.v_leak).size)

    walk(graph)

    def shape(types) -> list[int] | None:
        value = next(iter(types.values()), None) if types else None
        return None if value is None else [int(v) for v in np.atleast_1d(value)]

    def recurrent(m) -> bool:
        return m.recurrent or any(recurrent(c) for c in m.modules() if c is not m and hasattr(c, "back_edges"))

    return {
        "dt": dt, "nodes": nodes, "neurons": neurons,
        "parameters": int(sum(p.numel() for p in net.parameters()) + sum(b.numel() for b in net.buffers())),
        "recurrent": recurrent(net), "input_shape": shape(graph.input_type), "output_shape": shape(graph.output_type),
        "metadata": {k: (v.item() if hasattr(v, "item") else v) for k, v in (graph.metadata or {}).items()},
        "summary": net.summary(),
    }


def _import(args: argparse.Namespace) -> int:
    import torch

    from snn.interop.nir import from_nir, read_nir

    if args.steps < 0:
        raise ValueError(f"--steps: expected a number >= 0, got {args.steps}")
    graph = read_nir(args.file)
    dt = args.dt if args.dt is not None else (graph.metadata or {}).get("dt")
    if dt is None:
        raise ValueError(f"{args.file}: the file stores no 'dt' in its metadata; pass --dt SECONDS (the step the "
                         "graph was made for; snnTorch's exporter uses 1e-4)")
    net = from_nir(graph, float(dt))
    report = _report(graph, net, float(dt))
    if args.steps:
        if report["input_shape"] is None:
            raise ValueError(f"{args.file}: the graph's input shape is undefined, so --steps cannot make an input")
        g = torch.Generator().manual_seed(0)
        x = (torch.rand((args.steps, 1, *report["input_shape"]), generator=g) < 0.1).float()
        with torch.no_grad():
            y = net(x)
        report["run"] = {"steps": args.steps, "output_shape": list(y.shape), "output_mean": float(y.mean())}
    if args.json:
        print(json.dumps(report, indent=2))
        return 0
    n = report["neurons"]
    print(f"{args.file}: dt = {report['dt']:g} s, input {report['input_shape']} -> output {report['output_shape']}")
    print(f"  {n['spiking']} spiking neurons, {n['leaky_integrator']} leaky integrators, {report['parameters']} values"
          f"{', recurrent' if report['recurrent'] else ''}")
    print("  nodes: " + ", ".join(f"{k} x{v}" for k, v in sorted(report["nodes"].items())))
    if report["metadata"]:
        print("  metadata: " + ", ".join(f"{k}={v}" for k, v in report["metadata"].items()))
    for line in report["summary"]:
        print(f"    {line}")
    if "run" in report:
        r = report["run"]
        print(f"  ran {r['steps']} steps of random spikes: output {r['output_shape']}, mean {r['output_mean']:.4g}")
    return 0
