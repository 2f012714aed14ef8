"""The edges of a run session, apart from the straight line of `run.py`: a fresh run directory, the config built
before it exists, a resume with nothing left to train, and a run that measured nothing."""

from __future__ import annotations

import secrets
import time
from pathlib import Path
from typing import Any

from harness import distributed
from harness.errors import UserError
from harness.records.runlog import RunLog, read_run
from harness.spec.experiment import Experiment


def header_config(experiment: Experiment, experiment_file: Path) -> dict[str, Any]:
    """The experiment's config for the header; hashing the rubrics' code and data can fail on user-defined ones."""
    try:
        return experiment.to_config()
    except (OSError, TypeError) as exc:
        raise UserError(f"{experiment_file}: cannot version the rubrics (their source file and data must be "
                        f"readable): {type(exc).__name__}: {exc}") from None  # fmt: skip


def new_run_dir(runs_dir: Path, name: str, tries: int = 20) -> tuple[Path, RunLog]:
    """A new run directory under a fresh id (another on a clash with an existing one) and its open run log."""
    try:
        runs_dir.mkdir(parents=True, exist_ok=True)
        for _ in range(tries):
            run_dir = runs_dir / f"{name}-{time.strftime('%Y%m%d-%H%M%S')}-{secrets.token_hex(2)}"
            try:
                run_dir.mkdir()
            except FileExistsError:
                continue
            return run_dir, RunLog(run_dir)
    except OSError as exc:
        raise UserError(f"--runs-dir {runs_dir}: cannot write there ({exc.strerror})") from None
    raise UserError(f"--runs-dir {runs_dir}: {tries} new run ids in a row were taken (the last: {run_dir.name}); "
                    "another process is creating runs with this name at the same time, try again")  # fmt: skip


def checkpoint_step(checkpoint: Path | None) -> int:
    """The optimizer step a Trainer checkpoint was saved at (0 for none)."""
    return int(checkpoint.name.split("-")[1]) if checkpoint else 0


def finish_from(checkpoint: Path, model: Any, evaluator: Any, max_steps: int, stop: Any) -> None:
    """A checkpoint at max_steps has nothing left to train (the Trainer would train one step past it when the
    checkpoint falls mid-epoch): load its adapter and hold the final round if it is not recorded yet."""
    from peft import set_peft_model_state_dict
    from safetensors.torch import load_file

    set_peft_model_state_dict(model, load_file(checkpoint / "adapter_model.safetensors"))
    if max_steps not in evaluator.done:
        evaluator.round(max_steps, should_stop=(lambda: stop.requested) if distributed.world_size() == 1 else None)


def every_round_failed(run_dir: Path) -> str | None:
    """The first error when no evaluation round of the run produced a score (a run that measured nothing did not
    complete), else None."""
    rounds = read_run(run_dir).of("eval")
    if rounds and all(r.get("error") or not r.get("means") for r in rounds):
        return next((str(r["error"]) for r in rounds if r.get("error")), "no rubric scored any conversation")
    return None
