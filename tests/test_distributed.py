"""Multi-process runs under torchrun (gloo on CPU): one run directory, rounds split across ranks, clean failure."""

from __future__ import annotations

import json
import os
import signal
import subprocess
import sys
import time
from collections import Counter
from pathlib import Path

import pytest

from harness import distributed, load_run

ROOT = Path(__file__).resolve().parent.parent


def torchrun(*args: str, runs: Path, **popen: object) -> subprocess.Popen:
    command = [sys.executable, "-m", "torch.distributed.run", "--standalone", "--nproc_per_node", "2",
               "-m", "harness", "run", *args, "--runs-dir", str(runs)]  # fmt: skip
    env = {**os.environ, "PYTHONPATH": str(ROOT), "WANDB_MODE": "offline", "OMP_NUM_THREADS": "1"}
    return subprocess.Popen(command, cwd=ROOT, env=env, text=True, **popen)  # type: ignore[call-overload]


def records(run_dir: Path) -> list[dict]:
    return [json.loads(line) for line in (run_dir / "runlog.jsonl").read_text(encoding="utf-8").splitlines()]


@pytest.mark.parametrize(
    ("n", "world", "shares"),
    [
        (8, 2, [[0, 2, 4, 6], [1, 3, 5, 7]]),
        (3, 2, [[0, 2], [1, -1]]),  # the short rank pads, so both make two generation calls
        (1, 3, [[0], [-1], [-1]]),
    ],
)
def test_scenarios_split_evenly_across_ranks_with_pads(monkeypatch, n, world, shares):
    monkeypatch.setenv("WORLD_SIZE", str(world))
    for rank, share in enumerate(shares):
        monkeypatch.setenv("RANK", str(rank))
        assert distributed.shard(n) == share


@pytest.mark.slow
def test_two_processes_write_one_run_with_every_round_once(write_experiment, tmp_path):
    experiment = write_experiment(max_steps=4, eval_every=2)
    done = torchrun(str(experiment), runs=tmp_path / "runs", stdout=subprocess.PIPE, stderr=subprocess.STDOUT)
    output, _ = done.communicate(timeout=600)
    assert done.returncode == 0, output[-3000:]
    (run_dir,) = (tmp_path / "runs").iterdir()
    assert len(list((run_dir / "wandb").glob("offline-run-*"))) == 1
    log = records(run_dir)
    assert (log[0]["world_size"], log[0]["backend"]) == (2, "gloo")
    assert [r["step"] for r in log if r["type"] == "eval"] == [0, 2, 4]
    seen = Counter((r["step"], r["scenario"]) for r in log if r["type"] == "conversation")
    assert seen == {(step, s): 1 for step in (0, 2, 4) for s in ("monthly-kaggle", "shake-up")}
    assert output.count("harness: run completed") == 1

    # The split changes nothing a round says: at step 0 (the same weights) the transcripts equal one process's.
    single = subprocess.run([sys.executable, "-m", "harness", "run", str(experiment), "--max-steps", "1",
                             "--eval-every", "1", "--runs-dir", str(tmp_path / "single")], cwd=ROOT,
                            env={**os.environ, "WANDB_MODE": "offline"}, capture_output=True, text=True)  # fmt: skip
    assert single.returncode == 0, single.stderr[-2000:]
    (one,) = (tmp_path / "single").iterdir()
    step0 = {c["scenario"]: c["transcript"] for c in load_run(one).conversations.to_dict("records") if c["step"] == 0}
    assert {c["scenario"]: c["transcript"] for c in log if c["type"] == "conversation" and c["step"] == 0} == step0


@pytest.mark.slow
@pytest.mark.faults
def test_a_killed_rank_fails_the_run_within_a_minute_and_resume_completes_it(write_experiment, tmp_path):
    experiment = write_experiment(max_steps=40, eval_every=10)
    launcher = torchrun(str(experiment), runs=tmp_path / "runs", stdout=subprocess.PIPE, stderr=subprocess.STDOUT)
    deadline = time.monotonic() + 300
    while time.monotonic() < deadline:  # kill rank 1 once training is under way (the step-0 round is recorded)
        logs = list((tmp_path / "runs").glob("*/runlog.jsonl"))
        if logs and '"type": "eval"' in logs[0].read_text(encoding="utf-8"):
            break
        time.sleep(0.5)
    rank1 = [p for p in Path("/proc").glob("[0-9]*") if b"\0RANK=1\0" in _environ(p) and str(experiment).encode()
             in (p / "cmdline").read_bytes()]  # fmt: skip
    assert len(rank1) == 1
    os.kill(int(rank1[0].name), signal.SIGKILL)
    killed = time.monotonic()
    output, _ = launcher.communicate(timeout=120)
    assert time.monotonic() - killed < 60
    assert launcher.returncode != 0
    assert "harness: run failed: rank 0 lost contact with another rank" in output
    (run_dir,) = (tmp_path / "runs").iterdir()
    end = records(run_dir)[-1]
    assert (end["type"], end["status"]) == ("end", "failed")

    resumed = torchrun("--resume", str(run_dir), runs=tmp_path / "runs", stdout=subprocess.PIPE,
                       stderr=subprocess.STDOUT)  # fmt: skip
    output, _ = resumed.communicate(timeout=600)
    assert resumed.returncode == 0, output[-3000:]
    run = load_run(run_dir)
    assert run.status == "completed"
    assert run.evals.step.tolist() == [0, 10, 20, 30, 40]
    assert run.conversations.groupby("step").size().to_dict() == {step: 2 for step in (0, 10, 20, 30, 40)}


def _environ(proc: Path) -> bytes:
    try:
        return b"\0" + (proc / "environ").read_bytes()
    except OSError:
        return b""
