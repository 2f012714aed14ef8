"""Experiment specs for experiment files (`from harness.experiment import GateSpec`): see harness/spec/experiment.py."""

from harness.spec.experiment import (
    EMBEDDED,
    DataSpec,
    Experiment,
    GateSpec,
    GenerationSpec,
    LoraSpec,
    ModelSpec,
    Profile,
    Scenario,
    SpecError,
    TrainingSpec,
)
from harness.spec.watches import DriftWatch, FallingWatch, ThresholdWatch

__all__ = [
    "EMBEDDED",
    "DataSpec",
    "DriftWatch",
    "Experiment",
    "FallingWatch",
    "GateSpec",
    "GenerationSpec",
    "LoraSpec",
    "ModelSpec",
    "Profile",
    "Scenario",
    "SpecError",
    "ThresholdWatch",
    "TrainingSpec",
]
