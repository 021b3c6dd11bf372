"""Interoperability with other SNN libraries.

* :func:`from_spikingjelly`: replace SpikingJelly ``LIFNode`` / ``ParametricLIFNode`` / ``IFNode`` modules inside
  any model with :class:`snn.LIF` / :class:`snn.ParametricLIF` / :class:`snn.IF` (same numerics, our kernels).
* :class:`SingleStepNeuron`: a stateful single-step wrapper so our neurons run inside SpikingJelly's
  ``layer.MultiStepContainer`` and other step-by-step code.

Peer libraries are imported lazily, inside the functions that need them.
"""
from snn.interop.spikingjelly import SingleStepNeuron, UnsupportedModule, from_spikingjelly

__all__ = ["from_spikingjelly", "SingleStepNeuron", "UnsupportedModule"]
