"""The run log: append-only, versioned, readable after a crash mid-write."""

from __future__ import annotations

import json
from pathlib import Path

import pytest

from harness.records.runlog import LOG_NAME, RunLog, read_run


def _write_run(run_dir: Path, end: bool = True) -> None:
    log = RunLog(run_dir)
    log.write("header", run_id="kaggle_debate-1", profile="cpu")
    log.write("conversation", step=0, scenario="monthly-kaggle", transcript="Kaggleアンチ：月刊Kaggleは読まない")
    log.write("eval", step=0, seconds=1.0, means={"relevance": 0.5})
    log.write("conversation", step=10, scenario="monthly-kaggle", transcript="Kaggleアンチ：途中で落ちた")
    if end:
        log.write("end", status="completed")
    log.close()


def test_a_finished_run_reads_back_with_its_status(tmp_path: Path) -> None:
    _write_run(tmp_path)
    run = read_run(tmp_path)
    assert run.id == "kaggle_debate-1" and run.status == "completed"
    assert run.eval_steps() == [0]
    # the step-10 conversation has no closing `eval` record: its round is incomplete and not reported
    assert [c["step"] for c in run.conversations()] == [0]


def test_a_torn_last_line_is_ignored_and_the_run_is_incomplete(tmp_path: Path) -> None:
    _write_run(tmp_path, end=False)
    with (tmp_path / LOG_NAME).open("a", encoding="utf-8") as f:
        f.write('{"v": 1, "type": "conver')
    run = read_run(tmp_path)
    assert run.status == "incomplete"
    assert len(run.of("conversation")) == 2


def test_a_record_from_another_version_is_refused(tmp_path: Path) -> None:
    (tmp_path / LOG_NAME).write_text(json.dumps({"v": 99, "type": "header"}) + "\n", encoding="utf-8")
    with pytest.raises(ValueError, match="run-log version 99"):
        read_run(tmp_path)


def test_untrusted_text_is_stored_losslessly(tmp_path: Path) -> None:
    nasty = "<script>alert(1)</script>\u202e\x00\x1b[31m" + "草" * 1000
    log = RunLog(tmp_path)
    log.write("header", run_id="r")
    log.write("conversation", step=0, transcript=nasty)
    log.close()
    assert read_run(tmp_path).of("conversation")[0]["transcript"] == nasty


def test_lone_surrogates_survive_the_round_trip(tmp_path: Path) -> None:
    broken = "LBが\ud800壊れた"
    log = RunLog(tmp_path)
    log.write("header", run_id="r")
    log.write("conversation", step=0, transcript=broken)
    log.close()
    assert read_run(tmp_path).of("conversation")[0]["transcript"] == broken


def test_credentials_never_reach_the_log(tmp_path: Path, monkeypatch) -> None:
    monkeypatch.setenv("WANDB_API_KEY", "0123456789abcdef0123456789abcdef01234567")
    log = RunLog(tmp_path)
    log.write("header", run_id="r", argv=["run", "--note", "0123456789abcdef0123456789abcdef01234567"])
    log.close()
    text = (tmp_path / LOG_NAME).read_text(encoding="utf-8")
    assert "0123456789abcdef" not in text and "***" in text
