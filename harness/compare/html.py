"""HTML pieces of the comparison report: escaping, artefact highlighting, tables and inline SVG line charts.

Every string that reaches the page goes through `esc` (or `highlight`) unless it is `Raw` markup built here.
"""

from __future__ import annotations

import math
from collections.abc import Iterable, Sequence
from dataclasses import dataclass, field
from html import escape
from typing import Any

# Okabe-Ito: distinguishable for colour-blind readers; the 9th run onwards repeats colours with dashes.
COLOURS = ("#0072B2", "#D55E00", "#009E73", "#CC79A7", "#E69F00", "#56B4E9", "#000000", "#999999")


class Raw(str):
    """Markup built by this module: inserted as is, never escaped again."""


def esc(value: Any) -> str:
    return value if isinstance(value, Raw) else escape(str(value), quote=True)


def highlight(text: str, spans: Iterable[dict[str, Any]]) -> Raw:
    """`text` escaped, with each artefact span `{"start", "end", "kind"}` (offsets into the raw text) in a <mark>.

    Offsets index the unescaped text, so the text is cut at span edges first and each piece escaped on its own.
    Spans out of range or overlapping an earlier one are ignored rather than trusted.
    """
    out, pos = [], 0
    for span in sorted(spans, key=lambda s: (s.get("start", -1), s.get("end", -1))):
        start, end = span.get("start"), span.get("end")
        if not (isinstance(start, int) and isinstance(end, int) and pos <= start < end <= len(text)):
            continue
        kind = esc(span.get("kind", "artefact"))
        out += [esc(text[pos:start]), f'<mark class="artefact {kind}" title="{kind}">{esc(text[start:end])}</mark>']
        pos = end
    out.append(esc(text[pos:]))
    return Raw("".join(out))


def table(head: Sequence[Any], rows: Iterable[Sequence[Any]], cls: str = "") -> Raw:
    """A <table>; cells are escaped unless they are `Raw`."""
    thead = "".join(f"<th>{esc(h)}</th>" for h in head)
    body = "".join("<tr>" + "".join(f"<td>{esc(c)}</td>" for c in row) + "</tr>" for row in rows)
    return Raw(f'<table class="{esc(cls)}"><thead><tr>{thead}</tr></thead><tbody>{body}</tbody></table>')


def fmt(value: Any, digits: int = 3) -> str:
    if value is None or (isinstance(value, float) and math.isnan(value)):
        return "–"
    return f"{value:.{digits}f}" if isinstance(value, float) else str(value)


@dataclass
class Series:
    """One run's line on a chart: `run` indexes its colour and its legend toggle."""

    label: str
    run: int
    points: list[tuple[float, float]]
    dots: bool = True


@dataclass
class Marker:
    """A highlighted point: `kind` is a CSS class (best, drift) and `note` its tooltip."""

    x: float
    y: float
    run: int
    kind: str
    note: str


@dataclass
class Chart:
    title: str
    series: list[Series]
    x_max: float
    y_range: tuple[float, float] | None = None
    markers: list[Marker] = field(default_factory=list)
    width: int = 440
    height: int = 230


def ticks(lo: float, hi: float, n: int = 5) -> list[float]:
    """Round tick values covering [lo, hi]."""
    if hi <= lo:
        return [lo]
    raw = (hi - lo) / n
    mag = 10 ** math.floor(math.log10(raw))
    step = next(m * mag for m in (1, 2, 2.5, 5, 10) if m * mag >= raw)
    first = math.ceil(lo / step - 1e-9) * step
    return [round(first + i * step, 10) for i in range(int((hi - first) / step + 1e-9) + 1)]


def _clean(points: Iterable[tuple[float, float]]) -> list[tuple[float, float]]:
    return [(x, y) for x, y in points if y is not None and not math.isnan(y)]


def line_chart(chart: Chart) -> Raw:
    """An inline SVG line chart; every run shares the x axis 0..x_max so charts line up across the page."""
    left, right, top, bottom = 48, 12, 26, 30
    w, h = chart.width - left - right, chart.height - top - bottom
    series = [Series(s.label, s.run, _clean(s.points), s.dots) for s in chart.series]
    ys = [y for s in series for _, y in s.points]
    if chart.y_range is not None:
        y_lo, y_hi = chart.y_range
    elif ys:
        pad = (max(ys) - min(ys)) * 0.08 or 0.5
        y_lo, y_hi = min(ys) - pad, max(ys) + pad
    else:
        y_lo, y_hi = 0.0, 1.0
    x_hi = chart.x_max or 1

    def px(x: float) -> float:
        return round(left + w * x / x_hi, 1)

    def py(y: float) -> float:
        return round(top + h * (1 - (y - y_lo) / (y_hi - y_lo)), 1)

    parts = [
        f'<svg class="chart" viewBox="0 0 {chart.width} {chart.height}" width="{chart.width}" '
        f'height="{chart.height}" role="img" aria-label="{esc(chart.title)}">',
        f'<text class="title" x="{left}" y="16">{esc(chart.title)}</text>',
    ]
    for t in ticks(y_lo, y_hi):
        parts.append(f'<line class="grid" x1="{left}" x2="{left + w}" y1="{py(t)}" y2="{py(t)}"/>')
        parts.append(f'<text class="tick" x="{left - 4}" y="{py(t) + 3}" text-anchor="end">{fmt(t, 2)}</text>')
    for t in ticks(0, x_hi):
        parts.append(f'<text class="tick" x="{px(t)}" y="{top + h + 14}" text-anchor="middle">{fmt(t, 0)}</text>')
    parts.append(f'<rect class="frame" x="{left}" y="{top}" width="{w}" height="{h}"/>')
    parts.append(f'<text class="tick" x="{left + w}" y="{chart.height - 2}" text-anchor="end">train/global_step</text>')
    if not ys:
        parts.append(f'<text class="empty" x="{left + w / 2}" y="{top + h / 2}" text-anchor="middle">no data</text>')
    for s in series:
        colour, dash = COLOURS[s.run % len(COLOURS)], "" if s.run < len(COLOURS) else ' stroke-dasharray="5 3"'
        coords = " ".join(f"{px(x)},{py(y)}" for x, y in s.points)
        parts.append(f'<g class="run-{s.run}" stroke="{colour}" fill="{colour}">')
        parts.append(f'<polyline points="{coords}" fill="none" stroke-width="1.8"{dash}/>')
        if s.dots:
            for x, y in s.points:
                parts.append(
                    f'<circle cx="{px(x)}" cy="{py(y)}" r="2.6"><title>{esc(s.label)}: step {fmt(x, 0)}, '
                    f"{fmt(y)}</title></circle>"
                )
        parts.append("</g>")
    for m in chart.markers:
        parts.append(
            f'<g class="run-{m.run} marker {esc(m.kind)}"><circle cx="{px(m.x)}" cy="{py(m.y)}" r="6">'
            f"<title>{esc(m.note)}</title></circle></g>"
        )
    parts.append("</svg>")
    return Raw("".join(parts))


CSS = """
body{font-family:system-ui,-apple-system,"Hiragino Sans","Noto Sans CJK JP",sans-serif;margin:24px;color:#222;
max-width:1800px}
h1{font-size:22px}h2{font-size:18px;margin-top:32px;border-bottom:1px solid #ddd}h3{font-size:15px}
table{border-collapse:collapse;margin:8px 0;font-size:13px}td,th{border:1px solid #ddd;padding:4px 8px;
vertical-align:top;text-align:left}th{background:#f4f4f4}
.charts{display:flex;flex-wrap:wrap;gap:8px}.chart{background:#fff;border:1px solid #eee}
.chart .title{font-size:13px;font-weight:600}.chart .tick{font-size:10px;fill:#555}
.chart .grid{stroke:#eee}.chart .frame{fill:none;stroke:#bbb}.chart .empty{fill:#999;font-size:12px}
.marker circle{fill:none;stroke-width:2}.marker.best circle{stroke:#1a7f37}.marker.drift circle{stroke:#cf222e;
stroke-dasharray:3 2}
.swatch{display:inline-block;width:12px;height:12px;border-radius:2px;margin-right:4px;vertical-align:-1px}
.legend label{margin-right:16px;cursor:pointer}
.turn{margin:2px 0;white-space:pre-wrap;word-break:break-word}.speaker{font-weight:600;color:#555}
.scores{font-size:12px;color:#555;margin-top:4px}.error{color:#cf222e}
mark.artefact{background:#ffd8b5;border-bottom:2px solid #D55E00;padding:0 1px}
mark.url{background:#ffe3e3}mark.mention{background:#e6dcff}
.transcripts td{min-width:320px;max-width:600px}.transcripts td:first-child{min-width:0}
.verdict{font-weight:700;padding:2px 8px;border-radius:3px}
.verdict.pass{background:#dafbe1;color:#1a7f37}.verdict.fail{background:#ffebe9;color:#cf222e}
.rule{background:#f6f8fa;border-left:3px solid #999;padding:6px 12px;font-size:13px}
code{font-size:12px}.muted{color:#777}
.timeline .bar.slowest rect{stroke:#cf222e;stroke-width:2.5}.timeline .bar.error rect{stroke:#cf222e;
stroke-dasharray:3 2;fill-opacity:.4}.timeline .tok{font-size:9px;fill:#fff;pointer-events:none}
"""


def legend(labels: Sequence[str]) -> Raw:
    """Run toggles: a checkbox per run; CSS hides that run's lines everywhere when it is unchecked (no script)."""
    boxes = "".join(
        f'<label><input type="checkbox" id="show-run-{i}" checked><span class="swatch" '
        f'style="background:{COLOURS[i % len(COLOURS)]}"></span>{esc(label)}</label>'
        for i, label in enumerate(labels)
    )
    return Raw(f'<div class="legend">{boxes}</div>')


def page(title: str, sections: Iterable[str], runs: int) -> str:
    toggles = "".join(f"body:has(#show-run-{i}:not(:checked)) .run-{i}{{display:none}}" for i in range(runs))
    return (
        f'<!DOCTYPE html>\n<html lang="ja"><head><meta charset="utf-8"><title>{esc(title)}</title>'
        f'<meta name="viewport" content="width=device-width"><style>{CSS}{toggles}</style></head>'
        f"<body><h1>{esc(title)}</h1>{''.join(sections)}</body></html>\n"
    )
