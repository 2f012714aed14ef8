"""The comparison report's trace timeline: each evaluation round's debate turns as bars on a time axis.

A bar is one turn of one scenario (one chain call: prompt, the live model, first line), from when it started to
when it ended, labelled with the tokens it generated; the slowest turn of the round is outlined. The turns of one
turn index run as one batch, so they overlap. Every text that reaches the page is escaped (model output included).
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from typing import Any

import pandas as pd

from harness.compare.html import COLOURS, Raw, esc, fmt, ticks
from harness.records.runs import RunFrames


@dataclass(frozen=True)
class Bar:
    """One traced turn on the round's time axis (seconds from the round's start)."""

    scenario: str
    turn: int
    start: float
    seconds: float
    tokens_in: int | None
    tokens_out: int | None
    output: str
    error: str

    @property
    def end(self) -> float:
        return self.start + self.seconds


def _number(value: Any) -> Any:
    return None if value is None or (isinstance(value, float) and pd.isna(value)) else value


def round_bars(traces: pd.DataFrame, step: int) -> tuple[list[Bar], bool]:
    """The round's turns as bars, and whether their starts had to be estimated: run logs written before traces
    carried `start_s` are laid out turn index after turn index, each batch as long as its slowest turn."""
    if traces.empty or "component" not in traces:
        return [], False
    rows = traces[(traces["step"] == step) & (traces["component"] == "turn")]
    records = [{k: _number(v) for k, v in row.items()} for row in rows.to_dict("records")]
    estimated = any(r.get("start_s") is None for r in records)
    offsets: dict[int, float] = {}
    if estimated:
        batch_ends: dict[int, float] = {}
        for r in records:
            batch_ends[r["turn"]] = max(batch_ends.get(r["turn"], 0.0), r["latency_s"] or 0.0)
        total = 0.0
        for turn in sorted(batch_ends):
            offsets[turn], total = total, total + batch_ends[turn]
    bars = [
        Bar(
            scenario=str(r["scenario"]),
            turn=int(r["turn"]),
            start=offsets[r["turn"]] if estimated else float(r["start_s"]),
            seconds=float(r["latency_s"] or 0.0),
            tokens_in=r.get("tokens_in"),
            tokens_out=r.get("tokens_out"),
            output=str(r.get("output") or ""),
            error=str(r.get("error") or ""),
        )
        for r in records
    ]
    return bars, estimated


def timeline_svg(title: str, run: int, bars: Sequence[Bar], estimated: bool = False) -> Raw:
    """One round of one run: a row per scenario, a bar per turn; `run` picks the colour and the legend toggle."""
    scenarios = list(dict.fromkeys(b.scenario for b in bars))
    left, right, top, row_h, bottom = 130, 12, 26, 22, 30
    width, w = 620, 620 - left - right
    height = top + row_h * max(len(scenarios), 1) + bottom
    x_hi = max((b.end for b in bars), default=0.0) or 1.0
    slowest = max(bars, key=lambda b: b.seconds, default=None)

    def px(x: float) -> float:
        return round(left + w * x / x_hi, 1)

    note = " (starts estimated)" if estimated else ""
    parts = [
        f'<svg class="chart timeline run-{run}" viewBox="0 0 {width} {height}" width="{width}" height="{height}" '
        f'role="img" aria-label="{esc(title)}">',
        f'<text class="title" x="{left}" y="16">{esc(title + note)}</text>',
    ]
    for t in ticks(0, x_hi):
        x = px(t)
        parts.append(f'<line class="grid" x1="{x}" x2="{x}" y1="{top}" y2="{height - bottom}"/>')
        parts.append(f'<text class="tick" x="{x}" y="{height - bottom + 14}" text-anchor="middle">{fmt(t, 1)}</text>')
    parts.append(f'<text class="tick" x="{left + w}" y="{height - 2}" text-anchor="end">seconds into the round</text>')
    if not bars:
        parts.append(f'<text class="empty" x="{left + w / 2}" y="{top + 14}" text-anchor="middle">no traces</text>')
    for row, scenario in enumerate(scenarios):
        y = top + row * row_h
        parts.append(f'<text class="tick" x="{left - 4}" y="{y + 15}" text-anchor="end">{esc(scenario[:22])}</text>')
    colour = COLOURS[run % len(COLOURS)]
    for b in bars:
        y = top + scenarios.index(b.scenario) * row_h + 3
        x, bar_w = px(b.start), round(max(px(b.end) - px(b.start), 1.0), 1)
        kind = " slowest" if b is slowest else " error" if b.error else ""
        tip = (
            f"{b.scenario} turn {b.turn}: {b.seconds:.3f} s, tokens in {fmt(b.tokens_in)} / out {fmt(b.tokens_out)}"
            + (" (slowest turn of the round)" if b is slowest else "")
            + (f"\nerror: {b.error}" if b.error else f"\n{b.output[:200]}")
        )
        parts.append(
            f'<g class="bar{kind}"><rect x="{x}" y="{y}" width="{bar_w}" height="{row_h - 6}" fill="{colour}">'
            f"<title>{esc(tip)}</title></rect>"
        )
        if bar_w > 26 and b.tokens_out is not None:
            parts.append(f'<text class="tok" x="{x + 3}" y="{y + 12}">{esc(b.tokens_out)}</text>')
        parts.append("</g>")
    parts.append("</svg>")
    return Raw("".join(parts))


def timeline_section(runs: list[RunFrames], steps: list[int], scenarios: list[str] | None = None) -> str:
    """Per evaluation round (the report's steps), each run's timeline side by side, with its slowest turn named;
    only the report's chosen scenarios when it has chosen some."""
    out = (
        "<h2>Trace timeline</h2><p class='muted'>Each bar is one debate turn (one chain call: prompt, the live "
        "model, first line), from its start to its end in seconds into the evaluation round, labelled with the tokens "
        "it generated (hover for latency, tokens in/out and what was said). Turns of the same index run as one "
        "batch. The slowest turn of each round is outlined red, a failed one dashed.</p>"
    )
    for n, step in enumerate(steps):
        charts, slowest = [], []
        for i, run in enumerate(runs):
            bars, estimated = round_bars(run.traces, step)
            bars = [b for b in bars if scenarios is None or b.scenario in scenarios]
            charts.append(timeline_svg(f"{run.id} · step {step}", i, bars, estimated))
            if bars:
                s = max(bars, key=lambda b: b.seconds)
                slowest.append(
                    f"<span class='run-{i}'>{esc(run.id)}: {esc(s.scenario)} turn {s.turn}, {s.seconds:.2f} s, "
                    f"{esc(fmt(s.tokens_out))} tokens out</span>"
                )
        summary = f"step {step}" + (": slowest " + "; ".join(slowest) if slowest else "")
        out += f"<details{' open' if n == 0 else ''}><summary>{summary}</summary>"
        out += f"<div class='charts'>{''.join(charts)}</div></details>"
    return out
