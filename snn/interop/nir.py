r"""NIR (Neuromorphic Intermediate Representation) export and import, through the ``nir`` package.

NIR graphs (HDF5 files written by ``nir.write``) are how networks move between snnTorch, Norse, SpikingJelly,
Sinabs/Speck, Rockpool/Xylo, Lava/Loihi 2 and SpiNNaker2::

    import snn.interop
    graph = snn.interop.to_nir(model, dt=1e-3)          # our inference network → nir.NIRGraph
    snn.interop.write_nir(graph, "model.nir")
    net = snn.interop.from_nir("model.nir", dt=1e-3)    # any library's graph → a time-major module
    y = net(x)                                          # x [T, B, ...] → [T, B, ...], from rest

* :mod:`snn.interop.nir_neurons` — the discretisation: forward Euler with step ``dt``, ``τ_NIR = tau · dt``,
  ``R = 1`` with ``decay_input`` and ``R = tau`` without, hard reset to ``v_reset``; what differs from each peer.
* :mod:`snn.interop.nir_export` — :func:`to_nir`, the table of exported layers, BatchNorm folding, what is dropped.
* :mod:`snn.interop.nir_import` — :func:`from_nir`, the table of imported nodes, file reading with clear errors.
* :mod:`snn.interop.nir_network` — :class:`NIRNetwork`, the graph runner (feed-forward: whole sequences per node;
  cycles: step by step, the cycle-closing edge carrying the previous step).
* :mod:`snn.interop.nir_families` — how the built-in model families are read.

``nir`` is imported only when these functions run.
"""
from snn.interop.nir_export import NIRExportWarning, inference_layers, register_nir_layers, to_nir
from snn.interop.nir_import import NIRFormatError, from_nir, read_nir, write_nir
from snn.interop.nir_network import NIRNetwork
from snn.interop.nir_neurons import NIRConversionError

__all__ = ["to_nir", "from_nir", "read_nir", "write_nir", "register_nir_layers", "inference_layers", "NIRNetwork",
           "NIRConversionError", "NIRFormatError", "NIRExportWarning"]
