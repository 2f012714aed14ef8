"""Fault injection, probed as an attacker or an unlucky user would (issue 16): secrets, torn logs, two writers,
resumes at the edges of the schedule, crashes inside a round, hostile sizes and user code that exits."""

from __future__ import annotations

import codecs
import json
import os
import shutil
import signal
import subprocess
import sys
import time
from pathlib import Path

import pytest
from conftest import ROOT, SMALL_EXPERIMENT

from harness.cli import main
from harness.records.runlog import LOG_NAME, RunLog, read_run
from harness.records.runs import load_run

pytestmark = [pytest.mark.slow, pytest.mark.faults]
DATA = str(ROOT / "data" / "kaggle_tweets.jsonl")
SCENARIOS = ("monthly-kaggle", "shake-up")
# Appended to an experiment file: the process sends itself a real signal right after writing the record named in
# HARNESS_TEST_SIGNAL ("KILL conversation 3": SIGKILL after the first step-3 conversation; "*" is any step;
# "KILL metrics 3@3": after the third step-3 metrics record), or
# after a debate turn ("TERM turn 0": after the first turn of a round), so a crash or a stop lands exactly where the
# test wants it, as a power cut or an operator would.
SIGNAL_HOOK = """
import os as _os
import signal as _signal

from harness.evaluation import debate as _debate
from harness.records import runlog as _runlog

if _os.environ.get("HARNESS_TEST_SIGNAL"):
    _name, _type, _step = _os.environ["HARNESS_TEST_SIGNAL"].split()
    _step, _, _nth = _step.partition("@")
    _write, _turn, _sent, _seen = _runlog.RunLog.write, _debate._turn, [], []

    def _signal_once():
        if not _sent:
            _sent.append(_name)
            _os.kill(_os.getpid(), getattr(_signal, "SIG" + _name))

    def _write_then_signal(self, type_, **fields):
        _write(self, type_, **fields)
        if type_ == _type and _step in ("*", str(fields.get("step"))):
            _seen.append(type_)
            if len(_seen) >= int(_nth or 1):
                _signal_once()

    def _turn_then_signal(chain, scenarios, index, *args):
        _turn(chain, scenarios, index, *args)
        if _type == "turn" and _step == str(index):
            _signal_once()

    _runlog.RunLog.write, _debate._turn = _write_then_signal, _turn_then_signal
"""


def _experiment(tmp_path: Path, name: str = "small", max_steps: int = 2, eval_every: int = 2, **replace: str) -> Path:
    source = SMALL_EXPERIMENT.format(data=DATA, max_steps=max_steps, eval_every=eval_every) + SIGNAL_HOOK
    for old, new in replace.items():
        source = source.replace(old, new)
    path = tmp_path / "experiments" / f"{name}.py"
    path.parent.mkdir(exist_ok=True)
    path.write_text(source, encoding="utf-8")
    return path


def _harness(*argv: str, env: dict[str, str] | None = None, wait: bool = True, timeout: float = 300):
    """`python -m harness ARGV` as a real process; returns (exit code, output) or, with wait=False, the process."""
    environment = {**os.environ, "WANDB_MODE": "offline", "PYTHONUNBUFFERED": "1", **(env or {})}
    process = subprocess.Popen([sys.executable, "-m", "harness", *argv], cwd=ROOT, env=environment,
                               stdout=subprocess.PIPE, stderr=subprocess.STDOUT)  # fmt: skip
    if not wait:
        return process
    out = process.communicate(timeout=timeout)[0].decode()
    return process.returncode, out


def _crashed_run(tmp_path: Path, at: str, **fields) -> Path:
    """A run killed with SIGKILL right after its first record `at` ("conversation 3")."""
    runs = tmp_path / "runs"
    code, out = _harness("run", str(_experiment(tmp_path, **fields)), "--runs-dir", str(runs),
                         env={"HARNESS_TEST_SIGNAL": f"KILL {at}"})  # fmt: skip
    assert code == -signal.SIGKILL, out
    (run_dir,) = runs.iterdir()
    assert read_run(run_dir).status == "incomplete"
    return run_dir


def _pairs(run_dir: Path) -> list[tuple[int, str]]:
    return sorted((c["step"], c["scenario"]) for c in read_run(run_dir).conversations())


@pytest.fixture(scope="module")
def crashed_in_round_zero(tmp_path_factory) -> Path:
    """A run killed inside its step-0 round, after its first conversation record and before the round's `eval`."""
    run_dir = _crashed_run(tmp_path_factory.mktemp("crash0"), "conversation 0")
    assert [c["type"] for c in read_run(run_dir).records].count("conversation") == 1
    return run_dir


def _copy(run_dir: Path, tmp_path: Path) -> Path:
    return Path(shutil.copytree(run_dir, tmp_path / "runs" / run_dir.name))


# 1. Secrets ----------------------------------------------------------------------------------------------------


def test_secrets_reach_no_sink_and_a_redacted_config_still_resumes(tmp_path) -> None:
    token, langsmith = "pz9-Kq2vX81mTT0c4", "lsv2_pt_5c1e0a77d2b94f1e"
    experiment = _experiment(tmp_path, **{"月刊Kaggleは役に立たない": f"月刊Kaggleは{token}で読める",
                                          '("Kaggleアンチ", "Kaggleファン"), turns=4),\n        Scenario("shake-up"':
                                          '("Kaggleアンチ", "Kaggleファン"), turns=4),\n        Scenario("shake-up"'
                                          .replace("Kaggleファン", f"ファン{langsmith}", 1)})  # fmt: skip
    assert token in experiment.read_text() and langsmith in experiment.read_text()
    env = {"MY_SERVICE_TOKEN": token, "LANGSMITH_API_KEY": langsmith}
    runs = tmp_path / "runs"
    code, out = _harness("run", str(experiment), "--runs-dir", str(runs), env=env)
    assert code == 0, out
    (run_dir,) = runs.iterdir()

    def leaks() -> list[str]:
        found = []
        for path in run_dir.rglob("*"):
            if path.is_file() and (token.encode() in path.read_bytes() or langsmith.encode() in path.read_bytes()):
                found.append(str(path.relative_to(run_dir)))
        return found

    tables = list(run_dir.glob("wandb/offline-run-*/files/media/table/conversations*.table.json"))
    assert tables and "***" in tables[-1].read_text(encoding="utf-8"), "the W&B table holds the redacted texts"
    assert leaks() == []
    # A crash after the final checkpoint: the log loses its `end` record. The recorded config holds `***` where
    # the experiment file holds the secret; the resume must not take that for a changed experiment.
    log = run_dir / LOG_NAME
    lines = log.read_text(encoding="utf-8").splitlines(keepends=True)
    log.write_text("".join(line for line in lines if '"type": "end"' not in line), encoding="utf-8")
    code, out = _harness("run", "--resume", str(run_dir), env=env)
    assert code == 0, out
    assert read_run(run_dir).status == "completed" and "changed" not in out
    assert leaks() == []


# 2. A torn last line -------------------------------------------------------------------------------------------


def test_a_torn_tail_inside_a_multibyte_character_is_cut_kept_and_the_run_resumes(
    crashed_in_round_zero, tmp_path, capsys
) -> None:
    run_dir = _copy(crashed_in_round_zero, tmp_path)
    log = run_dir / LOG_NAME
    torn = json.dumps({"v": 1, "type": "trace", "step": 0, "output": "シェイクアップ"}, ensure_ascii=False).encode()
    with log.open("ab") as f:
        f.write(torn[: torn.index("ア".encode()) + 2])  # two of the three bytes of ア
    original = log.read_bytes()
    # Before any resume, every reader still reads the run.
    assert main(["runs", str(run_dir.parent)]) == 0
    assert run_dir.name in capsys.readouterr().out
    assert load_run(run_dir).status == "incomplete"

    code, out = _harness("run", "--resume", str(run_dir))
    assert code == 0, out
    said = [line for line in out.splitlines() if "cut a torn last line" in line]
    assert len(said) == 1 and "runlog.jsonl.torn" in said[0], out
    assert (run_dir / "runlog.jsonl.torn").read_bytes() == original, "the original log is kept"
    run = read_run(run_dir)
    assert run.status == "completed" and run.eval_steps() == [0, 2]


@pytest.mark.parametrize(
    "line, message",
    [
        ("[1, 2, 3]", "not a run-log record (a JSON object"),
        ('{"v": 1, "type": "eval"}', "'eval' record without step"),
        ('{"v": 1, "type": "metrics", "step": "3"}', "step is not an integer"),
        ("{broken", "not a run-log record (not JSON)"),
    ],
)
def test_a_line_that_is_not_a_record_is_named_and_other_runs_still_list(tmp_path, capsys, line, message) -> None:
    good, bad = tmp_path / "runs" / "good", tmp_path / "runs" / "bad"
    for run_dir in (good, bad):
        run_dir.mkdir(parents=True)
        log = RunLog(run_dir)
        log.write("header", run_id=run_dir.name, time=1.0)
        log.close()
    with (bad / LOG_NAME).open("a", encoding="utf-8") as f:
        f.write(line + "\n")  # a complete line: not a torn tail
    assert main(["runs", str(tmp_path / "runs")]) == 0
    captured = capsys.readouterr()
    assert "good" in captured.out and f"{bad / LOG_NAME}:2: " in captured.err and message in captured.err
    assert main(["compare", str(bad), str(good)]) == 2
    assert message in capsys.readouterr().err


# 3. One writer per run directory ----------------------------------------------------------------------------------


def test_two_resumes_of_one_run_one_writes_the_other_gets_one_line_and_exit_2(crashed_in_round_zero, tmp_path) -> None:
    run_dir = _copy(crashed_in_round_zero, tmp_path)
    first = _harness("run", "--resume", str(run_dir), wait=False)
    time.sleep(0.5)
    second = _harness("run", "--resume", str(run_dir), wait=False)
    outs = [p.communicate(timeout=300)[0].decode() for p in (first, second)]
    codes = [first.returncode, second.returncode]
    assert sorted(codes) == [0, 2], outs
    refused = outs[codes.index(2)].strip().splitlines()
    assert len(refused) == 1 and "another harness process" in refused[0], refused
    run = read_run(run_dir)
    assert run.status == "completed" and run.eval_steps() == [0, 2]
    assert _pairs(run_dir) == sorted((s, name) for s in (0, 2) for name in SCENARIOS)


def test_a_second_writer_in_the_same_process_is_refused(tmp_path) -> None:
    from harness.errors import UserError

    log = RunLog(tmp_path)
    with pytest.raises(UserError, match=f"pid {os.getpid()}"):
        RunLog(tmp_path)
    log.close()
    RunLog(tmp_path).close()  # released on close


# 4 + 5. Resumes at the edges of the schedule, crashes inside a round --------------------------------------------


def test_a_resume_from_the_checkpoint_at_max_steps_trains_nothing_and_repeats_no_round(tmp_path) -> None:
    from safetensors.torch import load_file

    # max_steps 3: the final round runs, then checkpoint-3 is saved, then the training summary is logged (the third
    # step-3 metrics record, after the loss and the round's): killed there, the run has every round and the final
    # checkpoint but no end record and no adapter.
    run_dir = _crashed_run(tmp_path, "metrics 3@3", max_steps=3)
    assert (run_dir / "checkpoints" / "checkpoint-3" / "adapter_model.safetensors").exists()
    assert read_run(run_dir).eval_steps() == [0, 2, 3] and not (run_dir / "adapter").exists()
    code, out = _harness("run", "--resume", str(run_dir))
    assert code == 0, out
    run = read_run(run_dir)
    assert run.status == "completed" and run.eval_steps() == [0, 2, 3]
    assert max(m["step"] for m in run.of("metrics")) == 3, "no step past max_steps"
    assert _pairs(run_dir) == sorted((s, name) for s in (0, 2, 3) for name in SCENARIOS), "each round once"
    final = load_file(run_dir / "checkpoints" / "checkpoint-3" / "adapter_model.safetensors")
    adapter = load_file(run_dir / "adapter" / "adapter_model.safetensors")
    assert final.keys() == adapter.keys() and all((final[k] == adapter[k]).all() for k in final), "not over-trained"


def test_a_crash_inside_the_step_0_round_leaves_no_duplicate_on_resume(crashed_in_round_zero, tmp_path) -> None:
    run_dir = _copy(crashed_in_round_zero, tmp_path)
    code, out = _harness("run", "--resume", str(run_dir))
    assert code == 0, out
    assert _pairs(run_dir) == sorted((s, name) for s in (0, 2) for name in SCENARIOS)
    traces = [(t["step"], t["scenario"], t["turn"], t["component"]) for t in read_run(run_dir).of("trace")]
    assert len(traces) == len(set(traces))
    frames = load_run(run_dir)
    assert len(frames.conversations) == 4 and not frames.conversations.duplicated(["step", "scenario"]).any()


# 6 + 12. `harness score` on hostile files ----------------------------------------------------------------------


def _score(*argv: str, stdin: bytes | None = None) -> tuple[int, str]:
    done = subprocess.run([sys.executable, "-m", "harness", "score", *argv], cwd=ROOT, input=stdin,
                          capture_output=True, timeout=300)  # fmt: skip
    return done.returncode, done.stderr.decode()


def test_a_text_too_long_for_the_tagger_is_a_bad_line_and_no_partial_output_is_left(tmp_path) -> None:
    src, out = tmp_path / "in.jsonl", tmp_path / "out.jsonl"
    good = json.dumps({"id": 1, "text": "Private LBでshake downして泣いた"}, ensure_ascii=False)
    huge = json.dumps({"id": 2, "text": "メダル至上主義のKaggleはつまらない。" * 80_000}, ensure_ascii=False)  # 1.7M
    src.write_text(f"{good}\n{huge}\n", encoding="utf-8")
    code, err = _score(str(src), "-o", str(out))
    assert code == 2, err  # not 139: the text never reaches MeCab
    assert err.count("\n") == 1 and f"{src}:2: 'text' has 1680000 characters, over the 100000" in err, err
    assert not out.exists() and list(tmp_path.iterdir()) == [src]
    code, err = _score(str(src), "-o", str(out), "--skip-bad")
    assert code == 0 and "skipped 1" in err, err
    assert [json.loads(line)["id"] for line in out.read_text(encoding="utf-8").splitlines()] == [1]


def test_output_is_written_whole_or_not_at_all(tmp_path, monkeypatch) -> None:
    import argparse

    from harness.cli import score as score_cli
    from harness.evaluation import scoring

    src, out = tmp_path / "in.jsonl", tmp_path / "out.jsonl"
    src.write_text("".join(json.dumps({"id": i, "text": f"公開Notebookを{i}回forkした"}) + "\n" for i in range(3)),
                   encoding="utf-8")  # fmt: skip
    out.write_text("the previous output\n", encoding="utf-8")
    real, calls = scoring.score_many, []

    def dies_on_the_second_batch(conversations):
        calls.append(1)
        if len(calls) == 2:
            raise MemoryError("out of memory while scoring")
        return real(conversations)

    monkeypatch.setattr(scoring, "BATCH", 1)
    monkeypatch.setattr(scoring, "score_many", dies_on_the_second_batch)
    parser = argparse.ArgumentParser()
    score_cli.add_arguments(parser)
    with pytest.raises(MemoryError):
        score_cli.main(parser.parse_args([str(src), "-o", str(out)]))
    assert out.read_text(encoding="utf-8") == "the previous output\n", "no half-written OUT"
    assert sorted(p.name for p in tmp_path.iterdir()) == ["in.jsonl", "out.jsonl"]


def test_invalid_utf8_is_a_bad_line_at_its_file_offset_from_a_file_or_stdin(tmp_path) -> None:
    first = json.dumps({"id": "a", "text": "月刊Kaggleは読まない"}, ensure_ascii=False).encode() + b"\n"
    second = b'{"id": "b", "text": "\xe6\x9c\x88\xff"}\n'
    third = json.dumps({"id": "c", "text": "締切直前のチームマージ"}, ensure_ascii=False).encode() + b"\n"
    src = tmp_path / "in.jsonl"
    src.write_bytes(codecs.BOM_UTF8 + first + second + third)  # a BOM on line 1 is not a bad line
    offset = len(codecs.BOM_UTF8) + len(first) + second.index(b"\xff")
    for argv, stdin in (([str(src)], None), (["-"], src.read_bytes())):
        code, err = _score(*argv, stdin=stdin)
        assert code == 2 and f":2: not UTF-8 (byte 0xff at byte {offset} of the input)" in err, err
    done = subprocess.run([sys.executable, "-m", "harness", "score", "-", "--skip-bad"], cwd=ROOT,
                          input=src.read_bytes(), capture_output=True, timeout=300)  # fmt: skip
    assert done.returncode == 0 and "skipped 1" in done.stderr.decode()
    assert [json.loads(line)["id"] for line in done.stdout.decode().splitlines()] == ["a", "c"]


@pytest.mark.parametrize("id_, message", [("NaN", "NaN is not a JSON value"), ("1e400", "1e400 is too large")])
def test_nan_is_not_an_id_and_never_written(tmp_path, id_, message) -> None:
    src = tmp_path / "in.jsonl"
    src.write_text(f'{{"id": {id_}, "text": "Kaggleの経験は実務で役に立つ"}}\n', encoding="utf-8")
    code, err = _score(str(src))
    assert code == 2 and message in err, err


# 7. User code that exits ------------------------------------------------------------------------------------------


def test_sys_exit_in_a_rules_module_or_experiment_file_is_exit_2_never_a_pass(tmp_path, capsys) -> None:
    rules = tmp_path / "rules.py"
    rules.write_text("import sys\n\nsys.exit(0)\nrules = []\n", encoding="utf-8")
    done = subprocess.run([sys.executable, "-m", "harness", "gate", str(ROOT / "experiments" / "kaggle_debate.py"),
                           "--rules", f"{rules}:rules", "--out", str(tmp_path / "gate")], cwd=ROOT,
                          capture_output=True, timeout=300)  # fmt: skip
    err = done.stderr.decode().strip().splitlines()
    assert done.returncode == 2 and len(err) == 1 and f"{rules}:3: user code called sys.exit(0)" in err[0], err
    assert not (tmp_path / "gate").exists()

    experiment = _experiment(tmp_path, **{"experiment = Experiment(": "raise SystemExit(0)\nexperiment = Experiment("})
    assert main(["run", str(experiment), "--runs-dir", str(tmp_path / "runs")]) == 2
    assert "small.py:5: the experiment file called sys.exit(0)" in capsys.readouterr().err
    assert not (tmp_path / "runs").exists()


# 8. One line where one line is promised ---------------------------------------------------------------------------

OWN_RUBRIC = '''
import sys

from rubrics import Score, rubric

_calls = []


@rubric(higher_is_better=True)
def politeness(conversation):
    """Share of turns ending in です/ます (higher is better); exits the process on its second round."""
    _calls.append(1)
    if len(_calls) > 2:
        sys.exit(0)
    return Score(sum(t.text.endswith(("です", "ます")) for t in conversation.turns) / len(conversation.turns))

'''


def test_a_rubric_defined_in_the_experiment_file_is_versioned_and_its_exit_fails_the_run(tmp_path) -> None:
    experiment = _experiment(tmp_path, max_steps=2, eval_every=1, **{
        "experiment = Experiment(": OWN_RUBRIC + "experiment = Experiment(",
        '"fluency")': '"fluency", politeness)'})  # fmt: skip
    runs = tmp_path / "runs"
    code, out = _harness("run", str(experiment), "--runs-dir", str(runs))
    assert code == 2 and "Traceback" not in out, out
    (line,) = [line for line in out.splitlines() if line.startswith("harness: error")]
    assert "small.py:" in line and "user code called sys.exit(0)" in line
    (run_dir,) = runs.iterdir()
    run = read_run(run_dir)
    assert run.status == "failed" and run.eval_steps() == [0]
    assert len(run.header["experiment"]["rubrics"]["politeness"]) == 12, "versioned from the experiment file"


def test_a_write_failing_mid_run_is_one_line_exit_2_and_the_run_is_marked_failed(tmp_path) -> None:
    import resource

    # Files may not grow past 200 kB (the kernel answers EFBIG, as a full disk answers ENOSPC): the run log fits,
    # the first checkpoint's adapter (about 300 kB) does not.
    def small_files() -> None:
        resource.setrlimit(resource.RLIMIT_FSIZE, (200_000, 200_000))

    runs = tmp_path / "runs"
    env = {**os.environ, "WANDB_MODE": "offline"}
    done = subprocess.run([sys.executable, "-m", "harness", "run", str(_experiment(tmp_path)), "--runs-dir",
                           str(runs)], cwd=ROOT, env=env, capture_output=True, timeout=300,
                          preexec_fn=small_files)  # fmt: skip
    err = done.stderr.decode()
    assert done.returncode == 2 and "Traceback" not in err, err
    assert [line for line in err.splitlines() if line.startswith("harness: error")] == [
        next(line for line in err.splitlines() if "File too large (EFBIG)" in line)
    ], err
    (run_dir,) = runs.iterdir()
    assert read_run(run_dir).status == "failed"


@pytest.mark.parametrize(
    "rule, message",
    [
        ("    def apply(self, document):\n        raise KeyError('lang')\n", "cleaning rule Broken: KeyError: 'lang'"),
        ("    def apply(self, document):\n        return None\n", "cleaning rule Broken: apply() returned NoneType"),
    ],
    ids=["raises", "returns-none"],
)
def test_a_broken_cleaning_rule_is_one_line_and_no_run_directory(tmp_path, capsys, rule, message) -> None:
    broken = f"from hojichar import Filter\n\n\nclass Broken(Filter):\n{rule}\n\n"
    experiment = _experiment(tmp_path, **{"experiment = Experiment(": broken + "experiment = Experiment(",
                                          "cleaning=default_tweet_rules(),": "cleaning=[Broken()],"})  # fmt: skip
    assert main(["run", str(experiment), "--runs-dir", str(tmp_path / "runs")]) == 2
    assert message in capsys.readouterr().err
    assert not (tmp_path / "runs").exists()


@pytest.mark.parametrize("baseline", ["[]", '{"rules": [], "texts": "abc", "raw_count": 1, "train_key": null, '
                                      '"conversations": null}', '{"rules": ["x"], "texts": ["本文"], "raw_count": 0, '
                                      '"train_key": "k", "conversations": [{"step": "1"}]}'])  # fmt: skip
def test_a_baseline_file_of_the_wrong_shape_is_one_line_exit_2(tmp_path, capsys, baseline) -> None:
    path = tmp_path / "bad.gate-baseline.json"
    path.write_text(baseline, encoding="utf-8")
    experiment = str(ROOT / "experiments" / "kaggle_debate.py")
    assert main(["gate", experiment, "--baseline", str(path), "--out", str(tmp_path / "gate")]) == 2
    assert f"{path}: not a gate baseline file" in capsys.readouterr().err


# 9. Bounds on the work an experiment asks for ----------------------------------------------------------------------


@pytest.mark.parametrize(
    "old, new, message",
    [
        ('"shake-up", "Private LBのshake upはただの運ゲーだ", ("Kaggleアンチ", "Kaggleファン"), turns=4',
         '"shake-up", "Private LBのshake upはただの運ゲーだ", ("Kaggleアンチ", "Kaggleファン"), turns=7000',
         "Scenario 'shake-up': turns must be at most 200, got 7000"),
        ('"Private LBのshake upはただの運ゲーだ"', '"Private LBのshake upはただの運ゲーだ" * 30000',
         "Scenario 'shake-up': topic must be at most 1000 characters, got 810000"),
        ("max_new_tokens=16", "max_new_tokens=40",
         "Scenario 'shake-up': its last turn can need"),
    ],
    ids=["turns", "topic", "context"],
)  # fmt: skip
def test_work_beyond_the_bounds_is_refused_before_a_run_directory(tmp_path, capsys, old, new, message) -> None:
    experiment = _experiment(tmp_path, **{old: new, "turns=4),\n    ),": "turns=12),\n    ),"})
    assert main(["run", str(experiment), "--runs-dir", str(tmp_path / "runs")]) == 2
    err = capsys.readouterr().err
    assert message in err, err
    assert not (tmp_path / "runs").exists()


def test_a_long_round_stops_between_turns_on_sigterm(tmp_path) -> None:
    # 20 turns per debate; SIGTERM arrives after the first turn of the step-0 round.
    experiment = _experiment(tmp_path, **{"turns=4": "turns=20", "max_new_tokens=16": "max_new_tokens=8"})
    runs = tmp_path / "runs"
    started = time.monotonic()
    code, out = _harness("run", str(experiment), "--runs-dir", str(runs), env={"HARNESS_TEST_SIGNAL": "TERM turn 0"})
    assert code == 130 and "--resume" in out, out
    (run_dir,) = runs.iterdir()
    run = read_run(run_dir)
    assert run.status == "interrupted" and run.eval_steps() == [] and not run.of("metrics"), "no step trained"
    assert "stopped before turn 2" in out or "stopped before turn 3" in out, out
    assert time.monotonic() - started < 240


def test_a_run_whose_every_round_failed_is_not_completed(tmp_path, monkeypatch, capsys) -> None:
    import harness.evaluation.round as evaluation

    def no_memory(chain, scenarios, *args):
        raise RuntimeError("CUDA out of memory")

    monkeypatch.setattr(evaluation, "hold_debates", no_memory)
    runs = tmp_path / "runs"
    assert main(["run", str(_experiment(tmp_path)), "--runs-dir", str(runs)]) == 1
    assert "every evaluation round failed (RuntimeError: CUDA out of memory)" in capsys.readouterr().err
    run = read_run(next(runs.iterdir()))
    assert run.status == "failed" and run.eval_steps() == [0, 2]


# 10 + 11. The process ends when it says it ends; signals before training ----------------------------------------


def test_a_thread_left_running_by_the_experiment_file_does_not_keep_the_process_alive(tmp_path) -> None:
    hang = "import threading\nimport time\n\nthreading.Thread(target=time.sleep, args=(3600,)).start()\n"
    experiment = _experiment(tmp_path, **{"experiment = Experiment(": hang + "experiment = Experiment(",
                                          "eval_every=2": "eval_every=0"})  # fmt: skip
    code, out = _harness("run", str(experiment), "--runs-dir", str(tmp_path / "runs"), timeout=120)
    assert code == 2 and "Experiment.eval_every must be in 1..training.max_steps" in out, out


def test_sigterm_before_training_ends_the_run_interrupted_with_its_end_record(tmp_path) -> None:
    runs = tmp_path / "runs"
    # right after the header: before the W&B run, the model and the step-0 round
    code, out = _harness("run", str(_experiment(tmp_path)), "--runs-dir", str(runs),
                         env={"HARNESS_TEST_SIGNAL": "TERM header *"})  # fmt: skip
    assert code == 130 and "--resume" in out, out
    (run_dir,) = runs.iterdir()
    run = read_run(run_dir)
    assert run.status == "interrupted" and not run.of("metrics") and not run.of("conversation")
