"""Energy estimation: operation counts from a real forward pass, priced with hardware profiles.

    report = snn.energy.estimate(model, batches, profile="45nm_fp32")
    print(report.table()); report.to_json("energy.json"); report.plot("energy.png")

Profiles are YAML files (``snn/energy/profiles``) whose constants cite their sources; :func:`available_profiles`
lists them. :class:`regularizer.SynOpsPenalty` penalises synaptic operations during training. A layer whose
operations torch cannot show declares them with ``count_operations`` (:mod:`snn.energy.protocol`).
"""
from snn.energy.counter import LayerCounts, OperationCounter, count_operations
from snn.energy.estimate import count_model, estimate
from snn.energy.profiles import HardwareProfile, available_profiles, load_profile
from snn.energy.protocol import CountContext, OpCount
from snn.energy.regularizer import SynOpsPenalty
from snn.energy.report import EnergyReport, build_report

__all__ = ["estimate", "EnergyReport", "build_report", "load_profile", "available_profiles", "HardwareProfile",
           "count_operations", "count_model", "OperationCounter", "LayerCounts", "SynOpsPenalty", "OpCount",
           "CountContext"]
