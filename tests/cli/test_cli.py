"""The command line: documented options, one-line errors with exit code 2."""

from __future__ import annotations

import contextlib
import json
import os
import subprocess
import sys
from pathlib import Path
from unittest import mock

import pytest

from harness.cli import main, parser

ROOT = Path(__file__).resolve().parents[2]


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


def test_missing_data_names_each_place_looked_in_once(write_experiment, tmp_path: Path, monkeypatch, capsys) -> None:
    monkeypatch.chdir(tmp_path)  # the working directory is the experiment's project root: both lookups are one place
    assert main(["run", str(write_experiment(data="data/missing.jsonl")), "--runs-dir", str(tmp_path / "runs")]) == 2
    err = capsys.readouterr().err
    assert err.count(str(tmp_path / "data" / "missing.jsonl")) == 1, err


@pytest.mark.parametrize(
    ("content", "message"),
    [
        (b"", "the data file is empty"),
        (b'{"text": "\x82\xa0"}\n', "not UTF-8"),
        (b'{"text": "LB\xe3\x81\x8c"}\n{broken\n', "tweets.jsonl:2: not JSON"),
        (b'["LB"]\n', "tweets.jsonl:1: not a JSON object"),
        ('{"body": "金圏に入った"}\n'.encode(), "tweets.jsonl:1: no field 'text' (fields: body)"),
        ('{"text": "金圏に入った"}\n{"text": ""}\n'.encode(), "tweets.jsonl:2: 'text' is empty or not text"),
        (b'{"text": 42}\n{"text": []}\n', "tweets.jsonl:1: 'text' is empty or not text (and 1 more bad lines)"),
        (('{"text": "' + "草" * 1_000_000 + '"}\n').encode(), "1,000,000 characters, over DataSpec.max_chars"),
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


def test_tolerated_bad_lines_are_skipped_and_counted(tmp_path: Path) -> None:
    from harness import DataSpec
    from harness.data.corpus import load_corpus

    data = tmp_path / "tweets.jsonl"
    good = [f'{{"text": "{i}回目のsubmitでLBが上がった"}}' for i in range(5)]
    data.write_text("\n".join([*good[:2], "{oops", *good[2:], '{"text": ""}']) + "\n", encoding="utf-8")
    corpus = load_corpus(DataSpec(str(data), on_bad_lines="skip"), (), None)
    assert len(corpus.texts) == 5
    assert [line for line, _ in corpus.bad_lines] == [3, 7]


@pytest.mark.parametrize(
    ("extra", "message"),
    [
        (["--resume", "small-20260101-000000-dead"], "small-20260101-000000-dead: neither a run directory"),
        (["--resume", "small-20260101-000000-dead", "--max-steps", "8"], "give no KEY=VALUE settings, --profile"),
        (["--resume", "small-20260101-000000-dead", "lora.r=4"], "give no KEY=VALUE settings, --profile"),
        (["--max-steps", "0"], "must be a positive integer"),
        (["--eval-every", "-3"], "must be a positive integer"),
        (["--profile", "gpu"], "invalid choice: 'gpu'"),
        (["--profile", "cpu"], "declares no cpu profile"),
    ],
)
def test_conflicting_or_invalid_options_are_refused(write_experiment, tmp_path, extra, message, capsys) -> None:
    argv = ["run", str(write_experiment()), "--runs-dir", str(tmp_path / "runs"), *extra]
    argparse_error = "must be" in message or "invalid choice" in message
    with pytest.raises(SystemExit) if argparse_error else contextlib.nullcontext() as caught:
        assert main(argv) == 2
    if caught is not None:
        assert caught.value.code == 2
    assert message in capsys.readouterr().err
    assert not (tmp_path / "runs").exists() or not any((tmp_path / "runs").iterdir())


@pytest.mark.parametrize(
    ("argv", "message"),
    [
        (["run"], "give an experiment file (or --resume RUN)"),
        (["run", "--resume", "no-such-run"], "no-such-run: neither a run directory"),
    ],
)
def test_resume_needs_a_real_run(argv, message, tmp_path, capsys) -> None:
    assert main([*argv, "--runs-dir", str(tmp_path)]) == 2
    assert message in capsys.readouterr().err


def test_resume_refuses_an_experiment_other_than_the_runs_own(write_experiment, tmp_path, capsys) -> None:
    own, other = write_experiment(), write_experiment(name="other")
    run_dir = tmp_path / "runs" / "small-20260101-000000-beef"
    run_dir.mkdir(parents=True)
    header = {"v": 1, "type": "header", "time": 0, "run_id": run_dir.name, "experiment_file": str(own.resolve())}
    (run_dir / "runlog.jsonl").write_text(json.dumps(header) + "\n", encoding="utf-8")
    before = sorted(p.name for p in run_dir.iterdir())
    assert main(["run", str(other), "--resume", run_dir.name, "--runs-dir", str(tmp_path / "runs")]) == 2
    (line,) = capsys.readouterr().err.strip().splitlines()
    assert f"that run is of {own.resolve()}, not {other}" in line
    assert sorted(p.name for p in run_dir.iterdir()) == before, "nothing written"


def test_an_unwritable_runs_dir_is_a_user_error(write_experiment, tmp_path, capsys) -> None:
    blocker = tmp_path / "not-a-dir"
    blocker.write_text("a file where the runs directory should be", encoding="utf-8")
    assert main(["run", str(write_experiment()), "--runs-dir", str(blocker / "runs")]) == 2
    assert "cannot write there" in capsys.readouterr().err


def test_a_lora_target_missing_from_the_model_is_found_before_a_run_directory_exists(
    write_experiment, tmp_path, capsys
) -> None:
    source = write_experiment().read_text(encoding="utf-8").replace('"dense_h_to_4h")', '"q_proj")')
    runs = tmp_path / "runs"
    assert main(["run", str(write_experiment(source, name="qproj")), "--runs-dir", str(runs)]) == 2
    err = capsys.readouterr().err
    assert "LoraSpec.target_modules: ['q_proj'] not in the model" in err and "query_key_value" in err
    assert not runs.exists(), "checked on the model's skeleton, before anything is created"


HUB_MODEL_ID = "abeja/gpt-neox-japanese-2.7b"
HUB_MODEL = f'ModelSpec("{HUB_MODEL_ID}", dtype="bfloat16")'


@pytest.mark.parametrize(
    ("env", "message"),
    [
        (
            {"HF_ENDPOINT": "http://127.0.0.1:9"},
            "cannot get model 'abeja/gpt-neox-japanese-2.7b' from http://127.0.0.1:9",
        ),
        ({"HF_HUB_OFFLINE": "1"}, "is not on this machine and HF_HUB_OFFLINE is set"),
    ],
    ids=["unreachable-hub", "hf-hub-offline"],
)
def test_profile_full_without_the_network_says_so_and_leaves_nothing(write_experiment, tmp_path, env, message) -> None:
    source = write_experiment().read_text(encoding="utf-8").replace('ModelSpec(EMBEDDED, dtype="float32")', HUB_MODEL)
    experiment, runs = write_experiment(source, name="hub"), tmp_path / "runs"
    clean = {k: v for k, v in os.environ.items() if not k.startswith(("HF_", "WANDB_"))}
    done = subprocess.run(
        [sys.executable, "-m", "harness", "run", str(experiment), "--profile", "full", "--runs-dir", str(runs)],
        env={**clean, "HF_HOME": str(tmp_path / "hf"), "WANDB_MODE": "offline", **env},
        cwd=tmp_path,
        capture_output=True,
        text=True,
        timeout=300,
    )
    lines = done.stderr.strip().splitlines()
    assert done.returncode == 2, done.stderr
    if "HF_ENDPOINT" in env:
        said = f"harness: {HUB_MODEL_ID} is not on this machine: it will be downloaded from {env['HF_ENDPOINT']}"
        assert lines.pop(0) == said, "the download is announced before it is tried"
    assert len(lines) == 1 and message in lines[0] and "--profile cpu" in lines[0], "one line, no retries"
    assert not runs.exists() and not list(tmp_path.rglob("offline-run-*")), "no run directory, no W&B run"


def test_a_model_too_large_for_cpu_training_is_refused_before_anything_starts(write_experiment, tmp_path, capsys):
    from transformers import GPTNeoXJapaneseConfig

    # The shape of abeja/gpt-neox-japanese-2.7b (its config.json); the weights file only has to exist.
    model = tmp_path / "gpt-neox-japanese-2.7b"
    GPTNeoXJapaneseConfig(hidden_size=2560, num_hidden_layers=32, num_attention_heads=32).save_pretrained(model)
    (model / "model.safetensors").touch()
    spec = f'ModelSpec({str(model)!r}, dtype="bfloat16")'
    source = write_experiment().read_text(encoding="utf-8").replace('ModelSpec(EMBEDDED, dtype="float32")', spec)
    runs = tmp_path / "runs"
    argv = ["run", str(write_experiment(source, name="big")), "--profile", "full", "--runs-dir", str(runs)]
    with mock.patch("torch.cuda.is_available", return_value=False):
        assert main(argv) == 2
    err = capsys.readouterr().err
    assert "has 2.6B parameters and there is no CUDA device" in err and "--profile cpu" in err
    assert not runs.exists()


@pytest.mark.parametrize(
    ("extra", "message"),
    [
        (
            ["--max-steps", "20", "--eval-every", "40"],
            "--eval-every 40 is more than --max-steps 20; give --eval-every 5 (any value up to 20)",
        ),
        (["--eval-every", "400"], "--eval-every 400 is more than the profile's max_steps (240); give --eval-every 60"),
    ],
)
def test_an_eval_interval_longer_than_the_run_is_refused_with_what_to_give(extra, message, tmp_path, capsys) -> None:
    argv = ["run", str(ROOT / "experiments" / "kaggle_debate.py"), "--profile", "cpu", "--runs-dir", str(tmp_path)]
    assert main([*argv, *extra]) == 2
    assert message in capsys.readouterr().err
    assert not any(tmp_path.iterdir())


def test_a_shorter_max_steps_scales_the_rounds_down_and_says_so() -> None:
    from harness.spec.load import load_experiment
    from harness.spec.profiles import with_overrides

    cpu = load_experiment(ROOT / "experiments" / "kaggle_debate.py").for_profile("cpu")
    assert (cpu.training.max_steps, cpu.eval_every) == (240, 40)
    short, note = with_overrides(cpu, 20, None)
    assert (short.training.max_steps, short.eval_every) == (20, 4) and short.eval_steps() == (0, 4, 8, 12, 16, 20)
    assert "evaluating every 4 steps instead" in note and "--eval-every N" in note
    longer, note = with_overrides(cpu, 100, None)
    assert (longer.training.max_steps, longer.eval_every, note) == (100, 40, ""), "a schedule that still fits is kept"
    assert with_overrides(cpu, 20, 10)[0].eval_every == 10
