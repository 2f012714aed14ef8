"""`python -m harness compare`: the self-contained HTML report, built from two short real runs and seen in Chromium."""

from __future__ import annotations

import json
import re
import shutil
import subprocess
import tempfile
from pathlib import Path

import pytest
from short_runs import two_runs

from harness.cli import main
from harness.compare.html import highlight
from harness.compare.report import composite, turning
from harness.records.runlog import Run, read_run
from harness.records.runs import frames, summary
from rubrics.contamination import find_artefacts

PLANTED = '<script>alert("x")</script> 詳しくは #kaggle へ & more'


@pytest.fixture(scope="module")
def runs(tmp_path_factory) -> tuple[Path, Path]:
    """The baseline with a `<script>` and a hashtag planted in one turn (as an untrusted model could write)."""
    baseline, variant = two_runs(tmp_path_factory)
    planted = tmp_path_factory.mktemp("planted") / baseline.name
    planted.mkdir()
    records = [json.loads(line) for line in (baseline / "runlog.jsonl").read_text(encoding="utf-8").splitlines()]
    for r in records:
        if r["type"] == "conversation" and r["step"] == 2 and r["scenario"] == "monthly-kaggle":
            r["turns"][1]["text"] = PLANTED
            r["transcript"] = "\n".join(f"{t['speaker']}：{t['text']}" for t in r["turns"])
            r["evidence"]["contamination"]["spans"] = [{"turn": 1, **s} for s in find_artefacts(PLANTED)]
    lines = [json.dumps(r, ensure_ascii=False) for r in records]
    (planted / "runlog.jsonl").write_text("\n".join(lines) + "\n", encoding="utf-8")
    return planted, variant


@pytest.fixture(scope="module")
def report(runs, tmp_path_factory) -> str:
    out = tmp_path_factory.mktemp("report") / "compare.html"
    assert main(["compare", str(runs[0]), str(runs[1]), "-o", str(out)]) == 0
    return out.read_text(encoding="utf-8")


def _charts(html: str) -> dict[str, str]:
    return dict(re.findall(r'<svg class="chart"[^>]*aria-label="([^"]*)">(.*?)</svg>', html))


def _points(chart: str, run: int) -> int:
    match = re.search(rf'<g class="run-{run}"[^>]*><polyline points="([^"]*)"', chart)
    return len(match.group(1).split()) if match else 0


@pytest.mark.slow
def test_the_report_has_loss_and_every_rubric_mean_and_per_scenario_curve_for_both_runs(report: str) -> None:
    charts = _charts(report)
    assert _points(charts["train/loss"], 0) == 4 and _points(charts["train/loss"], 1) == 4
    for name, direction in (("relevance", "higher"), ("contamination", "lower"), ("fluency", "higher")):
        mean = charts[f"rubric/{name} ({direction} is better)"]
        assert (_points(mean, 0), _points(mean, 1)) == (3, 2), "rounds at 0, 2, 4 and at 0, 4"
        for scenario in ("monthly-kaggle", "shake-up"):
            per_scenario = charts[f"rubric/{name}/{scenario}"]
            assert (_points(per_scenario, 0), _points(per_scenario, 1)) == (3, 2)
    assert "Where each run was best" in report and "1 − mean for lower-is-better" in report


@pytest.mark.slow
def test_transcripts_sit_side_by_side_per_step_with_artefacts_marked_and_everything_escaped(report: str) -> None:
    assert "<script" not in report, "the report runs no script, and planted markup stays text"
    assert "&lt;script&gt;alert(&quot;x&quot;)&lt;/script&gt; 詳しくは " in report
    assert '<mark class="artefact hashtag" title="hashtag">#kaggle</mark> へ &amp; more' in report
    (monthly,) = re.findall(r"<summary>monthly-kaggle: 月刊Kaggleは役に立たない</summary>(.*?)</details>", report)
    rows = re.findall(r"<tr><td>(\d+)</td>(.*?)</tr>", monthly)
    assert [step for step, _ in rows] == ["0", "2", "4"]
    for step, cells in rows:
        assert cells.count("<td>") == 2
        assert cells.count("Kaggleアンチ：") == (4 if step != "2" else 2), "step 2 exists only in the baseline"
    assert "no conversation at this step" in dict(rows)["2"]
    for tag in ("<link", " src=", "url(", "@import", "http://", "https://"):
        assert tag not in report.replace("https://t.co", ""), f"{tag}: the report must open offline"


@pytest.mark.slow
def test_the_runs_table_names_each_runs_model_as_harness_runs_does(report: str, runs) -> None:
    (section,) = re.findall(r"<h2>Runs</h2><table[^>]*>.*?<tbody>(.*?)</tbody>", report, re.S)
    rows = [re.findall(r"<td>(.*?)</td>", row) for row in section.split("<tr>")[1:]]
    assert len(rows) == 2
    for row, path in zip(rows, runs, strict=True):
        listed = summary(read_run(path))
        assert row[1:5] == [listed["experiment"], listed["profile"], listed["model"], listed["status"]]
        assert row[3] == "embedded", "the model the run header records, never None"


@pytest.mark.slow
def test_the_config_diff_names_what_differs_and_nothing_that_agrees(report: str, runs) -> None:
    (diff,) = re.findall(r"<h2>Configuration differences</h2>(.*?)</table>", report, re.S)
    rows = {key: values for key, *values in (re.findall(r"<td>(.*?)</td>", row) for row in diff.split("<tr>")[2:])}
    assert rows["experiment.lora.r"] == ["8", "4"]
    assert rows["experiment.name"] == ["baseline", "variant"]
    assert rows["experiment.eval_every"] == ["2", "4"]
    assert "versions.torch" not in rows and "experiment.model.name_or_path" not in rows and "run_id" not in rows


@pytest.mark.slow
def test_a_gate_result_is_rendered_and_a_malformed_one_is_one_line(runs, tmp_path: Path, capsys) -> None:
    gate = {"verdict": "fail", "rubrics": [
        {"rubric": "fluency", "baseline": 0.7, "candidate": 0.2, "difference": -0.5, "interval": [-0.6, -0.4],
         "tolerance": 0.05, "verdict": "fail"},
        {"rubric": "<b>relevance</b>", "baseline": 0.1, "candidate": 0.1, "difference": 0.0, "interval": [-0.1, 0.1],
         "tolerance": 0.05, "verdict": "pass"},
    ]}  # fmt: skip
    (tmp_path / "gate.json").write_text(json.dumps(gate), encoding="utf-8")
    out = tmp_path / "r.html"
    argv = ["compare", str(runs[0]), str(runs[1]), "-o", str(out), "--steps", "0", "--scenario", "shake-up"]
    assert main([*argv, "--gate", str(tmp_path / "gate.json")]) == 0
    html = out.read_text(encoding="utf-8")
    assert "Gate verdict: <span class='verdict fail'>fail</span>" in html
    assert "<td>[-0.600, -0.400]</td>" in html and "&lt;b&gt;relevance&lt;/b&gt;" in html
    assert "monthly-kaggle: " not in html and "<tr><td>2</td>" not in html, "only the chosen scenario and step"
    (tmp_path / "bad.json").write_text('{"verdict": "maybe"}', encoding="utf-8")
    assert main([*argv, "--gate", str(tmp_path / "bad.json")]) == 2
    assert main([*argv, "--steps", "3"]) == 2
    err = capsys.readouterr().err.splitlines()
    assert 'bad.json: a gate result needs "verdict"' in err[0] and "--steps 3: no completed round" in err[1]


@pytest.mark.slow
def test_compare_wandb_offline_stops_with_one_line_and_writes_nothing(runs, tmp_path: Path, monkeypatch, capsys):
    monkeypatch.setenv("WANDB_MODE", "offline")
    out = tmp_path / "r.html"
    assert main(["compare", str(runs[0]), str(runs[1]), "-o", str(out), "--wandb"]) == 2
    err = capsys.readouterr().err.strip()
    assert "W&B is offline" in err and "wandb sync" in err and len(err.splitlines()) == 1
    assert not out.exists()


def _synthetic(evals: list[tuple[int, dict[str, float]]], losses: list[tuple[int, float]]) -> Run:
    header = {"type": "header", "run_id": "r", "experiment": {"rubrics": dict.fromkeys(evals[0][1], "v")}}
    records = [header, *({"type": "metrics", "step": s, "loss": loss} for s, loss in losses)]
    records += [{"type": "eval", "step": s, "means": means} for s, means in evals]
    return Run(Path("r"), header, records)


def test_composite_turns_contamination_around() -> None:
    assert composite({"relevance": 0.6, "contamination": 0.2, "fluency": 1.0}) == pytest.approx((0.6 + 0.8 + 1.0) / 3)


@pytest.mark.parametrize(
    ("later", "losses", "flagged"),
    [
        ((0.5, 0.0), [(10, 3.0), (20, 2.0), (30, 1.5)], [30]),  # quality fell while the loss fell
        ((0.5, 0.0), [(10, 3.0), (20, 2.0), (30, 2.5)], []),  # the loss rose too: not the silent kind
        ((0.77, 0.0), [(10, 3.0), (20, 2.0), (30, 1.5)], []),  # within the tolerance
        ((0.8, 0.9), [(10, 3.0), (20, 2.0), (30, 1.5)], [30]),  # contamination rose: lower is better
    ],
)
def test_quality_turning_down_while_loss_falls_is_flagged_after_the_best_step(later, losses, flagged) -> None:
    relevance, contamination = later
    evals = [
        (0, {"relevance": 0.2, "contamination": 0.0}),
        (20, {"relevance": 0.8, "contamination": 0.0}),
        (30, {"relevance": relevance, "contamination": contamination}),
    ]
    result = turning(frames(_synthetic(evals, losses)), tolerance=0.05)
    assert result.best_step == 20 and result.turned_down == flagged


@pytest.mark.parametrize(
    ("text", "spans", "expected"),
    [
        ("a<b #tag&", [{"start": 4, "end": 8, "kind": "hashtag"}], 'a&lt;b <mark class="artefact hashtag" '
         'title="hashtag">#tag</mark>&amp;'),
        ("x @u", [{"start": 2, "end": 9, "kind": "mention"}], "x @u"),  # out of range: not trusted
        ("ab", [{"start": 0, "end": 1, "kind": '"><script>'}], '<mark class="artefact &quot;&gt;&lt;script&gt;" '
         'title="&quot;&gt;&lt;script&gt;">a</mark>b'),
    ],
)  # fmt: skip
def test_highlight_escapes_first_and_marks_spans_at_raw_offsets(text, spans, expected) -> None:
    assert highlight(text, spans) == expected


def _console(html_file: Path) -> tuple[list[str], str]:
    """Console messages and the DOM of a page loaded in headless Chromium."""
    with tempfile.TemporaryDirectory() as profile:
        done = subprocess.run(
            ["chromium", "--headless", "--no-sandbox", "--disable-gpu", "--disable-quic", "--no-first-run",
             "--disable-background-networking", "--disable-component-update", "--disable-sync",
             f"--user-data-dir={profile}", "--enable-logging=stderr", "--v=0", "--dump-dom", html_file.as_uri()],
            capture_output=True, text=True, timeout=120,
        )  # fmt: skip
    return [line for line in done.stderr.splitlines() if ":CONSOLE" in line], done.stdout


@pytest.mark.slow
@pytest.mark.skipif(shutil.which("chromium") is None, reason="chromium is not installed (CI installs it: apt chromium)")
def test_the_report_loads_in_headless_chromium_with_no_console_messages(runs, report: str, tmp_path: Path) -> None:
    bad = tmp_path / "bad.html"
    bad.write_text("<!DOCTYPE html><p>x</p><script>console.error('marker'); nope();</script>", encoding="utf-8")
    messages, _ = _console(bad)
    assert any("marker" in m for m in messages) and any("nope is not defined" in m for m in messages), messages
    page = tmp_path / "report.html"
    page.write_text(report, encoding="utf-8")
    messages, dom = _console(page)
    assert messages == []
    assert f"Run comparison: {runs[0].name} vs {runs[1].name}" in dom and dom.count('<svg class="chart"') >= 5


@pytest.mark.slow
def test_the_report_shows_first_artefacts_per_scenario_and_the_kept_best_step(report: str, runs) -> None:
    (section,) = re.findall(r"<h2>First tweet artefacts, and alerts</h2>(.*?)</table>", report, re.S)
    rows = {cells[0]: cells[1:] for cells in (re.findall(r"<td>(.*?)</td>", row) for row in section.split("<tr>")[2:])}
    assert rows["monthly-kaggle"][0] == "step 2 (hashtag 1: #kaggle)", "the planted hashtag, at the step it was planted"
    assert rows["shake-up"] == ["none", "none"]
    best = [frames(read_run(r)).best_step for r in runs]
    assert all(isinstance(b, int) for b in best)
    (table,) = re.findall(r"<h2>Runs</h2>(.*?)</table>", report, re.S)
    head = re.findall(r"<th>(.*?)</th>", table)
    cells = [re.findall(r"<td>(.*?)</td>", row) for row in table.split("<tr>")[2:]]
    assert [row[head.index("adapter-best step")] for row in cells] == [str(b) for b in best]
