"""Every tutorial script runs to the end (quick settings, as CI runs them), so a tutorial cannot rot."""
from __future__ import annotations

import os
import subprocess
import sys
from pathlib import Path

import pytest

TUTORIALS = Path(__file__).resolve().parents[2] / "examples" / "tutorials"
EXPECT = {
    "t01_first_snn.py": "validation accuracy",
    "t02_learnable_delays.py": "delay layer 0: mean",
    "t03_energy.py": "synaptic operations and",
    "t04_new_capabilities.py": "ELM on spoken digits: test accuracy",
}


def test_every_tutorial_is_listed():
    assert sorted(p.name for p in TUTORIALS.glob("t*.py")) == sorted(EXPECT)


@pytest.mark.slow
@pytest.mark.parametrize("name", sorted(EXPECT))
def test_tutorial_runs(name, tmp_path):
    env = dict(os.environ, SNN_TUTORIAL_QUICK="1", OMP_NUM_THREADS="1", NUMBA_NUM_THREADS="1", MPLBACKEND="Agg",
               PYTHONPATH=str(TUTORIALS) + os.pathsep + os.environ.get("PYTHONPATH", ""))
    done = subprocess.run([sys.executable, str(TUTORIALS / name)], cwd=tmp_path, env=env, capture_output=True,
                          text=True, timeout=900)
    assert done.returncode == 0, done.stderr[-3000:]
    assert EXPECT[name] in done.stdout
