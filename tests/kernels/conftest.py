"""Shared neuron variants for the kernel tests: every LIF-family and adaptive-LIF option combination."""
from __future__ import annotations

import itertools

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
