r"""The spiking neuron of the spike-driven transformers (Yao et al. 2023, 2024).

Every neuron in those networks is SpikingJelly's multi-step LIF with ``τ = 2`` steps, a hard reset to 0 and the
reset detached from the graph; only the threshold varies (1, or 0.5 for the attention neuron):

.. math::

    H[t] = V[t-1] + (X[t] - V[t-1]) / 2, \qquad S[t] = \Theta(H[t] - V_{th}), \qquad V[t] = H[t]\,(1 - S[t])

It is :class:`snn.LIF` (fused numba kernel on CPU, CuPy on CUDA) with SpikingJelly's default surrogate, the one the
reference code trains with: ``Sigmoid(alpha=4)``.
"""
from __future__ import annotations

from snn.neuron_models import LIF
from snn.surrogate import Sigmoid

__all__ = ["spike_driven_lif"]


def spike_driven_lif(v_threshold: float = 1.0) -> LIF:
    """A multi-step LIF with the spike-driven transformers' settings (``τ = 2``, hard reset to 0, detached reset)."""
    return LIF(tau=2.0, v_threshold=v_threshold, v_reset=0.0, decay_input=True, detach_reset=True,
               surrogate=Sigmoid(alpha=4.0))
