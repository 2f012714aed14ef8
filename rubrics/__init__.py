"""Rubrics: pure `Conversation -> Score` functions, registered by name."""

from rubrics._registry import REGISTRY, Rubric, get, rubric
from rubrics.contamination import contamination
from rubrics.fluency import fluency
from rubrics.records import Conversation, Score, Turn
from rubrics.relevance import relevance

__all__ = [
    "REGISTRY",
    "Conversation",
    "Rubric",
    "Score",
    "Turn",
    "contamination",
    "fluency",
    "get",
    "relevance",
    "rubric",
]
