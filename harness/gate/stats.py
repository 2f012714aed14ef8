"""The gate's statistics and its table: a paired bootstrap interval per rubric, the verdict rule, the Markdown."""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any

import numpy as np


def paired_bootstrap(diffs: Sequence[float], resamples: int, seed: int, confidence: float) -> tuple[float, float]:
    """Percentile interval of the mean of paired differences (candidate - baseline), resampling pairs."""
    values = np.asarray(diffs, dtype=float)
    if len(values) == 0:
        return (0.0, 0.0)
    rng = np.random.default_rng(seed)
    means = values[rng.integers(0, len(values), size=(resamples, len(values)))].mean(axis=1)
    alpha = (1 - confidence) / 2
    lo, hi = np.quantile(means, [alpha, 1 - alpha])
    return (float(lo), float(hi))


def judge(difference: float, interval: tuple[float, float], tolerance: float, higher_is_better: bool) -> str:
    """`fail` when the mean moved the wrong way by more than `tolerance` and the interval excludes zero."""
    harm = -difference if higher_is_better else difference
    excludes_zero = interval[1] < 0 if higher_is_better else interval[0] > 0
    return "fail" if harm > tolerance and excludes_zero else "pass"


def compare_rubric(
    rubric: str,
    pairs: Sequence[tuple[float, float]],
    tolerance: float,
    higher_is_better: bool,
    resamples: int,
    seed: int,
    confidence: float,
) -> dict[str, Any]:
    """One verdict row from (baseline, candidate) score pairs of the same conversation."""
    base = [b for b, _ in pairs]
    cand = [c for _, c in pairs]
    diffs = [c - b for b, c in pairs]
    interval = paired_bootstrap(diffs, resamples, seed, confidence)
    difference = float(np.mean(diffs)) if diffs else 0.0
    return {
        "rubric": rubric,
        "baseline": float(np.mean(base)) if base else None,
        "candidate": float(np.mean(cand)) if cand else None,
        "difference": difference,
        "interval": list(interval),
        "tolerance": tolerance,
        "verdict": judge(difference, interval, tolerance, higher_is_better),
        "pairs": len(pairs),
        "higher_is_better": higher_is_better,
    }


def _fmt(value: Any) -> str:
    return "-" if value is None else f"{value:+.4f}" if isinstance(value, float) and value < 0 else f"{value:.4f}"


def markdown(result: dict[str, Any]) -> str:
    """The verdict as Markdown: model-level table (with intervals), then the data-level table."""
    lines = [
        f"## Cleaning gate: **{result['verdict'].upper()}** ({result['experiment']})",
        "",
        f"baseline: {result['baseline']['label']}; candidate: {result['candidate']['label']}; "
        f"{result['conversations']} paired conversations, {result['settings']['resamples']} bootstrap resamples",
        "",
        "| rubric | baseline | candidate | difference | interval | tolerance | verdict |",
        "|---|---|---|---|---|---|---|",
    ]
    for r in result["rubrics"]:
        interval = f"[{_fmt(r['interval'][0])}, {_fmt(r['interval'][1])}]"
        lines.append(f"| {r['rubric']} | {_fmt(r['baseline'])} | {_fmt(r['candidate'])} | {_fmt(r['difference'])} "
                     f"| {interval} | {_fmt(r['tolerance'])} | {r['verdict']} |")  # fmt: skip
    lines += ["", "| data | baseline | candidate | difference | tolerance | verdict |", "|---|---|---|---|---|---|"]
    for r in result["data"]:
        lines.append(f"| {r['metric']} | {_fmt(r['baseline'])} | {_fmt(r['candidate'])} | {_fmt(r['difference'])} "
                     f"| {_fmt(r['tolerance'])} | {r['verdict']} |")  # fmt: skip
    return "\n".join(lines) + "\n"
