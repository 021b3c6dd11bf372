"""Entry point of the ``snn`` command: one sub-command per module under ``snn.cli``."""
from __future__ import annotations

import argparse
import importlib
import sys

# modules under snn.cli that each define ``add_parser(subparsers)`` for their sub-commands
SUBCOMMAND_MODULES = ("snn.cli.data", "snn.cli.train", "snn.cli.energy", "snn.cli.bench", "snn.cli.nir")


def build_parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(
        prog="snn",
        description="Spiking neural networks: train, evaluate, measure energy, prepare data, benchmark.",
    )
    sub = parser.add_subparsers(dest="command", metavar="COMMAND")
    for module_name in SUBCOMMAND_MODULES:
        try:
            module = importlib.import_module(module_name)
        except ModuleNotFoundError as err:
            if err.name == module_name:
                continue  # this group of sub-commands is not part of the install
            raise
        module.add_parser(sub)
    return parser


def main(argv: list[str] | None = None) -> int:
    parser = build_parser()
    args = parser.parse_args(argv)
    if not getattr(args, "func", None):
        parser.print_help()
        return 2
    return int(args.func(args) or 0)


if __name__ == "__main__":
    sys.exit(main())
