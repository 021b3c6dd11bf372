"""snn: spiking neural networks for PyTorch.

Time-major tensors ``[T, B, ...]`` throughout::

    import snn
    lif = snn.LIF(tau=2.0)
    spikes = lif(x)          # x: [T, B, N] -> spikes [T, B, N], from rest, no state left behind

Sub-packages: :mod:`snn.neuron_models` (neuron dynamics), :mod:`snn.kernels` (torch / numba / CuPy backends),
:mod:`snn.layers`, :mod:`snn.models`, :mod:`snn.training`, :mod:`snn.energy`, :mod:`snn.datasets`, :mod:`snn.cli`.
"""
from snn import surrogate
from snn.neuron_models import IF, LI, LIF, AdaptiveLIF, NeuronOutput, ParametricLIF, SpikingNeuron

__version__ = "0.1.0"



def __getattr__(name: str):
    # Heavier parts load on first use, so `import snn` stays quick and never pulls the training stack.
    if name == "run":
        from snn.training import run

        return run
    raise AttributeError(f"module 'snn' has no attribute {name!r}")


__all__ = ["run", "surrogate", "LIF", "ParametricLIF", "AdaptiveLIF", "IF", "LI", "SpikingNeuron", "NeuronOutput", "__version__"]
