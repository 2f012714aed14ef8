"""harness: evaluation-first LoRA fine-tuning of Japanese causal LMs."""

from harness.data.cleaning import Rule, default_tweet_rules
from harness.records.runs import load_run
from harness.spec.experiment import (
    EMBEDDED,
    DataSpec,
    Experiment,
    GenerationSpec,
    LoraSpec,
    ModelSpec,
    Profile,
    Scenario,
    TrainingSpec,
)
from rubrics.records import Conversation, Score, Turn

__all__ = [
    "EMBEDDED",
    "Conversation",
    "DataSpec",
    "Experiment",
    "GenerationSpec",
    "LoraSpec",
    "ModelSpec",
    "Profile",
    "Rule",
    "Scenario",
    "Score",
    "TrainingSpec",
    "Turn",
    "default_tweet_rules",
    "load_run",
]
