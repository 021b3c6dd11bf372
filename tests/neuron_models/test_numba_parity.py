"""numba backend vs the torch reference: every option of every neuron, odd shapes and layouts.

The reference runs only the ``forward`` program under autograd, so these tests also check the hand-written
``backward`` programs of the declarations.
"""
import itertools

import pytest
import torch

from snn import surrogate as sg
from snn.neuron_models import IF, AdaptiveLIF, LIF, ParametricLIF

from .conftest import assert_backends_agree

LIF_OPTIONS = list(itertools.product([0.0, None], [True, False], [False, True], [False, True], sg.ALL))


def _input(shape, scale=1.5, seed=0, dtype=torch.float32):
    g = torch.Generator().manual_seed(seed)
    return (torch.randn(shape, generator=g, dtype=torch.float64) * scale + 0.4).to(dtype)


@pytest.mark.parametrize(
    "v_reset, decay_input, detach_reset, learnable, surrogate", LIF_OPTIONS,
    ids=lambda v: v.__name__ if isinstance(v, type) else repr(v),
)
def test_lif_family_matches_reference_for_every_option(v_reset, decay_input, detach_reset, learnable, surrogate):
    options = dict(v_reset=v_reset, decay_input=decay_input, detach_reset=detach_reset, surrogate=surrogate())

    def make(backend):
        if learnable:
            return ParametricLIF(init_tau=3.0, backend=backend, shape=(37,), **options)
        return LIF(tau=3.0, backend=backend, **options)

    x = _input((25, 3, 37))
    state = {"v": _input((3, 37), scale=0.3, seed=1)}
    assert_backends_agree(make, x, state=state)


@pytest.mark.parametrize("surrogate", [s() for s in sg.ALL], ids=lambda s: type(s).__name__)
def test_every_surrogate_matches_reference(surrogate):
    make = lambda backend: ParametricLIF(init_tau=2.5, surrogate=surrogate, backend=backend, shape=(19,))
    assert_backends_agree(make, _input((30, 4, 19)))


@pytest.mark.parametrize("v_reset", [0.0, None])
def test_if_matches_reference(v_reset):
    make = lambda backend: IF(v_reset=v_reset, backend=backend)
    assert_backends_agree(make, _input((20, 2, 11), scale=0.8, seed=3))


@pytest.mark.parametrize("v_reset, detach_reset, learn_tau", [(None, False, True), (0.0, True, False)])
def test_adaptive_lif_matches_reference(v_reset, detach_reset, learn_tau):
    make = lambda backend: AdaptiveLIF(tau=4.0, tau_adapt=12.0, beta=0.6, v_reset=v_reset, detach_reset=detach_reset,
                                      learn_tau=learn_tau, shape=(13,) if learn_tau else (), backend=backend)
    state = {"v": _input((5, 13), scale=0.2, seed=5), "a": _input((5, 13), scale=0.1, seed=6).abs()}
    assert_backends_agree(make, _input((40, 5, 13), scale=2.0, seed=4), state=state)


@pytest.mark.parametrize(
    "shape", [(1, 3, 7), (9, 1, 1), (6, 2, 3, 5, 4), (4, 1, 3000)], ids=["T=1", "B=1,N=1", "conv-4d", "several-chunks"]
)
def test_odd_shapes_match_reference(shape):
    make = lambda backend: ParametricLIF(init_tau=2.0, backend=backend)
    x = _input(shape, scale=2.0, seed=7)
    x[0].view(-1)[0] = 3.0  # at least one spike even for tiny shapes
    assert_backends_agree(make, x)


def test_non_contiguous_input_matches_reference():
    base = _input((3, 16, 20), scale=2.0)
    x = base.permute(1, 0, 2)  # [T=16, B=3, N=20], not contiguous
    assert not x.is_contiguous()
    assert_backends_agree(lambda backend: LIF(tau=2.0, backend=backend), x)


def test_per_neuron_tau_and_per_channel_tau_match_reference():
    tau = torch.linspace(1.5, 8.0, 6).view(6, 1, 1)  # one tau per channel of a conv map [T, B, C, H, W]
    make = lambda backend: LIF(tau=tau, backend=backend)
    assert_backends_agree(make, _input((8, 2, 6, 3, 3), scale=2.0, seed=9))


def test_float64_matches_reference_tightly():
    make = lambda backend: ParametricLIF(init_tau=3.0, backend=backend, shape=(17,)).double()
    assert_backends_agree(make, _input((30, 3, 17), dtype=torch.float64), rtol=1e-12, atol=1e-12)


def test_threshold_ties_fire_in_both_backends():
    # inputs on exact multiples of 1/8 put the membrane exactly on the threshold: Θ(0) = 1 everywhere
    x = torch.full((4, 2, 8), 2.0)  # tau=2, decay_input: H[0] = 0 + 2 * 0.5 = 1.0 == v_threshold
    for backend in ("torch", "numba"):
        spikes = LIF(tau=2.0, backend=backend)(x)
        assert torch.all(spikes[0] == 1.0), backend
