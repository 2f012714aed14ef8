"""`python -m harness compare RUN [RUN ...]`: one self-contained HTML report over runs, read only from their logs."""

from __future__ import annotations

import json
import math
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import pandas as pd

from harness.compare.html import (
    COLOURS,
    Chart,
    Marker,
    Raw,
    Series,
    esc,
    fmt,
    highlight,
    legend,
    line_chart,
    page,
    table,
)
from harness.errors import UserError
from harness.records.runs import RunFrames

TOLERANCE = 0.05
# Header fields that identify a run rather than configure it.
_NOT_CONFIG = {"v", "type", "time", "run_id", "argv"}


def higher_is_better(rubric: str) -> bool | None:
    """The rubric's direction from the registry, or None for a rubric this harness no longer knows."""
    from rubrics import REGISTRY

    return REGISTRY[rubric].higher_is_better if rubric in REGISTRY else None


def composite(means: dict[str, float | None]) -> float | None:
    """Mean of the rubric means, each turned so that higher is better (1 - value where lower is better)."""
    values = []
    for name, value in means.items():
        direction = higher_is_better(name)
        if direction is None or value is None or math.isnan(value):
            continue
        values.append(value if direction else 1.0 - value)
    return sum(values) / len(values) if values else None


def loss_at(metrics: pd.DataFrame, step: int) -> float | None:
    """The last training loss logged at or before `step`; for a step before any log (step 0), the first one."""
    if "loss" not in metrics:
        return None
    logged = metrics.dropna(subset=["loss"])
    if logged.empty:
        return None
    before = logged[logged["step"] <= step]
    return float((before.iloc[-1] if not before.empty else logged.iloc[0])["loss"])


@dataclass
class Turning:
    """Where a run was best by the composite, and later rounds whose quality fell while the loss still fell."""

    composite: dict[int, float]
    best_step: int | None
    turned_down: list[int]


def turning(run: RunFrames, tolerance: float = TOLERANCE) -> Turning:
    scores = {}
    for _, row in run.evals.iterrows():
        value = composite({r: row[r] for r in run.rubrics})
        if value is not None:
            scores[int(row["step"])] = value
    if not scores:
        return Turning({}, None, [])
    best = max(scores, key=lambda s: (scores[s], -s))  # the earliest of equal bests
    best_loss = loss_at(run.metrics, best)
    turned = []
    for step in sorted(s for s in scores if s > best):
        loss = loss_at(run.metrics, step)
        if scores[step] < scores[best] - tolerance and loss is not None and best_loss is not None and loss < best_loss:
            turned.append(step)
    return Turning(scores, best, turned)


def ranking(runs: list[RunFrames]) -> list[dict[str, Any]]:
    """The runs by quality: the composite of their last round (what their adapter says), best first, next to the
    loss at that round, their best round and the settings they were run with (a sweep's grid point)."""
    rows = []
    for run in runs:
        scores = turning(run).composite
        last = max(scores, default=None)
        rows.append({
            "run": run.id,
            "settings": run.header.get("overrides", {}).get("settings") or {},
            "status": run.status,
            "composite": scores[last] if last is not None else None,
            "step": last,
            "loss": loss_at(run.metrics, last) if last is not None else None,
            "best_composite": max(scores.values(), default=None),
        })  # fmt: skip
    return sorted(rows, key=lambda r: (r["composite"] is None, -(r["composite"] or 0.0), r["run"]))


def flatten(value: Any, prefix: str = "") -> dict[str, Any]:
    """Nested dicts as dotted keys; lists stay whole values (a cleaning-rule list differs as one)."""
    if not isinstance(value, dict):
        return {prefix: value}
    out: dict[str, Any] = {}
    for key, inner in value.items():
        out.update(flatten(inner, f"{prefix}.{key}" if prefix else str(key)))
    return out


def config_diff(headers: list[dict[str, Any]]) -> tuple[list[tuple[str, list[Any]]], int]:
    """Keys whose values differ between the runs' headers (missing counts as differing), and how many agree."""
    flat = [flatten({k: v for k, v in h.items() if k not in _NOT_CONFIG}) for h in headers]
    keys = list(dict.fromkeys(k for f in flat for k in f))
    rows = [(k, [f.get(k, "(absent)") for f in flat]) for k in keys]
    differing = [(k, values) for k, values in rows if any(v != values[0] for v in values)]
    return differing, len(rows) - len(differing)


def read_gate(path: Path) -> dict[str, Any]:
    """A gate result: {"verdict": "pass"|"fail", "rubrics": [{"rubric", "baseline", "candidate", "difference",
    "interval": [lo, hi], "tolerance", "verdict"}]}."""
    try:
        gate = json.loads(path.read_text(encoding="utf-8"))
    except FileNotFoundError:
        raise UserError(f"{path}: no such gate file") from None
    except (json.JSONDecodeError, UnicodeDecodeError) as e:
        raise UserError(f"{path}: not a JSON gate result ({e})") from None
    if not isinstance(gate, dict) or gate.get("verdict") not in ("pass", "fail"):
        raise UserError(f'{path}: a gate result needs "verdict": "pass" or "fail"')
    rows = gate.get("rubrics", [])
    if not isinstance(rows, list) or not all(isinstance(r, dict) and "rubric" in r for r in rows):
        raise UserError(f'{path}: "rubrics" must be a list of objects, each with a "rubric" name')
    return gate


def _pick_steps(runs: list[RunFrames], steps: list[int] | None) -> list[int]:
    known = sorted({int(s) for r in runs for s in r.evals["step"]})
    if steps is None:
        return known
    if missing := [s for s in steps if s not in known]:
        raise UserError(f"--steps {','.join(map(str, missing))}: no completed round there; rounds: {known}")
    return steps


def _pick_scenarios(runs: list[RunFrames], scenarios: list[str] | None) -> list[str]:
    known = list(dict.fromkeys(s for r in runs for s in r.conversations["scenario"]))
    if scenarios is None:
        return known
    if missing := [s for s in scenarios if s not in known]:
        raise UserError(f"--scenario {', '.join(missing)}: not in these runs; scenarios: {', '.join(known)}")
    return scenarios


def _runs_section(runs: list[RunFrames]) -> str:
    rows = [
        [Raw(f'<span class="swatch" style="background:{COLOURS[i % len(COLOURS)]}"></span>' + esc(r.id)),
         r.header.get("experiment", {}).get("name"), r.header.get("profile"), r.header.get("model_path"),
         r.status, str(r.path)]
        for i, r in enumerate(runs)
    ]  # fmt: skip
    return "<h2>Runs</h2>" + table(["run", "experiment", "profile", "model", "status", "path"], rows)


def _ranking_section(runs: list[RunFrames]) -> str:
    rows = [
        [i, r["run"], " ".join(f"{k}={v}" for k, v in r["settings"].items()), fmt(r["composite"]), r["step"],
         fmt(r["loss"]), fmt(r["best_composite"]), r["status"]]
        for i, r in enumerate(ranking(runs), 1)
    ]  # fmt: skip
    head = ["rank", "run", "settings", "composite (last round)", "at step", "loss there", "best composite", "status"]
    return "<h2>Ranked by quality</h2>" + table(head, rows)


def _curves_section(runs: list[RunFrames], turns: list[Turning]) -> str:
    x_max = max([0.0, *(float(s) for r in runs for s in [*r.metrics.get("step", []), *r.evals["step"]])])
    loss = [
        Series(r.id, i, list(zip(m["step"], m["loss"], strict=True)), dots=False)
        for i, r in enumerate(runs)
        if "loss" in (m := r.metrics)
    ]
    charts = [line_chart(Chart("train/loss", loss, x_max))]
    rubrics = list(dict.fromkeys(name for r in runs for name in r.rubrics))
    for name in rubrics:
        lines = [
            Series(r.id, i, list(zip(r.evals["step"], r.evals[name], strict=True)))
            for i, r in enumerate(runs)
            if name in r.evals
        ]
        direction = {True: "higher is better", False: "lower is better", None: "direction unknown"}
        charts.append(line_chart(Chart(f"rubric/{name} ({direction[higher_is_better(name)]})", lines, x_max, (0, 1))))
    comp = [Series(r.id, i, sorted(t.composite.items())) for i, (r, t) in enumerate(zip(runs, turns, strict=True))]
    markers = []
    for i, (r, t) in enumerate(zip(runs, turns, strict=True)):
        if t.best_step is not None:
            markers.append(Marker(t.best_step, t.composite[t.best_step], i, "best", f"{r.id}: best at {t.best_step}"))
        markers += [Marker(s, t.composite[s], i, "drift", f"{r.id}: turned down at {s}") for s in t.turned_down]
    charts.append(line_chart(Chart("composite (best ○ green, turned down ○ red)", comp, x_max, (0, 1), markers)))
    out = "<h2>Loss and rubrics over train/global_step</h2>" + f'<div class="charts">{"".join(charts)}</div>'
    scenarios = list(dict.fromkeys(s for r in runs for s in r.conversations["scenario"]))
    for name in rubrics:
        small = []
        for scenario in scenarios:
            lines = []
            for i, r in enumerate(runs):
                c = r.conversations
                if name in c:
                    by_step = c[c["scenario"] == scenario].groupby("step")[name].mean()
                    lines.append(Series(r.id, i, list(by_step.items())))
            small.append(line_chart(Chart(f"rubric/{name}/{scenario}", lines, x_max, (0, 1), width=300, height=180)))
        out += f"<details><summary>rubric/{esc(name)} per scenario</summary><div class='charts'>{''.join(small)}</div>"
        out += "</details>"
    return out


def _turning_section(runs: list[RunFrames], turns: list[Turning], tolerance: float) -> str:
    rule = (
        "<p class='rule'>Composite at an evaluation step = the mean of the rubric means, each turned so that higher "
        "is better (1 − mean for lower-is-better rubrics such as contamination; rubrics unknown to this harness are "
        f"left out). <b>Best</b> = the step with the highest composite (the earliest on ties). A later step is "
        f"flagged <b>turned down</b> when its composite is more than {fmt(tolerance)} below the best while the "
        "training loss there is lower than at the best step (the loss at a step is the last loss logged at or "
        "before it; at step 0, the first loss logged).</p>"
    )
    rows = []
    for r, t in zip(runs, turns, strict=True):
        last = max(t.composite, default=None)
        best = t.best_step
        rows.append([
            r.id, fmt(best), fmt(t.composite.get(best) if best is not None else None),
            fmt(loss_at(r.metrics, best) if best is not None else None), fmt(last),
            fmt(t.composite.get(last) if last is not None else None),
            fmt(loss_at(r.metrics, last) if last is not None else None),
            ", ".join(map(str, t.turned_down)) or "none",
        ])  # fmt: skip
    head = ["run", "best step", "composite", "loss there", "last step", "composite", "loss there", "turned down at"]
    return (
        "<h2>Where each run was best, and where quality turned down while loss still fell</h2>"
        + rule
        + table(head, rows)
    )


def _conversation_cell(row: pd.Series | None, rubrics: list[str]) -> Raw:
    if row is None:
        return Raw("<span class='muted'>no conversation at this step</span>")
    evidence = row.get("contamination_evidence") or {}
    spans = evidence.get("spans", []) if isinstance(evidence, dict) else []
    turns = []
    for i, turn in enumerate(row["turns"] or []):
        mine = [s for s in spans if isinstance(s, dict) and s.get("turn") == i]
        turns.append(
            f"<div class='turn'><span class='speaker'>{esc(turn.get('speaker', ''))}：</span>"
            f"{highlight(str(turn.get('text', '')), mine)}</div>"
        )
    scores = " · ".join(f"{esc(r)} {fmt(row[r])}" for r in rubrics if r in row)
    error = f"<div class='error'>error: {esc(row['error'])}</div>" if row.get("error") else ""
    return Raw("".join(turns) + f"<div class='scores'>{scores}</div>" + error)


def _transcripts_section(runs: list[RunFrames], scenarios: list[str], steps: list[int]) -> str:
    out = "<h2>Transcripts</h2><p class='muted'>Tweet artefacts found by the contamination rubric are marked.</p>"
    for n, scenario in enumerate(scenarios):
        rows = []
        for step in steps:
            cells: list[Any] = [step]
            for r in runs:
                c = r.conversations
                match = c[(c["scenario"] == scenario) & (c["step"] == step)]
                cells.append(_conversation_cell(match.iloc[0] if not match.empty else None, r.rubrics))
            rows.append(cells)
        topic = next(
            (t for r in runs for t in r.conversations.loc[r.conversations["scenario"] == scenario, "topic"]), ""
        )
        out += f"<details{' open' if n == 0 else ''}><summary>{esc(scenario)}: {esc(topic)}</summary>"
        out += table(["step", *(r.id for r in runs)], rows, "transcripts") + "</details>"
    return out


def _config_section(runs: list[RunFrames]) -> str:
    differing, same = config_diff([r.header for r in runs])

    def show(value: Any) -> str:
        return value if isinstance(value, str) else json.dumps(value, ensure_ascii=False)

    rows = [[key, *(show(v) for v in values)] for key, values in differing]
    body = table(["key", *(r.id for r in runs)], rows) if rows else "<p>The configurations are identical.</p>"
    if changed := [
        key.removeprefix("experiment.rubrics.") for key, _ in differing if key.startswith("experiment.rubrics.")
    ]:
        body = (
            f"<p class='rule'>Rubric versions differ ({esc(', '.join(changed))}): the scorer's code or data changed "
            "between these runs, so their scores are not strictly comparable; rescore to compare exactly.</p>" + body
        )
    return f"<h2>Configuration differences</h2>{body}<p class='muted'>{same} other keys are identical.</p>"


def _gate_section(gate: dict[str, Any]) -> str:
    verdict = esc(gate["verdict"])
    rows = [
        [r.get("rubric"), fmt(r.get("baseline")), fmt(r.get("candidate")), fmt(r.get("difference")),
         "[" + ", ".join(fmt(v) for v in r.get("interval") or []) + "]", fmt(r.get("tolerance")),
         Raw(f"<span class='verdict {esc(r.get('verdict'))}'>{esc(r.get('verdict'))}</span>")]
        for r in gate["rubrics"]
    ]  # fmt: skip
    head = ["rubric", "baseline", "candidate", "difference", "interval", "tolerance", "verdict"]
    return f"<h2>Gate verdict: <span class='verdict {verdict}'>{verdict}</span></h2>" + table(head, rows)


def render(
    runs: list[RunFrames],
    scenarios: list[str] | None = None,
    steps: list[int] | None = None,
    gate: dict[str, Any] | None = None,
    tolerance: float = TOLERANCE,
) -> str:
    """The whole report as one HTML string: no scripts, styles inline, nothing fetched."""
    turns = [turning(r, tolerance) for r in runs]
    sections = [
        str(legend([r.id for r in runs])),
        _runs_section(runs),
        _ranking_section(runs) if len(runs) > 1 else "",
        _gate_section(gate) if gate else "",
        _curves_section(runs, turns),
        _turning_section(runs, turns, tolerance),
        _transcripts_section(runs, _pick_scenarios(runs, scenarios), _pick_steps(runs, steps)),
        _config_section(runs),
    ]
    return page("Run comparison: " + " vs ".join(r.id for r in runs), sections, len(runs))
