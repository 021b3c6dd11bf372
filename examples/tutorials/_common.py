"""Shared by the tutorials: ``QUICK`` (set ``SNN_TUTORIAL_QUICK=1``, as CI does) shrinks every run to seconds."""
from __future__ import annotations

import os

QUICK = os.environ.get("SNN_TUTORIAL_QUICK", "") not in ("", "0")


def epochs(full: int, quick: int = 1) -> int:
    """``full`` epochs normally, ``quick`` in CI."""
    return quick if QUICK else full
