"""Entry point of the ``snn`` command (also ``python -m snn``): one sub-command per module under ``snn.cli``.

Errors end a command with one line on stderr and a non-zero exit code, never a traceback:

==============================================================  =====  ==========================================
what                                                            exit   line
==============================================================  =====  ==========================================
bad input: config, dataset file, checkpoint, run folder, value   2     ``snn CMD: error: <message>``
disk full (``ENOSPC``) or quota exceeded while writing           1     ``snn CMD: error: no space left ...``
another ``OSError`` (permissions, I/O error)                     1     ``snn CMD: error: <strerror>: <file>``
Ctrl-C                                                          130    ``snn CMD: interrupted``
the reader of stdout went away (``snn data info F | head``)     141    ``snn CMD: output closed (broken pipe)``
==============================================================  =====  ==========================================

Set ``SNN_TRACEBACK=1`` to get the traceback instead (for bug reports).
"""
from __future__ import annotations

import argparse
import errno
import importlib
import os
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


def _input_errors() -> tuple[type[BaseException], ...]:
    """Exceptions that mean bad input (the message says what to fix), not a bug."""
    from snn.config import ConfigError
    from snn.datasets import DatasetFormatError
    from snn.training.checkpoint import CheckpointMismatchError, UntrustedCheckpointError
    from snn.training.rundir import RunDirError

    return (ConfigError, DatasetFormatError, CheckpointMismatchError, UntrustedCheckpointError, RunDirError,
            FileNotFoundError, NotADirectoryError, IsADirectoryError, ValueError)


def _silence_stdout() -> None:
    """Point stdout at /dev/null so that the interpreter's final flush does not fail again."""
    try:
        devnull = os.open(os.devnull, os.O_WRONLY)
        os.dup2(devnull, sys.stdout.fileno())
    except (OSError, ValueError):
        pass


def _run(args: argparse.Namespace) -> int:
    prog = f"snn {args.command}"
    try:
        code = int(args.func(args) or 0)
        sys.stdout.flush()  # a closed pipe shows here, not in the interpreter's exit
        return code
    except KeyboardInterrupt:
        print(f"\n{prog}: interrupted", file=sys.stderr)
        return 130
    except BrokenPipeError:
        _silence_stdout()
        print(f"{prog}: output closed (broken pipe)", file=sys.stderr)
        return 141
    except _input_errors() as err:
        print(f"{prog}: error: {err}", file=sys.stderr)
        return 2
    except OSError as err:
        where = f": {err.filename}" if err.filename else ""
        if err.errno in (errno.ENOSPC, errno.EDQUOT):
            print(f"{prog}: error: no space left on the device (or quota exceeded) while writing{where}; "
                  f"free some space and run the command again (files written so far are complete or absent)",
                  file=sys.stderr)
        else:
            print(f"{prog}: error: {err.strerror or err}{where}", file=sys.stderr)
        return 1


def main(argv: list[str] | None = None) -> int:
    parser = build_parser()
    args = parser.parse_args(argv)
    if not getattr(args, "func", None):
        parser.print_help()
        return 2
    if os.environ.get("SNN_TRACEBACK"):
        return int(args.func(args) or 0)
    return _run(args)


if __name__ == "__main__":
    sys.exit(main())
