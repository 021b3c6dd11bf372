"""The generated CUDA source: every kernel variant compiles to PTX (sm_80, sm_90) with nvcc (a missing nvcc skips,
or fails under SNN_REQUIRE_PEERS=1: see conftest.compile_ptx), names are stable."""
from __future__ import annotations

import re

import pytest

from snn.kernels import cuda_source
from snn.neuron_models.adaptive_lif import adaptive_lif_dynamics
from snn.neuron_models.lif import lif_dynamics


@pytest.mark.slow
@pytest.mark.parametrize("arch", ["sm_80", "sm_90"])
@pytest.mark.parametrize("dtype", cuda_source.DTYPES)
def test_every_kernel_variant_compiles_to_ptx(tmp_path, compile_ptx, kernel_variants, dtype, arch):
    # All variants of one dtype in one translation unit (kernels deduplicated by name), so nvcc runs once per
    # (dtype, arch) instead of once per variant.
    sources: dict[str, str] = {}
    for dynamics, _ in kernel_variants:
        for record in (False, True):
            for param_grads in (True, False):
                for kernel, text in cuda_source.kernel_sources(dynamics, dtype, record, param_grads):
                    assert sources.setdefault(kernel.name, text) == text, f"two different kernels named {kernel.name}"
    ptx = compile_ptx(tmp_path, cuda_source.prelude(dtype) + "\n".join(sources.values()), arch)
    entries = set(re.findall(r"\.entry\s+(\w+)\(", ptx))
    assert entries == set(sources), f"missing PTX entries: {sorted(set(sources) - entries)[:5]}"
    assert f".target {arch}" in ptx


@pytest.mark.parametrize("dtype", cuda_source.DTYPES)
def test_one_generated_source_compiles_without_warnings(tmp_path, compile_ptx, dtype):
    # generate_source's own output (prelude + both kernels), warnings as errors: no unused or dead variables.
    for dynamics in (lif_dynamics(True, True, False, "divide", "Sigmoid"), adaptive_lif_dynamics(False, False, True, "Triangle"),
                     lif_dynamics(False, True, True, "none", "ATan")):
        code = cuda_source.generate_source(dynamics, dtype, record=True)
        ptx = compile_ptx(tmp_path, code, "sm_80", ("-Werror", "all-warnings"))
        pair = cuda_source.kernels(dynamics, dtype, record=True)
        assert f".entry {pair.forward.name}(" in ptx and f".entry {pair.backward.name}(" in ptx


def test_kernel_names_are_deterministic_and_content_addressed():
    atan = lif_dynamics(True, True, False, "divide", "ATan")
    sigmoid = lif_dynamics(True, True, False, "divide", "Sigmoid")
    first, again = cuda_source.kernels(atan, "float32", False), cuda_source.kernels(atan, "float32", False)
    assert first == again
    assert re.fullmatch(r"snn_fwd_[0-9a-f]{16}", first.forward.name)
    assert re.fullmatch(r"snn_bwd_[0-9a-f]{16}", first.backward.name)
    other = cuda_source.kernels(sigmoid, "float32", False)
    assert other.forward.name == first.forward.name  # the surrogate does not change the forward kernel
    assert other.backward.name != first.backward.name
    assert cuda_source.kernels(atan, "float16", False).forward.name != first.forward.name
    assert cuda_source.kernels(atan, "float32", True).forward.name != first.forward.name


def _numba_parameters(dynamics, record: bool) -> dict[str, list[str]]:
    """The parameter names of the numba kernels, read from the generated Python source."""
    import ast

    import torch

    from snn.kernels import numba_backend

    module = ast.parse(numba_backend.generate_source(dynamics, torch.float32, record))
    return {f.name: [a.arg for a in f.args.args] for f in module.body if isinstance(f, ast.FunctionDef)}


@pytest.mark.parametrize("record", [False, True])
def test_cuda_kernels_take_the_numba_kernels_arguments_in_the_same_order(record):
    # The runner hands both backends the same tensor list; the CUDA kernels must list their parameters exactly as
    # the numba kernels do (numba adds its chunking arguments CH, c_lo, c_hi at the end).
    for dynamics in (adaptive_lif_dynamics(True, True, False, "ATan"), lif_dynamics(False, False, True, "none", "Sigmoid")):
        numba = _numba_parameters(dynamics, record)
        pair = cuda_source.kernels(dynamics, "float32", record=record)
        for kernel, name in ((pair.forward, "forward"), (pair.backward, "backward")):
            cuda = [pname for _, pname in kernel.params]
            assert numba[name] == cuda + ["CH", "c_lo", "c_hi"], name
            assert len(set(cuda)) == len(cuda)


def test_full_precision_backward_recomputes_spikes_with_fire_and_half_reads_them():
    dynamics = adaptive_lif_dynamics(False, True, False, "ATan")
    for dtype in ("float32", "float64"):
        (_, _), (_, backward) = cuda_source.kernel_sources(dynamics, dtype, False)
        body = backward.split(") {", 1)[1]
        assert "a_s[" not in body and "SNN_HEAVISIDE" in body, dtype
    for dtype in ("float16", "bfloat16"):
        (_, _), (_, backward) = cuda_source.kernel_sources(dynamics, dtype, False)
        body = backward.split(") {", 1)[1]
        assert "SNN_LOAD(a_s[snn_i])" in body and "SNN_LOAD(a_s[snn_p])" in body, dtype


def test_half_sources_need_no_cuda_header_and_compute_in_float():
    dynamics = lif_dynamics(True, True, False, "divide", "ATan")
    for dtype in ("float16", "bfloat16"):
        code = cuda_source.generate_source(dynamics, dtype, record=False)
        assert "#include" not in code
        assert "typedef float acc_t;" in code and "typedef unsigned short scalar_t;" in code
    assert "typedef double acc_t;" in cuda_source.generate_source(dynamics, "float64", record=False)
    assert "exp(u)" in cuda_source.prelude("float64") and "expf(u)" in cuda_source.prelude("float32")


def test_param_grads_false_removes_the_parameter_gradient_work():
    dynamics = lif_dynamics(True, True, False, "divide", "ATan")
    with_grads = cuda_source.generate_source(dynamics, "float32", record=False, param_grads=True)
    without = cuda_source.generate_source(dynamics, "float32", record=False, param_grads=False)
    assert "g_tau +=" in with_grads and "a_g_tau[snn_l] =" in with_grads
    body = without[without.index("snn_bwd_"):].split(") {", 1)[1]
    assert "g_tau" not in body and "tau" in body
    # same parameter list either way: the runner passes the same arguments
    assert (cuda_source.kernels(dynamics, "float32", False, False).backward.params
            == cuda_source.kernels(dynamics, "float32", False, True).backward.params)


def test_if_backward_does_not_rebuild_the_state_it_never_reads():
    # IF's adjoint (gx = gh, g_v = gh ...) with a soft, detached reset never reads the pre-step membrane.
    code = cuda_source.generate_source(lif_dynamics(False, False, True, "none", "ATan"), "float32", record=False)
    backward = code[code.index("snn_bwd_"):]
    assert "p_h" not in backward and "a_init_v[snn_l]" not in backward


def test_generate_source_rejects_an_unknown_dtype():
    with pytest.raises(ValueError, match="dtype: expected one of"):
        cuda_source.generate_source(lif_dynamics(True, True, False, "divide", "ATan"), "int8", record=False)


@pytest.mark.parametrize("dtype", cuda_source.DTYPES)
def test_generated_sources_compile_under_nvrtc_with_the_cupy_options(nvrtc_compile, dtype):
    for dynamics in (lif_dynamics(True, True, False, "divide", "Sigmoid"), adaptive_lif_dynamics(False, False, True, "Triangle")):
        nvrtc_compile(cuda_source.generate_source(dynamics, dtype, record=True))
