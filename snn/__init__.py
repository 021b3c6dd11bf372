"""snn: spiking neural networks for PyTorch.

Time-major tensors ``[T, B, ...]`` throughout. Import the parts you need::

    import snn
    lif = snn.LIF(tau=2.0)
    spikes = lif(x)          # x: [T, B, N]
"""
__version__ = "0.1.0"
