"""The gate's settings: how `harness gate` judges a cleaning change (README "Cleaning and the gate")."""

from __future__ import annotations

from dataclasses import dataclass, field

from harness.spec._check import _check_types, _require


@dataclass(frozen=True)
class GateSpec:
    """How `harness gate` judges a cleaning change: paired data checks, K short paired fine-tunes, tolerances."""

    tolerances: dict[str, float]
    """Generation rubrics (the secondary check, on seed 0's debates): how far each rubric's mean may move."""
    probe_tolerances: dict[str, float] = field(
        default_factory=lambda: {
            "bits_per_char": 0.08,
            "topic_bits": 0.4,
            "artefact_mass": 0.0015,
            "artefact_pairs": 4.0,
        }
    )
    """Teacher-forced probes (`harness.gate.probes`): how far the mean per-seed harm may go; others are reported."""
    data_tolerances: dict[str, float] = field(
        default_factory=lambda: {
            **{"artefact_rate": 0.01, "topic_lost": 0.02, "fluency_lost": 0.03, "chars_removed": 0.03},
            **{"document_loss": 0.1, "char_loss": 0.1, "topic_document_loss": 0.1, "emoji_rate": 0.01},
        }
    )
    """Paired data checks (`harness.gate.paired.CHECKS`): the largest tolerated value of each; others are reported."""
    max_steps: int = 40
    """Optimizer steps of each of the gate's fine-tunes (the cpu profile's schedule otherwise)."""
    seeds: int = 3
    """Most paired seeds per side; the test stops earlier when its answer is already clear."""
    min_seeds: int = 2
    """Fewest paired seeds before an early answer."""
    seed: int = 0
    """First training seed; the seeds are seed, seed + 1, ..."""
    resamples: int = 2000
    """Paired bootstrap resamples of the generation rubrics' intervals."""
    confidence: float = 0.95
    """Two-sided confidence of every interval (per-seed t interval of the probes, bootstrap of the rubrics)."""

    def __post_init__(self) -> None:
        _check_types(self)
        tolerances = {**self.tolerances, **self.probe_tolerances, **self.data_tolerances}
        _require(all(v >= 0 for v in tolerances.values()), "GateSpec tolerances must be >= 0")
        _require(self.max_steps > 0, "GateSpec.max_steps must be positive")
        _require(1 < self.min_seeds <= self.seeds, f"GateSpec: need 2 <= min_seeds <= seeds, got {self.min_seeds}, "
                 f"{self.seeds}")  # fmt: skip
        _require(self.resamples >= 2000, f"GateSpec.resamples must be at least 2000, got {self.resamples}")
        _require(0.5 < self.confidence < 1, f"GateSpec.confidence must be in (0.5, 1), got {self.confidence}")
