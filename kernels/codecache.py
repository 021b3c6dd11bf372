"""Where generated kernel sources and their compiled artefacts live, written atomically."""
from __future__ import annotations

import hashlib
import os
import tempfile
from pathlib import Path


def cache_dir(kind: str) -> Path:
    """``$SNN_CACHE_DIR/<kind>`` (default ``~/.cache/snn/<kind>``), created on first use."""
    root = os.environ.get("SNN_CACHE_DIR") or os.path.join(os.path.expanduser("~"), ".cache", "snn")
    path = Path(root) / kind
    path.mkdir(parents=True, exist_ok=True)
    return path


def digest(text: str) -> str:
    return hashlib.sha256(text.encode()).hexdigest()[:16]


def write_atomic(path: Path, data: bytes | str) -> None:
    """Write ``data`` to ``path`` through a temporary file and a rename, so readers never see half a file."""
    mode = "wb" if isinstance(data, bytes) else "w"
    fd, tmp = tempfile.mkstemp(dir=path.parent, prefix=path.name + ".", suffix=".tmp")
    try:
        with os.fdopen(fd, mode) as handle:
            handle.write(data)
        os.replace(tmp, path)
    except BaseException:
        if os.path.exists(tmp):
            os.unlink(tmp)
        raise
