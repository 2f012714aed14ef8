"""harness: evaluation-first LoRA fine-tuning of Japanese causal LMs."""

from harness.cleaning import Rule, default_tweet_rules
from harness.experiment import (
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
from harness.runs import load_run
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
