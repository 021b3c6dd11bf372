"""Thread pools: numba's starts without changing torch's thread count (checked in fresh processes at
NUMBA_NUM_THREADS=2); recorded counts are restored.

Each fresh-process case runs in its own interpreter: numba reads ``NUMBA_NUM_THREADS`` at import and starts its pool
once per process. Every case first runs a torch op on the main thread (as an earlier test or a user's preprocessing
does), which is what made the old code keep ``NUMBA_NUM_THREADS`` torch threads once the pool started.
"""
from __future__ import annotations

import os
import subprocess
import sys

import numba
import pytest
import torch

from snn.kernels.cpu_threads import restore_thread_counts, set_threads, thread_counts

_PRELUDE = """
import numba, torch
torch.set_num_threads(1)
torch.get_num_threads()  # torch has now applied its own setting on this thread
x = (torch.rand(12, 4, 6) < 0.3).float()
"""

#: every way into a numba ``parallel=True`` kernel of the package, and the run set-up
_CASES = {
    "set_threads": "from snn.training.experiment import set_threads\nset_threads(1)",
    "sparse_delay_conv": ("from snn.layers.delay_functional import delay_conv_sparse_input\n"
                          "k = torch.randn(3, 6, 5, requires_grad=True)\n"
                          "delay_conv_sparse_input(x, k, 2).sum().backward()"),
    "integer_delay_scatter": ("from snn.layers.delay_functional import integer_delay_scatter\n"
                              "integer_delay_scatter(x, torch.randn(5, 6, 1), torch.randint(0, 3, (5, 6, 1)), 2, "
                              "backend='numba')"),
    "event_linear": ("from snn.layers.event_functional import event_linear\n"
                     "w = torch.randn(5, 6, requires_grad=True)\n"
                     "event_linear(x, w, threshold=1.0).sum().backward()"),
}


def _threads_after(work: str) -> tuple[int, int]:
    code = _PRELUDE + work + "\nprint(torch.get_num_threads(), numba.get_num_threads())"
    env = dict(os.environ, NUMBA_NUM_THREADS="2", OMP_NUM_THREADS="1")
    proc = subprocess.run([sys.executable, "-c", code], env=env, capture_output=True, text=True, timeout=300)
    assert proc.returncode == 0, proc.stderr[-3000:]
    torch_threads, numba_threads = proc.stdout.split()[-2:]
    return int(torch_threads), int(numba_threads)


@pytest.mark.parametrize("case", sorted(_CASES))
def test_starting_numba_pool_leaves_torch_at_the_thread_count_set_before(case):
    torch_threads, numba_threads = _threads_after(_CASES[case])
    assert torch_threads == 1  # torch.set_num_threads(1) in the prelude / set_threads(1)
    assert numba_threads == (1 if case == "set_threads" else 2)  # numba's own count is untouched: its env default


@pytest.fixture
def keep_thread_counts():
    saved = thread_counts()
    yield
    torch.set_num_threads(saved["torch"])
    numba.set_num_threads(saved["numba"])


def test_restoring_thread_counts_sets_torch_and_numba_separately(keep_thread_counts):
    set_threads(1)
    assert restore_thread_counts({"torch": 1, "numba": 1}) is None  # nothing to change
    limit = numba.config.NUMBA_NUM_THREADS
    assert restore_thread_counts({"torch": 2, "numba": limit}) == {"torch": 2, "numba": limit}
    assert (torch.get_num_threads(), numba.get_num_threads()) == (2, limit)


def test_a_numba_count_above_this_process_limit_is_capped_with_a_warning(keep_thread_counts):
    limit = numba.config.NUMBA_NUM_THREADS
    with pytest.warns(RuntimeWarning, match=rf"{limit + 1} threads, this process allows {limit}.*last bits"):
        restored = restore_thread_counts({"torch": 1, "numba": limit + 1})
    assert restored == {"torch": 1, "numba": limit}


@pytest.mark.parametrize("saved, match", [
    ({"torch": 0, "numba": 1}, r"counts\['torch'\] must be a positive int, got 0"),
    ({"torch": 1}, r"counts\['numba'\] must be a positive int, got None"),
])
def test_bad_saved_thread_counts_are_refused_naming_the_entry(saved, match):
    with pytest.raises(ValueError, match=match):
        restore_thread_counts(saved)


def test_set_threads_refuses_a_non_positive_count():
    with pytest.raises(ValueError, match=r"threads must be a positive int, got 0"):
        set_threads(0)
