"""The gate's statistics and its table.

Probes: K paired seeds, seed s of the candidate sharing its LoRA initialisation, dropout masks and data order with
seed s of the baseline; each seed's difference is one observation and the interval is Student's t over them (a test
on per-seed means, so the seed-to-seed spread is in it). Seeds are added until the answer is clear. Generation
rubrics (secondary): a paired bootstrap over the debates of one seed. Then the Markdown of a result.
"""

from __future__ import annotations

import math
import statistics
from collections.abc import Mapping, Sequence
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


def t_quantile(p: float, df: int) -> float:
    from scipy.stats import t

    return float(t.ppf(p, df))


def seed_interval(harms: Sequence[float], confidence: float) -> tuple[float, float]:
    """Two-sided Student-t interval of the mean per-seed harm (no width from one seed: +-inf)."""
    mean = statistics.fmean(harms)
    if len(harms) < 2:
        return (-math.inf, math.inf)
    half = t_quantile(1 - (1 - confidence) / 2, len(harms) - 1) * statistics.stdev(harms) / math.sqrt(len(harms))
    return (mean - half, mean + half)


def judge_seeds(harms: Sequence[float], tolerance: float, confidence: float, final: bool) -> str:
    """`fail`, `pass`, or `open` (another seed is needed) for one probe's per-seed harms.

    Clear early: the whole interval above the tolerance (fail) or below it (pass). At the last seed: fail when
    the mean harm exceeds the tolerance and the interval excludes zero, else pass.
    """
    low, high = seed_interval(harms, confidence)
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


def probe_rows(
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
        low, high = seed_interval(harms, confidence)
        out.append({
            "probe": probe,
            "baseline": statistics.fmean(b[probe] for b in baseline[:k]),
            "candidate": statistics.fmean(c[probe] for c in candidate[:k]),
            "harm": statistics.fmean(harms),
            "harms": harms,
            "interval": [low, high],
            "tolerance": tolerance,
            "higher_is_better": higher,
            "verdict": "info" if tolerance is None else judge_seeds(harms, tolerance, confidence, final),
        })  # fmt: skip
    return out


def decided(rows: Sequence[Mapping[str, Any]]) -> bool:
    """No gated probe is still open: a fail anywhere, or every gated probe clearly passed."""
    verdicts = [r["verdict"] for r in rows if r["verdict"] != "info"]
    return "fail" in verdicts or all(v == "pass" for v in verdicts)


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
