"""The comparison report's trace timeline: a round's turns as bars on a time axis, slowest outlined, text escaped."""

from __future__ import annotations

import re
from pathlib import Path

import pytest
from short_runs import two_runs

from harness.cli import main
from harness.compare.timeline import round_bars, timeline_section
from harness.records.runlog import Run, read_run
from harness.records.runs import frames

SCRIPT = "<script>alert('x')</script>"


def _run(turns: list[tuple[str, int, float | None, float, int]]) -> Run:
    """A run log holding one round at step 4: (scenario, turn, start_s, latency_s, tokens_out) per turn."""
    header = {"type": "header", "run_id": "r<1>", "experiment": {"rubrics": {}}}
    records: list[dict] = [header, {"type": "eval", "step": 4, "means": {}}]
    for scenario, turn, start, latency, out in turns:
        event = {"type": "trace", "step": 4, "scenario": scenario, "turn": turn, "input": {"speaker": "Kaggleアンチ"},
                 "output": f"LBは運 {SCRIPT}", "latency_s": latency, "tokens_in": 40 + turn, "tokens_out": out,
                 "error": None}  # fmt: skip
        if start is not None:
            event["start_s"] = start
        records += [{**event, "component": "turn"}, {**event, "component": "llm", "input": "prompt"}]
    return Run(Path("r"), header, records)


def test_each_turn_is_a_bar_from_its_start_and_the_slowest_is_outlined() -> None:
    run = frames(_run([("shake-up", 0, 0.0, 0.4, 12), ("<b>medal</b>", 0, 0.0, 0.4, 16),
                       ("shake-up", 1, 0.41, 1.25, 30), ("<b>medal</b>", 1, 0.41, 0.9, 7)]))  # fmt: skip
    bars, estimated = round_bars(run.traces, 4)
    assert not estimated and [(b.scenario, b.turn, b.start, b.seconds) for b in bars][2] == ("shake-up", 1, 0.41, 1.25)
    html = timeline_section([run], [4])
    (svg,) = re.findall(r'<svg class="chart timeline run-0".*?</svg>', html, re.S)
    assert svg.count('<g class="bar') == 4, "one bar per turn (model calls are inside their turns)"
    (slowest,) = re.findall(r'<g class="bar slowest">.*?</g>', svg, re.S)
    assert "shake-up turn 1: 1.250 s, tokens in 41 / out 30 (slowest turn of the round)" in slowest
    assert ">30</text>" in slowest, "labelled with the tokens it generated"
    widths = {float(w) for w in re.findall(r'<rect x="[^"]*" y="[^"]*" width="([^"]*)"', svg)}
    assert max(widths) == pytest.approx(min(widths) * 1.25 / 0.4, rel=0.02), "bar length is latency"
    assert "step 4: slowest <span class='run-0'>r&lt;1&gt;: shake-up turn 1, 1.25 s, 30 tokens out" in html
    assert SCRIPT not in html and "<b>" not in html
    assert "&lt;script&gt;alert(&#x27;x&#x27;)&lt;/script&gt;" in html and "&lt;b&gt;medal" in html


def test_a_log_without_start_times_lays_each_batch_after_the_slowest_turn_before_it() -> None:
    run = frames(_run([("a", 0, None, 0.5, 3), ("b", 0, None, 0.75, 3), ("a", 1, None, 0.25, 3)]))
    bars, estimated = round_bars(run.traces, 4)
    assert estimated and [(b.scenario, b.turn, b.start) for b in bars] == [("a", 0, 0.0), ("b", 0, 0.0), ("a", 1, 0.75)]
    assert "(starts estimated)" in timeline_section([run], [4])


def test_a_round_without_traces_says_so() -> None:
    run = frames(Run(Path("r"), {"type": "header", "run_id": "r"}, [{"type": "eval", "step": 0, "means": {}}]))
    assert "no traces" in timeline_section([run], [0])


@pytest.mark.slow
def test_the_report_of_two_real_runs_has_a_timeline_per_round_and_run(tmp_path_factory) -> None:
    baseline, variant = two_runs(tmp_path_factory)
    out = tmp_path_factory.mktemp("timeline") / "compare.html"
    assert main(["compare", str(baseline), str(variant), "-o", str(out)]) == 0
    html = out.read_text(encoding="utf-8")
    section = html[html.index("<h2>Trace timeline</h2>") :]
    for i, run_dir in enumerate((baseline, variant)):
        run = read_run(run_dir)
        svgs = re.findall(rf'<svg class="chart timeline run-{i}".*?</svg>', section, re.S)
        assert len(svgs) == 3, "steps 0, 2 and 4: a chart per round even where this run has no round"
        bars = sum(svg.count('<g class="bar') for svg in svgs)
        assert bars == len([t for t in run.of("trace") if t["component"] == "turn"]), "every traced turn drawn"
        rounds = [svg for svg in svgs if '<g class="bar' in svg]
        assert all(svg.count('<g class="bar slowest">') == 1 for svg in rounds) and len(rounds) == len(run.eval_steps())
