"""Quality over a run's rounds: the composite, the best round, the "turned down while loss fell" rule and where tweet
artefacts first appear. One implementation, read by the watches during training and by the comparison report."""

from __future__ import annotations

import math
from collections.abc import Callable, Iterable, Mapping, Sequence
from dataclasses import dataclass
from typing import Any

TOLERANCE = 0.05
COMPOSITE = "composite"
ARTEFACT_KINDS = ("hashtag", "url", "mention")


def higher_is_better(rubric: str) -> bool | None:
    """The rubric's direction from the registry, or None for a rubric this harness no longer knows."""
    from rubrics import REGISTRY

    return REGISTRY[rubric].higher_is_better if rubric in REGISTRY else None


def turned(rubric: str, value: float) -> float:
    """The value turned so that higher is better (1 - value for a lower-is-better rubric; the composite as is)."""
    return value if rubric == COMPOSITE or higher_is_better(rubric) is not False else 1.0 - value


def composite(means: Mapping[str, float | None]) -> float | None:
    """Mean of the rubric means, each turned so that higher is better (1 - value where lower is better)."""
    values = []
    for name, value in means.items():
        direction = higher_is_better(name)
        if direction is None or value is None or math.isnan(value):
            continue
        values.append(value if direction else 1.0 - value)
    return sum(values) / len(values) if values else None


def loss_at(losses: Sequence[tuple[int, float]], step: int) -> float | None:
    """The last training loss logged at or before `step`; for a step before any log (step 0), the first one.

    `losses` are (step, loss) in logging order."""
    if not losses:
        return None
    before = [loss for s, loss in losses if s <= step]
    return before[-1] if before else losses[0][1]


def best_step(scores: Mapping[int, float], greater: bool = True) -> int | None:
    """The step with the best score (highest, or lowest when `greater` is False); the earliest of equal bests."""
    finite = {s: v for s, v in scores.items() if v is not None and not math.isnan(v)}
    if not finite:
        return None
    sign = 1.0 if greater else -1.0
    return max(finite, key=lambda s: (sign * finite[s], -s))


def turned_down(
    score: float, best: float, loss: float | None, best_loss: float | None, tolerance: float = TOLERANCE
) -> bool:
    """Quality turned down while the loss still fell: the composite is more than `tolerance` below the best round's
    while the training loss is lower than at the best step."""
    return score < best - tolerance and loss is not None and best_loss is not None and loss < best_loss


@dataclass
class Turning:
    """Where a run was best by the composite, and later rounds whose quality fell while the loss still fell."""

    composite: dict[int, float]
    best_step: int | None
    turned_down: list[int]


def turning(scores: Mapping[int, float], loss: Callable[[int], float | None], tolerance: float = TOLERANCE) -> Turning:
    """Apply the rule to a whole run: the best step over every round, and each later round that turned down."""
    best = best_step(scores)
    if best is None:
        return Turning(dict(scores), None, [])
    later = sorted(s for s in scores if s > best)
    flagged = [s for s in later if turned_down(scores[s], scores[best], loss(s), loss(best), tolerance)]
    return Turning(dict(scores), best, flagged)


def artefact_kinds(evidence: Any) -> dict[str, int]:
    """How many artefacts of each kind the contamination rubric found in one conversation (its evidence's spans)."""
    spans = evidence.get("spans") if isinstance(evidence, Mapping) else None
    kinds: dict[str, int] = {}
    for span in spans if isinstance(spans, list) else []:
        if isinstance(span, Mapping) and span.get("kind") in ARTEFACT_KINDS:
            kinds[span["kind"]] = kinds.get(span["kind"], 0) + 1
    return kinds


@dataclass(frozen=True)
class Appearance:
    """The first step at which tweet artefacts appeared in a scenario's debate, which kinds, and what they were."""

    scenario: str
    step: int
    kinds: dict[str, int]
    examples: tuple[str, ...]

    def to_record(self) -> dict[str, Any]:
        return {"step": self.step, "scenario": self.scenario, "kinds": self.kinds, "examples": list(self.examples)}


def appearance(step: int, scenario: str, evidence: Any) -> Appearance | None:
    """The conversation's artefacts as an Appearance, or None when it has none."""
    kinds = artefact_kinds(evidence)
    if not kinds:
        return None
    spans = evidence.get("spans") or []
    examples = tuple(dict.fromkeys(str(s.get("text")) for s in spans if isinstance(s, Mapping)))[:5]
    return Appearance(scenario, step, kinds, examples)


def first_appearances(rows: Iterable[tuple[int, str, Any]]) -> dict[str, Appearance]:
    """Per scenario, the first (step, scenario, contamination evidence) row with artefacts."""
    first: dict[str, Appearance] = {}
    for step, scenario, evidence in sorted(rows, key=lambda r: r[0]):
        if scenario not in first and (found := appearance(step, scenario, evidence)) is not None:
            first[scenario] = found
    return first
