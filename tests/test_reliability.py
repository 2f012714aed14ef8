"""Fault injection: signals, kill -9 and resume, NaN loss, failures inside an evaluation round."""

from __future__ import annotations

import json
import os
import signal
import subprocess
import sys
import time
from pathlib import Path

import pytest

from harness.cli import main
from harness.records.runlog import LOG_NAME, read_run
from harness.records.runs import summary

pytestmark = [pytest.mark.slow, pytest.mark.faults]
ROOT = Path(__file__).resolve().parents[1]


def _start(experiment: Path, runs: Path, *extra: str) -> subprocess.Popen:
    env = {**os.environ, "WANDB_MODE": "offline", "PYTHONUNBUFFERED": "1"}
    argv = [sys.executable, "-m", "harness", "run", *([str(experiment)] if experiment else []), "--runs-dir", str(runs)]
    return subprocess.Popen([*argv, *extra], cwd=ROOT, env=env, stdout=subprocess.PIPE, stderr=subprocess.STDOUT)


def _wait_for_eval(runs: Path, step: int, process: subprocess.Popen, timeout: float = 240) -> Path:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        for log in runs.glob(f"*/{LOG_NAME}"):
            if any(json.loads(line).get("type") == "eval" and json.loads(line)["step"] == step
                   for line in log.read_text(encoding="utf-8").splitlines() if line.strip()):  # fmt: skip
                return log.parent
        assert process.poll() is None, process.stdout.read().decode()
        time.sleep(0.2)
    raise AssertionError(f"no eval at step {step} within {timeout}s")


@pytest.mark.parametrize(
    "sig",
    [signal.SIGKILL, signal.SIGTERM],
    ids=["kill-9", "sigterm"],
)
def test_a_killed_run_resumes_with_every_scheduled_eval_exactly_once(write_experiment, tmp_path, sig) -> None:
    if sig == signal.SIGKILL:  # launched as from a notebook that used W&B: the runs inherit its W&B service, which
        import wandb  # outlives the kill with the run's stream open (the resumed history once went there and was lost)

        wandb.setup()
        assert os.environ.get("WANDB_SERVICE")
    experiment = write_experiment(max_steps=12, eval_every=4)
    runs = tmp_path / "runs"
    process = _start(experiment, runs)
    run_dir = _wait_for_eval(runs, 8, process)
    process.send_signal(sig)
    out = process.communicate(timeout=120)[0].decode()
    if sig == signal.SIGTERM:
        assert process.returncode == 130, out
        assert read_run(run_dir).status == "interrupted"
        assert "--resume" in out
        checkpoint = max(int(p.name.split("-")[1]) for p in (run_dir / "checkpoints").glob("checkpoint-*"))
        assert summary(read_run(run_dir))["resume_step"] == checkpoint > 8, "where --resume starts, not a log step"
    else:
        assert read_run(run_dir).status == "incomplete"

    # the natural way to resume: the same command with --resume added (after kill -9); or --resume alone
    resumed = _start(experiment if sig == signal.SIGKILL else None, runs, "--resume", run_dir.name)
    out = resumed.communicate(timeout=300)[0].decode()
    assert resumed.returncode == 0, out
    run = read_run(run_dir)
    assert run.status == "completed"
    assert run.eval_steps() == [0, 4, 8, 12]
    conversations = run.conversations()
    assert sorted((c["step"], c["scenario"]) for c in conversations) == sorted(
        (s, name) for s in (0, 4, 8, 12) for name in ("monthly-kaggle", "shake-up")
    )
    assert (run_dir / "adapter" / "adapter_model.safetensors").exists()
    _assert_wandb_holds_each_step_and_row_once(run_dir, run)


def _assert_wandb_holds_each_step_and_row_once(run_dir: Path, run) -> None:
    """What `wandb sync runs/<run>/wandb/offline-run-*` would upload: one offline run under the run's id whose history
    has each training log and each round once, and whose tables hold each conversation and trace once."""
    import wandb_file

    # `wandb sync` uploads an offline run from its .wandb file: a folder of logs alone (a killed session's W&B
    # service can still write its closing logs after the folder was retired) uploads nothing.
    offline = [d for d in (run_dir / "wandb").glob("offline-run-*") if any(d.glob("*.wandb"))]
    assert len(offline) == 1, [sorted(str(f.relative_to(d)) for f in d.rglob("*")) for d in offline]
    (wandb_run,) = offline
    assert wandb_run.name.endswith(run.id)
    history = wandb_file.history(next(wandb_run.glob("*.wandb")))
    steps_with = lambda key: [r["train/global_step"] for r in history if key in r]  # noqa: E731
    assert steps_with("train/loss") == list(range(1, 13)), "each train/global_step once"
    assert steps_with("rubric/fluency") == steps_with("traces/_type") == [0, 4, 8, 12]
    assert steps_with("cleaning/_type") == [0]
    tables = run_dir / "wandb" / wandb_run.name / "files" / "media" / "table"
    traces = [t for t in run.of("trace") if t["step"] in run.eval_steps()]
    for key, records in (("conversations", run.conversations()), ("traces", traces)):
        rows = [row for f in tables.glob(f"{key}_*.table.json") for row in json.loads(f.read_text())["data"]]
        assert len(rows) == len(records), f"each {key} row once"
    conversations = [
        row for f in tables.glob("conversations_*.table.json") for row in json.loads(f.read_text())["data"]
    ]
    assert sorted((r[0], r[1]) for r in conversations) == sorted(
        (c["step"], c["scenario"]) for c in run.conversations()
    )


def test_a_nan_loss_stops_the_run_marked_failed(write_experiment, tmp_path, monkeypatch, capsys) -> None:
    import torch
    from transformers import Trainer

    original = Trainer.compute_loss

    def poisoned(self, model, inputs, *args, **kwargs):
        loss = original(self, model, inputs, *args, **kwargs)
        return loss * float("nan") if self.state.global_step >= 2 else loss

    monkeypatch.setattr(Trainer, "compute_loss", poisoned)
    runs = tmp_path / "runs"
    assert main(["run", str(write_experiment(max_steps=6, eval_every=3)), "--runs-dir", str(runs)]) == 1
    err = capsys.readouterr().err
    assert "run failed: the training loss is nan at step 3" in err
    (run_dir,) = runs.iterdir()
    assert read_run(run_dir).status == "failed"
    assert torch.isnan(torch.tensor(read_run(run_dir).of("metrics")[-1]["loss"]))
    assert read_run(run_dir).of("end")[-1]["reason"].startswith("the training loss is nan at step 3")
    assert main(["runs", str(runs)]) == 0
    assert "    failed: the training loss is nan at step 3" in capsys.readouterr().out, "`runs` says why"


def test_a_generation_failure_is_recorded_and_training_continues(write_experiment, tmp_path, monkeypatch) -> None:
    import harness.evaluation.round as evaluation

    real = evaluation.hold_debates
    calls = []

    def flaky(chain, scenarios, *args):
        calls.append(1)
        if len(calls) == 2:
            raise RuntimeError("CUDA error: device-side assert triggered")
        return real(chain, scenarios, *args)

    monkeypatch.setattr(evaluation, "hold_debates", flaky)
    runs = tmp_path / "runs"
    assert main(["run", str(write_experiment(max_steps=4, eval_every=2)), "--runs-dir", str(runs)]) == 0
    run = read_run(next(runs.iterdir()))
    assert run.status == "completed" and run.eval_steps() == [0, 2, 4]
    failed = [e for e in run.of("eval") if e.get("error")]
    assert [e["step"] for e in failed] == [2] and "device-side assert" in failed[0]["error"]
    assert all(c["error"] for c in run.conversations() if c["step"] == 2)


def test_strict_makes_an_evaluation_failure_fatal(write_experiment, tmp_path, monkeypatch, capsys) -> None:
    import harness.evaluation.round as evaluation

    def broken(chain, scenarios, *args):
        raise RuntimeError("out of memory")

    monkeypatch.setattr(evaluation, "hold_debates", broken)
    runs = tmp_path / "runs"
    assert main(["run", str(write_experiment()), "--runs-dir", str(runs), "--strict"]) == 1
    assert "evaluation at step 0 failed: RuntimeError: out of memory" in capsys.readouterr().err
    assert read_run(next(runs.iterdir())).status == "failed"


def test_a_failing_rubric_is_recorded_per_conversation(write_experiment, tmp_path, monkeypatch) -> None:
    from rubrics import REGISTRY, Rubric

    def explodes(conversation):
        raise ValueError("辞書が壊れています")

    monkeypatch.setitem(REGISTRY, "explodes", Rubric("explodes", explodes, higher_is_better=True))
    source = write_experiment().read_text(encoding="utf-8").replace('"fluency")', '"fluency", "explodes")')
    runs = tmp_path / "runs"
    assert main(["run", str(write_experiment(source, name="boom")), "--runs-dir", str(runs)]) == 0
    conversations = read_run(next(runs.iterdir())).conversations()
    assert all(c["scores"]["explodes"] is None and "辞書が壊れています" in c["error"] for c in conversations)
    assert all(c["scores"]["fluency"] is not None for c in conversations)


def test_wandb_failures_never_stop_training(write_experiment, tmp_path, monkeypatch, capsys) -> None:
    from wandb.sdk.wandb_run import Run

    import harness.records.tracking as tracking

    def offline_network(self, *args, **kwargs):
        raise ConnectionError("api.wandb.ai unreachable")

    monkeypatch.setattr(Run, "log", offline_network)
    monkeypatch.setattr(tracking, "_warned", set())
    runs = tmp_path / "runs"
    assert main(["run", str(write_experiment(max_steps=4, eval_every=2)), "--runs-dir", str(runs)]) == 0
    err = capsys.readouterr().err
    assert err.count("W&B failed") == 1 and "ConnectionError" in err, "warned once"
    run = read_run(next(runs.iterdir()))
    assert run.status == "completed" and run.eval_steps() == [0, 2, 4]
    assert [m["step"] for m in run.of("metrics") if "loss" in m] == [1, 2, 3, 4]


def test_a_failing_wandb_init_leaves_a_run_log_only_run(write_experiment, tmp_path, monkeypatch, capsys) -> None:
    import harness.records.tracking as tracking

    def refuse(**kwargs):
        raise PermissionError("invalid API key")

    monkeypatch.setattr(tracking.wandb, "init", refuse)
    runs = tmp_path / "runs"
    assert main(["run", str(write_experiment(max_steps=2, eval_every=2)), "--runs-dir", str(runs)]) == 0
    assert "W&B unavailable (PermissionError" in capsys.readouterr().err
    run = read_run(next(runs.iterdir()))
    assert run.status == "completed" and run.eval_steps() == [0, 2]


def test_two_runs_with_the_same_seed_score_identically_on_cpu(write_experiment, tmp_path) -> None:
    experiment = write_experiment(max_steps=4, eval_every=2)
    scores = []
    for name in ("a", "b"):
        assert main(["run", str(experiment), "--runs-dir", str(tmp_path / name)]) == 0
        run = read_run(next((tmp_path / name).iterdir()))
        scores.append([(c["step"], c["scenario"], c["transcript"], c["scores"]) for c in run.conversations()])
    assert scores[0] == scores[1]
