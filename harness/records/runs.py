"""Finding runs (`python -m harness runs`), resolving a RUN given as id or path, and `load_run` for notebooks."""

from __future__ import annotations

import sys
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import pandas as pd

from harness.errors import UserError
from harness.records.runlog import LOG_NAME, Run, read_run

RUNS_DIR = Path("runs")
_DROP = ["v", "type"]


def resolve(run: str | Path, runs_dir: str | Path = RUNS_DIR) -> Path:
    """The directory of RUN, given as a run directory path or as a run id under `runs_dir`."""
    for candidate in (Path(run), Path(runs_dir) / str(run)):
        if (candidate / LOG_NAME).is_file():
            return candidate
    raise UserError(
        f"{run}: neither a run directory (with {LOG_NAME}) nor a run id in {runs_dir}/; "
        "`python -m harness runs` lists the runs"
    )


def open_run(run: str | Path, runs_dir: str | Path = RUNS_DIR) -> Run:
    """Read RUN's log; an unreadable log is the user's to fix, so it is one line, not a traceback."""
    path = resolve(run, runs_dir)
    try:
        return read_run(path)
    except (ValueError, KeyError) as e:
        raise UserError(f"{path / LOG_NAME}: not a readable run log ({e})") from None


def find_runs(runs_dir: str | Path = RUNS_DIR) -> list[Run]:
    """Every readable run under `runs_dir`, oldest first; unreadable logs are named on stderr and skipped."""
    runs = []
    for log in sorted(Path(runs_dir).glob(f"*/{LOG_NAME}")):
        try:
            runs.append(read_run(log.parent))
        except (ValueError, KeyError) as e:
            print(f"harness: skipping {log}: {e}", file=sys.stderr)
    return sorted(runs, key=lambda r: r.header.get("time", 0))


def identity(header: dict[str, Any]) -> dict[str, Any]:
    """What a run is, read from its header: experiment, profile and model (`runs` and `compare` show the same)."""
    experiment = header.get("experiment", {})
    return {
        "experiment": experiment.get("name"),
        "profile": header.get("profile"),
        "model": experiment.get("model", {}).get("name_or_path"),
    }


def latest_checkpoint(run_dir: Path) -> Path | None:
    """The newest complete Trainer checkpoint (one whose trainer_state.json was written)."""
    done = [p for p in (run_dir / "checkpoints").glob("checkpoint-*") if (p / "trainer_state.json").exists()]
    return max(done, key=lambda p: int(p.name.split("-")[1]), default=None)


def summary(run: Run) -> dict[str, Any]:
    """One row of `python -m harness runs`: what a run is, how far it got, why it failed, where a resume starts."""
    experiment = run.header.get("experiment", {})
    checkpoint = latest_checkpoint(run.path)
    resume_step = int(checkpoint.name.split("-")[1]) if checkpoint else 0
    trained = [m["step"] for m in run.of("metrics") if "loss" in m]
    evals = run.of("eval")
    end = run.of("end")[-1] if run.of("end") else {}
    return {
        "id": run.id,
        "path": str(run.path),
        **identity(run.header),
        "steps": max([*trained, *(e["step"] for e in evals), resume_step], default=0),
        "max_steps": experiment.get("training", {}).get("max_steps"),
        "status": run.status,
        "reason": end.get("reason"),
        "resume_step": None if run.status == "completed" else resume_step,
        "eval_step": evals[-1]["step"] if evals else None,
        "means": evals[-1]["means"] if evals else {},
        "best_step": end.get("best_step"),
        "best_adapter": end.get("best_adapter"),
        "alerts": len(run.of("alert")),
    }


def format_table(rows: list[dict[str, Any]]) -> str:
    """Rows as aligned plain-text columns; under an unfinished run, why it failed or where a resume starts."""
    header = ["id", "experiment", "profile", "model", "steps", "status", "best", "alerts", "last rubric means"]
    lines = [header]
    for r in rows:
        means = " ".join(f"{k}={v:.3f}" for k, v in r["means"].items() if v is not None)
        at = f"@{r['eval_step']} " if r["eval_step"] is not None else ""
        steps = f"{r['steps']}/{r['max_steps']}"
        best = "-" if r.get("best_step") is None else f"@{r['best_step']}"
        lines.append([r["id"], str(r["experiment"]), str(r["profile"]), str(r["model"]), steps, r["status"], best,
                      str(r.get("alerts", 0)), at + means])  # fmt: skip
    widths = [max(len(line[i]) for line in lines) for i in range(len(header) - 1)]
    out = []
    for line, row in zip(lines, [None, *rows], strict=True):
        out.append("  ".join([*(c.ljust(w) for c, w in zip(line, widths, strict=False)), line[-1]]).rstrip())
        if row and row["reason"]:
            out.append(f"    {row['status']}: {row['reason']}")
        elif row and row["resume_step"] is not None and row["status"] != "failed":
            out.append(f"    {row['status']}: --resume {row['id']} continues from step {row['resume_step']}")
    return "\n".join(out)


@dataclass
class RunFrames:
    """A run's log as pandas DataFrames: `metrics`, `conversations` (one column per rubric) and `traces`."""

    path: Path
    header: dict[str, Any]
    status: str
    rubrics: list[str]
    metrics: pd.DataFrame
    conversations: pd.DataFrame
    traces: pd.DataFrame
    evals: pd.DataFrame
    alerts: pd.DataFrame
    appearances: pd.DataFrame
    best_step: int | None = None
    best_adapter: str | None = None

    @property
    def id(self) -> str:
        return str(self.header["run_id"])


def frames(run: Run) -> RunFrames:
    """Build the DataFrames of a run already read."""
    rubrics = list(run.header.get("experiment", {}).get("rubrics", {}))
    end = run.of("end")[-1] if run.of("end") else {}
    rows = []
    for c in run.conversations():
        row = {k: c.get(k) for k in ("step", "scenario", "topic", "speakers", "turns", "transcript")}
        row.update({r: (c.get("scores") or {}).get(r) for r in rubrics})
        row.update({f"{r}_evidence": (c.get("evidence") or {}).get(r) for r in rubrics})
        row["error"] = c.get("error")
        rows.append(row)
    columns = ["step", "scenario", "topic", "speakers", "turns", "transcript", *rubrics]
    columns += [*(f"{r}_evidence" for r in rubrics), "error"]
    conversations = pd.DataFrame(rows, columns=columns)
    conversations[rubrics] = conversations[rubrics].astype(float)
    evals = pd.DataFrame(
        [{"step": e["step"], "seconds": e.get("seconds"), **e.get("means", {})} for e in run.of("eval")],
        columns=["step", "seconds", *rubrics],
    )
    return RunFrames(
        path=run.path,
        header=run.header,
        status=run.status,
        rubrics=rubrics,
        metrics=pd.DataFrame(run.of("metrics")).drop(columns=_DROP, errors="ignore"),
        conversations=conversations,
        traces=pd.DataFrame(run.of("trace")).drop(columns=_DROP, errors="ignore"),
        evals=evals,
        alerts=pd.DataFrame(run.of("alert")).drop(columns=[*_DROP, "time"], errors="ignore"),
        appearances=pd.DataFrame(run.of("appearance")).drop(columns=[*_DROP, "time"], errors="ignore"),
        best_step=end.get("best_step"),
        best_adapter=end.get("best_adapter"),
    )


def load_run(run: str | Path, runs_dir: str | Path = RUNS_DIR) -> RunFrames:
    """A run (its id under `runs_dir`, or its directory) as DataFrames, for notebooks.

    `.metrics`: one row per training log (step, loss, learning_rate, grad_norm, epoch, ...).
    `.conversations`: one row per scored conversation of a completed round: step, scenario, topic, speakers, turns,
    transcript, one column per rubric, `<rubric>_evidence` and error. `.traces`: one row per chain step.
    `.evals`: one row per completed round with each rubric's mean. `.alerts`: one row per watch alert (step, rubric,
    rule, value, message, stop, ...). `.appearances`: per scenario, the first step whose debate held tweet artefacts
    (step, scenario, kinds, examples). `.best_step` and `.best_adapter`: adapter-best/ (None before the run ends).
    `.header` and `.status` as in the run log.
    """
    return frames(open_run(run, runs_dir))
