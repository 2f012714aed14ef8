"""The command line: documented options, one-line errors with exit code 2."""

from __future__ import annotations

import subprocess
import sys
from pathlib import Path

import pytest

from harness.cli import main, parser


def test_help_documents_every_run_option() -> None:
    text = parser()._subparsers._group_actions[0].choices["run"].format_help()
    for option in ("--profile", "--runs-dir", "--max-steps", "--eval-every", "auto", "cpu", "full", "WANDB_MODE"):
        assert option in text


@pytest.mark.parametrize(
    ("argv", "message"),
    [
        (["run", "experiments/nope.py"], "no such experiment file"),
        (["run", "pyproject.toml"], "an experiment is a Python file"),
    ],
)
def test_bad_input_is_one_line_and_exit_code_2(argv, message, capsys) -> None:
    assert main(argv) == 2
    err = capsys.readouterr().err.strip()
    assert message in err and len(err.splitlines()) == 1 and "Traceback" not in err


def test_missing_data_is_reported_before_a_run_directory_exists(write_experiment, tmp_path: Path, capsys) -> None:
    path = write_experiment(data=str(tmp_path / "missing.jsonl"))
    assert main(["run", str(path), "--runs-dir", str(tmp_path / "runs")]) == 2
    assert "DataSpec.path: data file" in capsys.readouterr().err
    assert not (tmp_path / "runs").exists()


@pytest.mark.parametrize(
    ("content", "message"),
    [
        (b"", "the data file is empty"),
        (b'{"text": "\x82\xa0"}\n', "not UTF-8"),
        (b'{"text": "LB\xe3\x81\x8c"}\n{broken\n', "not valid JSON lines"),
        ('{"body": "金圏に入った"}\n'.encode(), "no field 'text' (fields: body)"),
        ('{"text": "金圏に入った"}\n{"text": ""}\n'.encode(), "1 documents have an empty or non-text 'text' (lines 2)"),
    ],
)
def test_bad_data_names_the_file_and_the_problem(write_experiment, tmp_path: Path, content, message, capsys) -> None:
    data = tmp_path / "tweets.jsonl"
    data.write_bytes(content)
    assert main(["run", str(write_experiment(data=str(data))), "--runs-dir", str(tmp_path / "runs")]) == 2
    assert message in capsys.readouterr().err


def test_python_dash_m_harness_help_runs() -> None:
    out = subprocess.run([sys.executable, "-m", "harness", "--help"], capture_output=True, text=True, check=True)
    assert "run" in out.stdout and "score" in out.stdout and "build-model" in out.stdout
