"""The records a rubric scores (Turn, Conversation, Score): plain frozen dataclasses, no torch, no wandb."""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass, field
from typing import Any


@dataclass(frozen=True)
class Turn:
    """One utterance in a conversation."""

    speaker: str
    text: str


@dataclass(frozen=True)
class Conversation:
    """A scored unit: the turns a model produced for one scenario (or one scored text)."""

    turns: tuple[Turn, ...]
    scenario: str = ""
    topic: str = ""

    @classmethod
    def from_text(cls, text: str, speaker: str = "") -> Conversation:
        return cls(turns=(Turn(speaker, text),))

    @property
    def text(self) -> str:
        """All turns joined by newlines, without speaker names."""
        return "\n".join(t.text for t in self.turns)

    def transcript(self) -> str:
        """The conversation as a reader sees it: one `speaker：text` line per turn."""
        return "\n".join(f"{t.speaker}：{t.text}" if t.speaker else t.text for t in self.turns)


@dataclass(frozen=True)
class Score:
    """A rubric's verdict: `value` in [0, 1] plus the evidence that produced it."""

    value: float
    evidence: Mapping[str, Any] = field(default_factory=dict)

    def __post_init__(self) -> None:
        if not 0.0 <= self.value <= 1.0:
            raise ValueError(f"Score.value must be in [0, 1], got {self.value!r}")
