"""Repository hygiene: no unresolved merge-conflict markers in any tracked text file."""
from __future__ import annotations

import re
import subprocess
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[1]
MARKER = re.compile(r"^(<{7} |>{7} |={7}$)", re.MULTILINE)


def _tracked_files() -> list[Path]:
    try:
        out = subprocess.run(["git", "ls-files"], cwd=ROOT, capture_output=True, text=True, check=True).stdout
    except (OSError, subprocess.CalledProcessError) as error:  # a source tree without git: nothing to check
        pytest.skip(f"not a git checkout: {error}")
    return [ROOT / name for name in out.splitlines()]


def test_no_merge_conflict_markers() -> None:
    offenders = []
    for path in _tracked_files():
        if not path.is_file() or path.suffix in {".h5", ".pt", ".png", ".npz", ".gz", ".so"}:
            continue
        try:
            text = path.read_text(encoding="utf-8")
        except UnicodeDecodeError:
            continue
        for match in MARKER.finditer(text):
            offenders.append(f"{path.relative_to(ROOT)}:{text.count(chr(10), 0, match.start()) + 1}")
    assert not offenders, f"unresolved merge-conflict markers: {offenders}"
