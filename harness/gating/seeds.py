"""The model-level test: K paired seeds, each seed one sample, so the seed-to-seed spread is in the interval.

Seed s of the candidate shares its LoRA initialisation, dropout masks and data order with seed s of the baseline;
the per-seed difference of a probe is one observation, and the interval is Student's t over those observations
(a test on per-seed means). Seeds are added one at a time and the test stops when the answer is already clear.
"""

from __future__ import annotations

import math
import statistics
from collections.abc import Mapping, Sequence
from typing import Any


def t_quantile(p: float, df: int) -> float:
    from scipy.stats import t

    return float(t.ppf(p, df))


def interval(harms: Sequence[float], confidence: float) -> tuple[float, float]:
    """Two-sided Student-t interval of the mean per-seed harm (no width from one seed: +-inf)."""
    mean = statistics.fmean(harms)
    if len(harms) < 2:
        return (-math.inf, math.inf)
    half = t_quantile(1 - (1 - confidence) / 2, len(harms) - 1) * statistics.stdev(harms) / math.sqrt(len(harms))
    return (mean - half, mean + half)


def judge(harms: Sequence[float], tolerance: float, confidence: float, final: bool) -> str:
    """`fail`, `pass`, or `open` (another seed is needed) for one probe's per-seed harms.

    Clear early: the whole interval above the tolerance (fail) or below it (pass). At the last seed: fail when
    the mean harm exceeds the tolerance and the interval excludes zero, else pass.
    """
    low, high = interval(harms, confidence)
    if low > tolerance:
        return "fail"
    if high < tolerance:
        return "pass"
    if not final:
        return "open"
    return "fail" if statistics.fmean(harms) > tolerance and low > 0 else "pass"


def harm(baseline: float, candidate: float, higher_is_better: bool) -> float:
    """How much worse the candidate is (positive: worse), in the probe's own unit."""
    return baseline - candidate if higher_is_better else candidate - baseline


def rows(
    baseline: Sequence[Mapping[str, float]],
    candidate: Sequence[Mapping[str, float]],
    tolerances: Mapping[str, float],
    directions: Mapping[str, bool],
    confidence: float,
    final: bool,
) -> list[dict[str, Any]]:
    """One row per probe over the seeds both sides have: means, per-seed harms, interval, verdict."""
    k = min(len(baseline), len(candidate))
    out = []
    for probe, higher in directions.items():
        harms = [harm(baseline[s][probe], candidate[s][probe], higher) for s in range(k)]
        tolerance = tolerances.get(probe)
        low, high = interval(harms, confidence)
        out.append({
            "probe": probe,
            "baseline": statistics.fmean(b[probe] for b in baseline[:k]),
            "candidate": statistics.fmean(c[probe] for c in candidate[:k]),
            "harm": statistics.fmean(harms),
            "harms": harms,
            "interval": [low, high],
            "tolerance": tolerance,
            "higher_is_better": higher,
            "verdict": "info" if tolerance is None else judge(harms, tolerance, confidence, final),
        })  # fmt: skip
    return out


def decided(probe_rows: Sequence[Mapping[str, Any]]) -> bool:
    """No gated probe is still open: a fail anywhere, or every gated probe clearly passed."""
    verdicts = [r["verdict"] for r in probe_rows if r["verdict"] != "info"]
    return "fail" in verdicts or all(v == "pass" for v in verdicts)
