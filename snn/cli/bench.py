"""``snn bench neurons``: the neuron speed/memory benchmark of ``benchmarks/bench_neurons.py``.

The benchmark script lives in the source tree (``benchmarks/``), not in the installed package, so this command
needs a source checkout (an editable install, ``pip install -e .``); ``--script`` points at another copy.
"""
from __future__ import annotations

import argparse
import importlib.util
import sys
from pathlib import Path
from types import ModuleType

DEFAULT_SCRIPT = Path(__file__).resolve().parents[2] / "benchmarks" / "bench_neurons.py"


def load_benchmark(path: Path) -> ModuleType:
    """Import ``benchmarks/bench_neurons.py`` (or ``path``) as a module."""
    if not path.is_file():
        raise FileNotFoundError(
            f"--script: the benchmark script {path} does not exist; `snn bench` needs a source checkout of snn "
            "(pip install -e .) or --script pointing at benchmarks/bench_neurons.py"
        )
    spec = importlib.util.spec_from_file_location("snn_bench_neurons", path)
    assert spec is not None and spec.loader is not None
    module = importlib.util.module_from_spec(spec)
    sys.modules[spec.name] = module
    spec.loader.exec_module(module)
    return module


def _neurons(args: argparse.Namespace) -> int:
    return int(load_benchmark(Path(args.script)).main(args=args))


def add_parser(sub: argparse._SubParsersAction) -> None:
    """Add ``bench`` and its sub-commands to the ``snn`` command."""
    bench = sub.add_parser("bench", help="speed and memory benchmarks against peer libraries")
    bench_sub = bench.add_subparsers(dest="bench_command", metavar="BENCHMARK")
    neurons = bench_sub.add_parser(
        "neurons", help="LIF forward / forward+backward time and training memory vs SpikingJelly, snnTorch, Norse",
        description="LIF forward / forward+backward time and training memory: our backends vs SpikingJelly 2.0, "
        "snnTorch and Norse (when installed), on T=100,B=32,N=1024 and the Open Neuromorphic Linear+LIF shapes.",
    )
    neurons.add_argument("--script", default=str(DEFAULT_SCRIPT), help="path of benchmarks/bench_neurons.py")
    # the options are the script's own; read them from it when the checkout is there
    if DEFAULT_SCRIPT.is_file():
        load_benchmark(DEFAULT_SCRIPT).add_arguments(neurons)
    neurons.set_defaults(func=_neurons)
    bench.set_defaults(func=lambda args: bench.print_help() or 2)
