"""Interoperability with other SNN libraries.

* :func:`from_spikingjelly`: replace SpikingJelly ``LIFNode`` / ``ParametricLIFNode`` / ``IFNode`` modules inside
  any model with :class:`snn.LIF` / :class:`snn.ParametricLIF` / :class:`snn.IF` (same numerics, our kernels).
* :class:`SingleStepNeuron`: a stateful single-step wrapper so our neurons run inside SpikingJelly's
  ``layer.MultiStepContainer`` and other step-by-step code.
* :func:`to_nir` / :func:`from_nir` (with :func:`read_nir` / :func:`write_nir`): NIR graphs, the exchange format of
  snnTorch, Norse, SpikingJelly and neuromorphic hardware toolchains (see :mod:`snn.interop.nir`).

Peer libraries and ``nir`` are imported lazily, inside the functions that need them.
"""
from snn.interop.spikingjelly import SingleStepNeuron, UnsupportedModule, from_spikingjelly

_NIR_NAMES = ("to_nir", "from_nir", "read_nir", "write_nir", "register_nir_layers", "NIRNetwork", "NIRConversionError",
              "NIRFormatError", "NIRExportWarning")


def __getattr__(name: str):
    if name in _NIR_NAMES:
        from snn.interop import nir as _nir

        return getattr(_nir, name)
    raise AttributeError(f"module 'snn.interop' has no attribute {name!r}")


__all__ = ["from_spikingjelly", "SingleStepNeuron", "UnsupportedModule", *_NIR_NAMES]
