"""What an experiment watches during training: rules over the rubric curves that alert and may stop the run."""

from __future__ import annotations

from dataclasses import asdict, dataclass

from harness.spec._check import _check_types, _require

COMPOSITE = "composite"


@dataclass(frozen=True)
class ThresholdWatch:
    """Alert when a rubric's round mean crosses a level the wrong way (above it for contamination)."""

    rubric: str = "contamination"
    """The rubric watched (its mean over the round's conversations), or `composite`."""
    level: float = 0.05
    """A lower-is-better rubric alerts above this level, a higher-is-better one (or the composite) below it."""
    stop: bool = False
    """Stop training after the round that fires; adapter-best/ is kept and the run ends completed."""

    def __post_init__(self) -> None:
        _check_types(self)
        _require(0.0 <= self.level <= 1.0, f"ThresholdWatch.level must be in [0, 1], got {self.level}")


@dataclass(frozen=True)
class DriftWatch:
    """Alert when quality turns down while the loss still falls: the composite more than `tolerance` below the best
    round so far while the training loss is lower than at that round (the comparison report's rule)."""

    tolerance: float = 0.25
    """How far below the best composite counts as turned down."""
    stop: bool = False
    """Stop training after the round that fires; adapter-best/ is kept and the run ends completed."""

    def __post_init__(self) -> None:
        _check_types(self)
        _require(0.0 <= self.tolerance <= 1.0, f"DriftWatch.tolerance must be in [0, 1], got {self.tolerance}")


@dataclass(frozen=True)
class FallingWatch:
    """Alert when a rubric (or the composite) gets worse `rounds` rounds in a row."""

    rubric: str = COMPOSITE
    """The rubric watched, or `composite`; worse means down for higher-is-better, up for lower-is-better."""
    rounds: int = 3
    """How many consecutive worse rounds fire the watch."""
    min_drop: float = 0.03
    """A round counts as worse only when it is worse than the one before by more than this (noise does not count)."""
    stop: bool = False
    """Stop training after the round that fires; adapter-best/ is kept and the run ends completed."""

    def __post_init__(self) -> None:
        _check_types(self)
        _require(self.rounds >= 1, f"FallingWatch.rounds must be at least 1, got {self.rounds}")
        _require(0.0 <= self.min_drop <= 1.0, f"FallingWatch.min_drop must be in [0, 1], got {self.min_drop}")


Watch = ThresholdWatch | DriftWatch | FallingWatch


def default_watches(rubrics: tuple[str, ...]) -> tuple[Watch, ...]:
    """The watches an experiment gets unless it declares its own (README: Watches): those its rubrics allow."""
    watches: list[Watch] = [DriftWatch(), FallingWatch()]
    if "contamination" in rubrics:
        watches.insert(0, ThresholdWatch("contamination"))
    return tuple(watches)


def watch_config(watch: Watch) -> dict[str, object]:
    """A watch as JSON for the run header: its class name and fields."""
    return {"watch": type(watch).__name__, **asdict(watch)}
