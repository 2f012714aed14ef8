"""`python -m harness runs`, RUN as id or path, and `load_run` DataFrames, on two short real runs."""

from __future__ import annotations

import json
import shutil
from pathlib import Path

import pytest
from short_runs import two_runs

from harness import load_run
from harness.cli import main

pytestmark = pytest.mark.slow


@pytest.fixture(scope="module")
def runs(tmp_path_factory) -> tuple[Path, Path]:
    return two_runs(tmp_path_factory)


def test_runs_json_lists_every_run_with_its_status_and_last_means(runs, capsys) -> None:
    baseline, variant = runs
    assert main(["runs", str(baseline.parent), "--json"]) == 0
    rows = json.loads(capsys.readouterr().out)
    assert [r["id"] for r in rows] == [baseline.name, variant.name]
    assert [r["path"] for r in rows] == [str(baseline), str(variant)]
    assert [r["experiment"] for r in rows] == ["baseline", "variant"]
    assert [r["status"] for r in rows] == ["completed", "completed"]
    assert [(r["reason"], r["resume_step"]) for r in rows] == [(None, None), (None, None)]
    assert [(r["steps"], r["max_steps"], r["eval_step"]) for r in rows] == [(4, 4, 4), (4, 4, 4)]
    assert set(rows[0]["means"]) == {"relevance", "contamination", "fluency"}


def test_runs_table_shows_an_unfinished_run_as_incomplete_and_skips_an_unreadable_log(
    runs, tmp_path: Path, capsys
) -> None:
    baseline, _ = runs
    unfinished = tmp_path / baseline.name
    shutil.copytree(baseline, unfinished, ignore=shutil.ignore_patterns("wandb", "adapter", "checkpoints"))
    lines = (unfinished / "runlog.jsonl").read_text(encoding="utf-8").splitlines()
    (unfinished / "runlog.jsonl").write_text("\n".join(lines[:-1]) + "\n", encoding="utf-8")
    (tmp_path / "broken").mkdir()
    (tmp_path / "broken" / "runlog.jsonl").write_text('{"v": 1, "type": "metrics"}\n', encoding="utf-8")
    assert main(["runs", str(tmp_path)]) == 0
    out, err = capsys.readouterr()
    header, row, note = out.splitlines()
    assert header.split()[:6] == ["id", "experiment", "profile", "model", "steps", "status"]
    assert row.split()[:6] == [baseline.name, "baseline", "full", "embedded", "4/4", "incomplete"]
    assert "relevance=" in row and "@4" in row
    assert note == f"    incomplete: --resume {baseline.name} continues from step 0", "its checkpoints were not copied"
    assert "skipping" in err and "broken" in err


def test_load_run_accepts_an_id_or_a_path_and_gives_dataframes(runs) -> None:
    baseline, _ = runs
    by_id = load_run(baseline.name, runs_dir=baseline.parent)
    by_path = load_run(str(baseline))
    assert by_id.header == by_path.header and by_id.status == "completed"
    c = by_id.conversations
    assert {"step", "scenario", "transcript", "relevance", "contamination", "fluency"} <= set(c.columns)
    assert sorted(set(c["step"])) == [0, 2, 4] and len(c) == 3 * 2
    assert c["fluency"].between(0, 1).all() and c["transcript"].str.startswith("Kaggleアンチ：").all()
    assert list(by_id.metrics.dropna(subset=["loss"])["step"]) == [1, 2, 3, 4]
    assert {"step", "scenario", "component", "input", "output"} <= set(by_id.traces.columns) and len(by_id.traces)
    assert list(by_id.evals["step"]) == [0, 2, 4]


def test_an_unknown_run_is_one_line_naming_it_and_exit_2(runs, capsys) -> None:
    baseline, _ = runs
    assert main(["compare", "no-such-run", "--runs-dir", str(baseline.parent)]) == 2
    err = capsys.readouterr().err.strip()
    assert "no-such-run" in err and "harness runs" in err and len(err.splitlines()) == 1
    assert main(["runs", str(baseline / "nope")]) == 2
    assert "no such runs directory" in capsys.readouterr().err
