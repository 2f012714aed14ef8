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
    if value is None:
        return "-"
    if isinstance(value, bool) or not isinstance(value, float):
        return str(value)
    return f"{value:+.4g}" if value < 0 else f"{value:.4g}"


def markdown(result: dict[str, Any]) -> str:
    """The verdict as Markdown: the paired data checks, the per-seed probe test, the generation rubrics."""
    settings = result["settings"]
    lines = [
        f"## Cleaning gate: **{result['verdict'].upper()}** ({result['experiment']})",
        "",
        f"baseline: {result['baseline']['label']}; candidate: {result['candidate']['label']}",
        "",
        "### Data, paired per document",
        "",
        "| check | value | tolerance | verdict |",
        "|---|---|---|---|",
    ]
    context = []
    for r in result["data"]:
        if "value" in r:
            lines.append(f"| {r['check']} | {_fmt(r['value'])} | {_fmt(r['tolerance'])} | {r['verdict']} |")
        else:
            context.append(f"{r['check']} {_fmt(r['baseline'])} -> {_fmt(r['candidate'])}")
    lines += ["", "context: " + "; ".join(context), "", "### Model: teacher-forced probes, paired seeds", ""]
    if not result["probes"]:
        lines.append(result["model_level"])
    else:
        lines += [
            f"{result['model_level']}; {result['seeds']} paired seeds of {settings['max_steps']} steps (at most "
            f"{settings['seeds']}); harm = candidate worse than baseline, {settings['confidence']:.0%} t interval "
            "over the per-seed harms",
            "",
            "| probe | baseline | candidate | harm | interval | per seed | tolerance | verdict |",
            "|---|---|---|---|---|---|---|---|",
        ]
        for r in result["probes"]:
            interval = f"[{_fmt(r['interval'][0])}, {_fmt(r['interval'][1])}]"
            per_seed = ", ".join(_fmt(h) for h in r["harms"])
            lines.append(f"| {r['probe']} | {_fmt(r['baseline'])} | {_fmt(r['candidate'])} | {_fmt(r['harm'])} "
                         f"| {interval} | {per_seed} | {_fmt(r['tolerance'])} | {r['verdict']} |")  # fmt: skip
    if result["rubrics"]:
        lines += [
            "",
            f"### Generation rubrics (secondary: seed {settings['seed']}'s debates, paired by scenario)",
            "",
            "| rubric | baseline | candidate | difference | interval | tolerance | verdict |",
            "|---|---|---|---|---|---|---|",
        ]
        for r in result["rubrics"]:
            interval = f"[{_fmt(r['interval'][0])}, {_fmt(r['interval'][1])}]"
            cells = [r["rubric"], *map(_fmt, (r["baseline"], r["candidate"], r["difference"])), interval]
            lines.append("| " + " | ".join([*cells, _fmt(r["tolerance"]), r["verdict"]]) + " |")
    return "\n".join(lines) + "\n"
