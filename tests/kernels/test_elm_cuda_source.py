"""The ELM CUDA source: compiles to PTX for sm_80 and sm_90 with nvcc for every storage dtype (a missing nvcc skips,
or fails under SNN_REQUIRE_PEERS=1), kernel names are content-addressed, the weight packing is the documented one."""
from __future__ import annotations

import re

import pytest
import torch

from snn.kernels import elm_cuda_source


@pytest.mark.parametrize("arch", ["sm_80", "sm_90"])
@pytest.mark.parametrize("dtype", elm_cuda_source.DTYPES)
def test_elm_source_compiles_to_ptx(tmp_path, compile_ptx, dtype, arch):
    src = elm_cuda_source.source(dtype)
    ptx = compile_ptx(tmp_path, src.code, arch)
    assert set(re.findall(r"\.entry\s+(\w+)\(", ptx)) == {k.name for k in src.kernels}
    assert f".target {arch}" in ptx
    assert "bar.sync" in ptx  # __syncthreads() made it into the memory kernels


@pytest.mark.parametrize("dtype", elm_cuda_source.DTYPES)
def test_elm_source_compiles_under_nvrtc_with_the_cupy_options(nvrtc_compile, dtype):
    nvrtc_compile(elm_cuda_source.source(dtype).code)


def test_kernel_names_are_content_addressed_and_the_memory_kernels_cooperative():
    f32, f16 = elm_cuda_source.source("float32"), elm_cuda_source.source("float16")
    names = [k.name for k in f32.kernels]
    for name, prefix in zip(names, ("elm_traces_fwd", "elm_traces_bwd", "elm_memory_fwd", "elm_memory_bwd")):
        assert re.fullmatch(prefix + r"_[0-9a-f]{16}", name)
    assert [k.cooperative for k in f32.kernels] == [False, False, True, True]
    assert not set(names) & {k.name for k in f16.kernels}
    assert "typedef unsigned short scalar_t;" in f16.code and "#include" not in f16.code
    with pytest.raises(ValueError, match="dtype: expected one of"):
        elm_cuda_source.source("int8")


def test_packed_weights_follow_the_documented_layout():
    # hand-indexed: W1m^T with row stride H|1, Wh^T, Wo^T with row stride D|1, then bh, bo
    H, D, LH = 4, 3, 2
    g = torch.Generator().manual_seed(0)
    W1m, Wh, bh = torch.randn(H, D, generator=g), torch.randn(LH, H, H, generator=g), torch.randn(LH, H, generator=g)
    Wo, bo = torch.randn(D, H, generator=g), torch.randn(D, generator=g)
    packed = elm_cuda_source.pack_weights(W1m, Wh, bh, Wo, bo)
    SH, SD = 5, 3
    assert packed.numel() == D * SH + LH * H * SH + H * SD + LH * H + D
    assert all(packed[k * SH + h] == W1m[h, k] for h in range(H) for k in range(D))
    base = D * SH
    assert all(packed[base + l * H * SH + k * SH + h] == Wh[l, h, k] for l in range(LH) for h in range(H) for k in range(H))
    base += LH * H * SH
    assert all(packed[base + h * SD + j] == Wo[j, h] for j in range(D) for h in range(H))
    base += H * SD
    assert torch.equal(packed[base:base + LH * H], bh.flatten()) and torch.equal(packed[base + LH * H:], bo)
    vectors = (7 * D + 2 * (LH + 1) * H + 2 * H) * 4
    assert elm_cuda_source.shared_bytes("float32", H, D, LH, False) == (vectors + 15) // 16 * 16
    assert elm_cuda_source.shared_bytes("float16", H, D, LH, True) == (vectors + 15) // 16 * 16 + 2 * packed.numel()
