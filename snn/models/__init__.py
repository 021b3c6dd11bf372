"""Networks built from :mod:`snn.layers` and :mod:`snn.neuron_models`."""
from snn.models.delaynet import DelayNet, SequenceDropout, sigma_at_epoch

__all__ = ["DelayNet", "SequenceDropout", "sigma_at_epoch"]
