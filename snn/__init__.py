"""snn: spiking neural networks for PyTorch.

Time-major tensors ``[T, B, ...]`` throughout::

    import snn
    lif = snn.LIF(tau=2.0)
    spikes = lif(x)          # x: [T, B, N] -> spikes [T, B, N], from rest, no state left behind

Sub-packages: :mod:`snn.neuron_models` (neuron dynamics), :mod:`snn.kernels` (torch / numba / CuPy backends),
:mod:`snn.layers`, :mod:`snn.models`, :mod:`snn.training`, :mod:`snn.energy`, :mod:`snn.datasets`, :mod:`snn.cli`.

Everything here loads on first use, so a low layer imports without the high ones: ``import snn.kernels.ir``
(pure ``ast``) pulls neither torch nor the neuron models, and ``import snn`` never pulls the training stack.
"""
from __future__ import annotations

import importlib

__version__ = "0.1.0"

_LAZY = {
    "surrogate": ("snn.surrogate", None),
    "LIF": ("snn.neuron_models", "LIF"),
    "ParametricLIF": ("snn.neuron_models", "ParametricLIF"),
    "AdaptiveLIF": ("snn.neuron_models", "AdaptiveLIF"),
    "IF": ("snn.neuron_models", "IF"),
    "LI": ("snn.neuron_models", "LI"),
    "SpikingNeuron": ("snn.neuron_models", "SpikingNeuron"),
    "NeuronOutput": ("snn.neuron_models", "NeuronOutput"),
    "run": ("snn.training", "run"),
}


def __getattr__(name: str):
    if name in _LAZY:
        module_name, attribute = _LAZY[name]
        module = importlib.import_module(module_name)
        value = module if attribute is None else getattr(module, attribute)
        globals()[name] = value
        return value
    raise AttributeError(f"module 'snn' has no attribute {name!r}")


def __dir__() -> list[str]:
    return sorted(list(globals()) + list(_LAZY))


__all__ = ["run", "surrogate", "LIF", "ParametricLIF", "AdaptiveLIF", "IF", "LI", "SpikingNeuron", "NeuronOutput", "__version__"]
