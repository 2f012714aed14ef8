"""`python -m harness compare RUN [RUN ...]`: one self-contained HTML report over runs, read only from their logs."""

from __future__ import annotations

import json
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
from harness.compare.timeline import timeline_section
from harness.errors import UserError
from harness.evaluation import quality
from harness.evaluation.quality import (
    TOLERANCE,
    Appearance,
    Turning,
    composite,
    first_appearances,
    higher_is_better,
)
from harness.records.runs import RunFrames, identity

# Header fields that identify a run rather than configure it.
_NOT_CONFIG = {"v", "type", "time", "run_id", "argv"}


def loss_at(metrics: pd.DataFrame, step: int) -> float | None:
    """The run's training loss at `step` (`quality.loss_at` over the losses it logged)."""
    return quality.loss_at(_losses(metrics), step)


def _losses(metrics: pd.DataFrame) -> list[tuple[int, float]]:
    if "loss" not in metrics:
        return []
    logged = metrics.dropna(subset=["loss"])
    return list(zip(logged["step"].astype(int), logged["loss"].astype(float), strict=True))


def turning(run: RunFrames, tolerance: float = TOLERANCE) -> Turning:
    """Where the run was best by the composite and where it turned down while the loss fell (`quality.turning`)."""
    scores = {}
    for _, row in run.evals.iterrows():
        value = composite({r: row[r] for r in run.rubrics})
        if value is not None:
            scores[int(row["step"])] = value
    losses = _losses(run.metrics)
    return quality.turning(scores, lambda step: quality.loss_at(losses, step), tolerance)


def appearances(run: RunFrames) -> dict[str, Appearance]:
    """Per scenario, the first step whose debate held tweet artefacts (`quality.first_appearances`)."""
    c = run.conversations
    if "contamination_evidence" not in c:
        return {}
    return first_appearances(zip(c["step"].astype(int), c["scenario"], c["contamination_evidence"], strict=True))


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
         *identity(r.header).values(), r.status, fmt(r.best_step), len(r.alerts), str(r.path)]
        for i, r in enumerate(runs)
    ]  # fmt: skip
    head = ["run", "experiment", "profile", "model", "status", "adapter-best step", "alerts", "path"]
    return "<h2>Runs</h2>" + table(head, rows)


def _ranking_section(runs: list[RunFrames]) -> str:
    rows = [
        [f"#{i}", r["run"], " ".join(f"{k}={v}" for k, v in r["settings"].items()), fmt(r["composite"]), r["step"],
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
        "before it; at step 0, the first loss logged). The same rule is the training-time <code>DriftWatch</code>, "
        "applied to the rounds so far. <b>adapter-best</b> is the step whose adapter the run kept: the best healthy "
        "round (no watch holding) by the run's metric.</p>"
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
            ", ".join(map(str, t.turned_down)) or "none", fmt(r.best_step),
        ])  # fmt: skip
    head = ["run", "best step", "composite", "loss there", "last step", "composite", "loss there", "turned down at",
            "adapter-best step"]  # fmt: skip
    return (
        "<h2>Where each run was best, and where quality turned down while loss still fell</h2>"
        + rule
        + table(head, rows)
    )


def _watch_section(runs: list[RunFrames]) -> str:
    """Where tweet artefacts first appeared in each scenario's debate, and every alert the watches raised."""
    firsts = [appearances(r) for r in runs]
    scenarios = list(dict.fromkeys(s for r in runs for s in r.conversations["scenario"]))
    rows = []
    for scenario in scenarios:
        cells: list[Any] = [scenario]
        for first in firsts:
            found = first.get(scenario)
            kinds = ", ".join(f"{k} {n}" for k, n in found.kinds.items()) if found else ""
            cells.append(f"step {found.step} ({kinds}: {' '.join(found.examples)})" if found else "none")
        rows.append(cells)
    out = "<h2>First tweet artefacts, and alerts</h2><p class='muted'>Per scenario, the first evaluation step whose "
    out += "debate held a hashtag, URL or @mention (the contamination rubric's evidence), which kinds, and what.</p>"
    out += table(["scenario", *(r.id for r in runs)], rows)
    alerts = [[r.id, a.get("step"), a.get("rule"), a.get("rubric"), fmt(a.get("value")), a.get("message")]
              for r in runs for a in r.alerts.to_dict("records")]  # fmt: skip
    if alerts:
        return out + table(["run", "step", "rule", "rubric", "value", "message"], alerts)
    return out + "<p>No watch alerted in these runs.</p>"


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
    # data checks (value only) and probes (mean harm over seeds) first: they decide; the rubrics are secondary
    checks = [{"rubric": f"data: {r['check']}", "difference": r["value"], **r} for r in gate.get("data", [])
              if "value" in r]  # fmt: skip
    probes = [{"rubric": f"probe: {r['probe']}", "difference": r["harm"], **r} for r in gate.get("probes", [])]
    rows = [
        [r.get("rubric"), fmt(r.get("baseline")), fmt(r.get("candidate")), fmt(r.get("difference")),
         "[" + ", ".join(fmt(v) for v in r.get("interval") or []) + "]", fmt(r.get("tolerance")),
         Raw(f"<span class='verdict {esc(r.get('verdict'))}'>{esc(r.get('verdict'))}</span>")]
        for r in [*checks, *probes, *gate["rubrics"]]
    ]  # fmt: skip
    head = ["measure", "baseline", "candidate", "difference / harm", "interval", "tolerance", "verdict"]
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
    picked = _pick_steps(runs, steps)
    sections = [
        str(legend([r.id for r in runs])),
        _runs_section(runs),
        _ranking_section(runs) if len(runs) > 1 else "",
        _gate_section(gate) if gate else "",
        _curves_section(runs, turns),
        _turning_section(runs, turns, tolerance),
        _watch_section(runs),
        _transcripts_section(runs, _pick_scenarios(runs, scenarios), picked),
        timeline_section(runs, picked, scenarios),
        _config_section(runs),
    ]
    return page("Run comparison: " + " vs ".join(r.id for r in runs), sections, len(runs))
