"""Shared neuron variants for the kernel tests: every LIF-family and adaptive-LIF option combination."""
from __future__ import annotations

import itertools
import os
import shutil
import subprocess

import pytest

from snn import surrogate
from snn.neuron_models.adaptive_lif import adaptive_lif_dynamics
from snn.neuron_models.lif import lif_dynamics

SURROGATES = tuple(cls.__name__ for cls in surrogate.ALL)


def lif_variants():
    """(dynamics, scalars) for hard/soft × decay_input × detach × every surrogate for LIF (τ divided by), and IF;
    ParametricLIF's multiplied leak with two surrogates (the surrogate is independent of the leak)."""
    out = []
    options = itertools.product((True, False), (True, False), (True, False), SURROGATES)
    for hard, decay_input, detach, sg in options:
        leaks = ["divide"] + (["multiply"] if sg in ("ATan", "Sigmoid") else []) + (["none"] if decay_input else [])
        for leak in leaks:
            scalars = [1.0, -0.2] if hard else [1.0]
            out.append((lif_dynamics(hard, decay_input, detach, leak, sg), scalars + _sg_params(sg)))
    return out


def alif_variants():
    """(dynamics, scalars) for hard/soft × decay_input × detach × every surrogate (fixed τ, divided by), and the
    learnable-τ form (multiplied) with ATan."""
    out = []
    for hard, decay_input, detach, sg in itertools.product((True, False), (True, False), (True, False), SURROGATES):
        for learn_tau in (False, True) if sg == "ATan" else (False,):
            scalars = [1.0, 1.8, -0.2] if hard else [1.0, 1.8]
            out.append((adaptive_lif_dynamics(hard, decay_input, detach, sg, learn_tau), scalars + _sg_params(sg)))
    return out


def all_variants():
    return lif_variants() + alif_variants()


def _sg_params(name: str) -> list[float]:
    cls = {c.__name__: c for c in surrogate.ALL}[name]
    return list(cls().parameters)


def pytest_generate_tests(metafunc):
    """Tests that take a ``variant`` argument run once per neuron variant (id: the dynamics key)."""
    if "variant" in metafunc.fixturenames:
        variants = all_variants()
        metafunc.parametrize("variant", variants, ids=[d.key for d, _ in variants])


@pytest.fixture(scope="session")
def kernel_variants():
    """Every (dynamics, scalars) pair of the LIF family and adaptive LIF."""
    return all_variants()


NVCC_FLAGS = ("--ptx", "-std=c++17", "--fmad=false")


def nvcc_path() -> str | None:
    """``nvcc`` on ``PATH`` or at ``/usr/local/cuda/bin/nvcc``; ``None`` when absent."""
    found = shutil.which("nvcc")
    if found:
        return found
    default = "/usr/local/cuda/bin/nvcc"
    return default if os.path.exists(default) else None


@pytest.fixture(scope="session")
def compile_ptx():
    """``compile_ptx(tmp_path, code, arch, extra=())`` → the PTX text, asserting that nvcc succeeds. Without nvcc the
    test skips, or fails under ``SNN_REQUIRE_PEERS=1`` (CI, whose machines have the CUDA toolkit)."""
    nvcc = nvcc_path()
    if nvcc is None:
        message = "nvcc not found (PATH or /usr/local/cuda/bin): install the CUDA toolkit to compile the kernels to PTX"
        if os.environ.get("SNN_REQUIRE_PEERS", "") not in ("", "0"):
            pytest.fail(f"SNN_REQUIRE_PEERS=1: {message}")
        pytest.skip(message)

    def compile_(tmp_path, code: str, arch: str, extra: tuple[str, ...] = ()) -> str:
        src, ptx = tmp_path / f"kernels_{arch}.cu", tmp_path / f"kernels_{arch}.ptx"
        src.write_text(code)
        result = subprocess.run([nvcc, *NVCC_FLAGS, f"-arch={arch}", *extra, str(src), "-o", str(ptx)],
                                capture_output=True, text=True)
        assert result.returncode == 0, f"nvcc -arch={arch} failed:\n{result.stderr[-4000:]}"
        return ptx.read_text()

    return compile_


def nvrtc_library() -> str | None:
    """libnvrtc from $SNN_NVRTC_LIB, the nvidia-cuda-nvrtc wheel (CUDA 12 layout ``nvidia/cuda_nvrtc/lib``, CUDA 13
    layout ``nvidia/cu13/lib``), or the system; None when absent."""
    import ctypes.util
    import glob
    import importlib.util

    if os.environ.get("SNN_NVRTC_LIB"):
        return os.environ["SNN_NVRTC_LIB"]
    spec = importlib.util.find_spec("nvidia")
    for root in (spec.submodule_search_locations or []) if spec else []:
        for layout in (("cu13", "lib"), ("cuda_nvrtc", "lib")):
            found = sorted(glob.glob(os.path.join(root, *layout, "libnvrtc.so*")))
            if found:
                return found[0]
    return ctypes.util.find_library("nvrtc")


@pytest.fixture(scope="session")
def nvrtc_compile():
    """``nvrtc_compile(code)``: compiles ``code`` with NVRTC and the CuPy backend's options for compute_80, asserting
    success and an empty log. Skips without libnvrtc (install nvidia-cuda-nvrtc or set SNN_NVRTC_LIB)."""
    import ctypes

    from snn.kernels.cupy_backend import NVRTC_OPTIONS

    path = nvrtc_library()
    if path is None:
        message = ("libnvrtc not found (set SNN_NVRTC_LIB or install nvidia-cuda-nvrtc (CUDA 13) or "
                   "nvidia-cuda-nvrtc-cu12): checks the sources compile under NVRTC with the CuPy backend's options")
        if os.environ.get("SNN_REQUIRE_PEERS", "") not in ("", "0"):
            pytest.fail(f"SNN_REQUIRE_PEERS=1: {message}")
        pytest.skip(message)
    lib = ctypes.CDLL(path)

    def compile_(code: str) -> None:
        program = ctypes.c_void_p()
        assert lib.nvrtcCreateProgram(ctypes.byref(program), code.encode(), b"snn.cu", 0, None, None) == 0
        options = [o.encode() for o in NVRTC_OPTIONS] + [b"-arch=compute_80"]
        status = lib.nvrtcCompileProgram(program, len(options), (ctypes.c_char_p * len(options))(*options))
        size = ctypes.c_size_t()
        lib.nvrtcGetProgramLogSize(program, ctypes.byref(size))
        log = ctypes.create_string_buffer(size.value)
        lib.nvrtcGetProgramLog(program, log)
        lib.nvrtcDestroyProgram(ctypes.byref(program))
        assert status == 0 and not log.value.strip(), log.value.decode()

    return compile_
