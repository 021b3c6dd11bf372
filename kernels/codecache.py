"""Where generated kernel sources and their compiled artefacts live (written with :mod:`snn.atomic`)."""
from __future__ import annotations

import hashlib
import os
from pathlib import Path


def cache_dir(kind: str) -> Path:
    """``$SNN_CACHE_DIR/<kind>`` (default ``~/.cache/snn/<kind>``), created on first use."""
    root = os.environ.get("SNN_CACHE_DIR") or os.path.join(os.path.expanduser("~"), ".cache", "snn")
    path = Path(root) / kind
    path.mkdir(parents=True, exist_ok=True)
    return path


def digest(text: str) -> str:
    return hashlib.sha256(text.encode()).hexdigest()[:16]

