"""The ``snn`` command line."""
from snn.cli.main import main

__all__ = ["main"]
