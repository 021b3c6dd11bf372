import subprocess
import sys

import pytest
import torch

from snn.kernels import backends
from snn.neuron_models import LIF


def test_auto_picks_numba_for_cpu_float32_and_reference_otherwise():
    assert backends.select("auto", torch.zeros(2, 2)).name == "numba"
    assert backends.select("auto", torch.zeros(2, 2, dtype=torch.bfloat16)) is None
    assert backends.select("torch", torch.zeros(2, 2)) is None


def test_explicit_backend_that_cannot_run_says_why():
    with pytest.raises(backends.BackendUnavailable, match="runs on CUDA tensors; the input is on cpu"):
        backends.select("cupy", torch.zeros(2, 2))
    with pytest.raises(backends.BackendUnavailable, match="supports float32 and float64; the input is torch.float16"):
        LIF(backend="numba")(torch.zeros(2, 2, dtype=torch.float16))


def test_half_precision_on_cpu_falls_back_to_reference_under_auto():
    x = torch.rand(5, 2, 3, dtype=torch.bfloat16) * 3
    assert torch.equal(LIF(backend="auto")(x), LIF(backend="torch")(x))


def test_importing_snn_and_running_on_cpu_never_imports_cupy_or_spikingjelly():
    code = (
        "import sys, torch, snn\n"
        "snn.LIF()(torch.rand(3, 2, 4))\n"
        "bad = [m for m in ('cupy', 'spikingjelly', 'torchvision', 'torchaudio') if m in sys.modules]\n"
        "assert not bad, bad\n"
    )
    subprocess.run([sys.executable, "-c", code], check=True)
