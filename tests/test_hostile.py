"""Fault injection, probed as an attacker or an unlucky user would (issue 16): secrets, torn logs, two writers,
resumes at the edges of the schedule, crashes inside a round, hostile sizes and user code that exits."""

from __future__ import annotations

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
# Appended to an experiment file: the process kills itself with SIGKILL right after writing the record named in
# HARNESS_TEST_KILL_AT ("conversation:3"), so a crash lands exactly inside a round, as a power cut would.
KILL_HOOK = """
import os as _os
import signal as _signal

from harness.records import runlog as _runlog

if _os.environ.get("HARNESS_TEST_KILL_AT"):
    _type, _step = _os.environ["HARNESS_TEST_KILL_AT"].split(":")
    _write = _runlog.RunLog.write

    def _write_then_die(self, type_, **fields):
        _write(self, type_, **fields)
        if type_ == _type and fields.get("step") == int(_step):
            _os.kill(_os.getpid(), _signal.SIGKILL)

    _runlog.RunLog.write = _write_then_die
"""


def _experiment(tmp_path: Path, name: str = "small", max_steps: int = 2, eval_every: int = 2, **replace: str) -> Path:
    source = SMALL_EXPERIMENT.format(data=DATA, max_steps=max_steps, eval_every=eval_every) + KILL_HOOK
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


def _crashed_run(tmp_path: Path, kill_at: str, **fields) -> Path:
    runs = tmp_path / "runs"
    code, out = _harness("run", str(_experiment(tmp_path, **fields)), "--runs-dir", str(runs),
                         env={"HARNESS_TEST_KILL_AT": kill_at})  # fmt: skip
    assert code == -signal.SIGKILL, out
    (run_dir,) = runs.iterdir()
    assert read_run(run_dir).status == "incomplete"
    return run_dir


def _pairs(run_dir: Path) -> list[tuple[int, str]]:
    return sorted((c["step"], c["scenario"]) for c in read_run(run_dir).conversations())


@pytest.fixture(scope="module")
def crashed_in_round_zero(tmp_path_factory) -> Path:
    """A run killed inside its step-0 round, after its first conversation record and before the round's `eval`."""
    run_dir = _crashed_run(tmp_path_factory.mktemp("crash0"), "conversation:0")
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


def test_a_complete_line_that_is_not_a_record_is_named_not_dropped(tmp_path, capsys) -> None:
    good, bad = tmp_path / "runs" / "good", tmp_path / "runs" / "bad"
    for run_dir in (good, bad):
        run_dir.mkdir(parents=True)
        log = RunLog(run_dir)
        log.write("header", run_id=run_dir.name, time=1.0)
        log.close()
    with (bad / LOG_NAME).open("a", encoding="utf-8") as f:
        f.write("[1, 2, 3]\n")
    assert main(["runs", str(tmp_path / "runs")]) == 0
    captured = capsys.readouterr()
    assert "good" in captured.out and f"{bad / LOG_NAME}:2: not a run-log record" in captured.err
    (bad / LOG_NAME).write_text((bad / LOG_NAME).read_text().replace("[1, 2, 3]", "{broken"), encoding="utf-8")
    assert main(["compare", str(bad), str(good), "--runs-dir", str(tmp_path / "runs")]) == 2
    assert f"{bad / LOG_NAME}:2: not a run-log record (not JSON)" in capsys.readouterr().err


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


def test_a_resume_from_the_checkpoint_at_max_steps_trains_nothing_and_holds_the_final_round(tmp_path) -> None:
    from safetensors.torch import load_file

    # max_steps 3, eval_every 2: the final checkpoint (step 3) is saved before the final round; kill inside it.
    run_dir = _crashed_run(tmp_path, "conversation:3", max_steps=3)
    assert (run_dir / "checkpoints" / "checkpoint-3" / "adapter_model.safetensors").exists()
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
