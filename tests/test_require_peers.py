"""The CI guard in tests/conftest.py: with SNN_REQUIRE_PEERS=1 an import skip or a skipped peers test fails."""
from __future__ import annotations

from pathlib import Path

import pytest

pytest_plugins = ["pytester"]

CONFTEST = (Path(__file__).parent / "conftest.py").read_text()
TESTS = '''
import pytest

missing = pytest.importorskip("snn_no_such_peer_library")

def test_never_runs():
    pass
'''
INSIDE = '''
import pytest

def test_imports_inside():
    pytest.importorskip("snn_no_such_peer_library")

@pytest.mark.peers
def test_peers_skip():
    pytest.skip("peer not installed")

@pytest.mark.skipif(True, reason="needs a CUDA device")
def test_gpu_only():
    pass

@pytest.mark.skipif(True, reason="no host C++ compiler (g++) to build the shim")
def test_needs_the_shim_compiler():
    pass
'''


@pytest.mark.parametrize("required", ["1", ""])
def test_import_skips_fail_only_when_peers_are_required(pytester, monkeypatch, required):
    monkeypatch.setenv("SNN_REQUIRE_PEERS", required)
    pytester.makeconftest(CONFTEST)
    pytester.makepyfile(test_module_level=TESTS, test_inside=INSIDE)
    module_level = pytester.runpytest("-p", "no:cacheprovider", "test_module_level.py")
    inside = pytester.runpytest("-p", "no:cacheprovider", "test_inside.py")
    if required:
        # module-level importorskip: a collection error (the run stops); inside a test and a skipped peers test:
        # failures; a missing compiler: a failure; only the CUDA-device skip stays a skip
        module_level.assert_outcomes(errors=1)
        inside.assert_outcomes(failed=2, errors=1, skipped=1)  # a skipif at setup fails as an error
        inside.stdout.fnmatch_lines(["*SNN_REQUIRE_PEERS=1*"])
        assert module_level.ret != 0 and inside.ret != 0
    else:
        module_level.assert_outcomes(skipped=1)
        inside.assert_outcomes(skipped=4)
