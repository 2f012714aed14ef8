"""The one module that talks to Weights & Biases; it only consumes records the run log already holds."""

from __future__ import annotations

import json
import os
import sys
from collections.abc import Mapping, Sequence
from pathlib import Path
from typing import Any

import wandb

from harness.records.runlog import redact, redact_value

TABLE_KEY = "conversations"
_warned: set[str] = set()


def _warn_once(what: str, exc: BaseException) -> None:
    """One line per process for W&B trouble: training goes on and the run log keeps everything."""
    if "W&B" not in _warned:
        print(redact(f"harness: W&B failed in {what} ({type(exc).__name__}: {exc}); training continues, the run log "
                     "has everything"), file=sys.stderr, flush=True)  # fmt: skip
    _warned.add("W&B")


STEP_KEY = "train/global_step"


def wandb_mode() -> str:
    """`WANDB_MODE` when set; otherwise online only where an API key is configured, else offline."""
    if os.environ.get("WANDB_MODE"):
        return os.environ["WANDB_MODE"]
    netrc = Path.home() / ".netrc"
    has_key = bool(os.environ.get("WANDB_API_KEY")) or (netrc.exists() and "api.wandb.ai" in netrc.read_text())
    return "online" if has_key else "offline"


class Tracker:
    """A W&B run fed from run-log records: rubric curves on the loss's x-axis and a cumulative conversation table."""

    def __init__(self, run_dir: Path, run_id: str, group: str, config: Mapping[str, Any], resume: bool = False) -> None:
        self.mode = wandb_mode()
        self._rows: list[list[Any]] = []
        self._columns: list[str] = []
        try:
            self.run: Any = wandb.init(
                project=os.environ.get("WANDB_PROJECT", "harness"),
                entity=os.environ.get("WANDB_ENTITY") or None,
                # A W&B sweep agent assigns the run's id; the harness' run id stays its name.
                id=os.environ["WANDB_RUN_ID"] if os.environ.get("WANDB_SWEEP_ID") else run_id,
                name=run_id,
                group=group,
                dir=str(run_dir),
                config=redact_value(dict(config)),
                mode=self.mode,  # type: ignore[arg-type]
                resume="allow" if resume else None,
                settings=wandb.Settings(x_disable_stats=True, console="off", silent=True),
            )
            self.run.define_metric(STEP_KEY)
            self.run.define_metric("*", step_metric=STEP_KEY, step_sync=True)
        except Exception as exc:
            print(redact(f"harness: W&B unavailable ({type(exc).__name__}: {exc}); continuing with the run log only"),
                  file=sys.stderr)  # fmt: skip
            self.run = None

    @property
    def active(self) -> bool:
        return self.run is not None

    @property
    def run_path(self) -> str | None:
        """Where the offline run's files are (for `wandb sync`), or None."""
        return str(Path(self.run.dir).parent) if self.run is not None else None

    def _log(self, data: dict[str, Any]) -> None:
        if self.run is None:
            return
        try:
            self.run.log(_redacted(data))
        except Exception as exc:  # W&B trouble must not stop training; the run log has everything
            _warn_once("log", exc)

    def preload(self, conversations: Sequence[Mapping[str, Any]], rubrics: Sequence[str]) -> None:
        """A resumed run's table starts with the rounds the run log already holds."""
        for step in sorted({c["step"] for c in conversations}):
            self._add_rows(step, [c for c in conversations if c["step"] == step], rubrics)

    def _add_rows(self, step: int, conversations: Sequence[Mapping[str, Any]], rubrics: Sequence[str]) -> None:
        if not self._columns:
            self._columns = ["step", "scenario", "speakers", "transcript"]
            self._columns += [*rubrics, *(f"{r}_evidence" for r in rubrics), "error"]
        for c in conversations:
            scores = c["scores"]
            self._rows.append(
                [step, c["scenario"], " / ".join(c["speakers"]), c["transcript"]]
                + [scores.get(r) for r in rubrics]
                + [json.dumps(c["evidence"].get(r), ensure_ascii=False) for r in rubrics]
                + [c.get("error") or ""]
            )

    def log_round(
        self, step: int, conversations: Sequence[Mapping[str, Any]], rubrics: Sequence[str], means: Mapping[str, float]
    ) -> None:
        """One evaluation round: `rubric/<name>` means, per-scenario curves, and the whole table so far."""
        self._add_rows(step, conversations, rubrics)
        data: dict[str, Any] = {STEP_KEY: step, **{f"rubric/{name}": v for name, v in means.items()}}
        for c in conversations:
            for r in rubrics:
                if c["scores"].get(r) is not None:
                    data[f"rubric/{r}/{c['scenario']}"] = c["scores"][r]
        data[TABLE_KEY] = wandb.Table(columns=self._columns, data=[list(row) for row in self._rows])
        self._log(data)

    def log_cleaning(self, stats: Sequence[Mapping[str, Any]]) -> None:
        """Per-rule cleaning counts with examples, as a table."""
        columns = ["rule", "docs_in", "docs_out", "removed", "changed", "chars_removed", "examples"]
        rows = [[s[c] if c != "examples" else json.dumps(s[c], ensure_ascii=False) for c in columns] for s in stats]
        self._log({"cleaning": wandb.Table(columns=columns, data=rows), STEP_KEY: 0})

    def finish(self, exit_code: int = 0) -> None:
        if self.run is not None:
            try:
                self.run.finish(exit_code=exit_code)
            except Exception as exc:
                print(redact(f"harness: W&B finish failed ({exc})"), file=sys.stderr)
            self.run = None


def _redacted(data: dict[str, Any]) -> dict[str, Any]:
    """What goes to W&B with every credential value replaced, keys, texts and tables included: every sink is fenced."""
    redacted = redact_value({k: v for k, v in data.items() if not isinstance(v, wandb.Table)})
    for key, table in data.items():
        if isinstance(table, wandb.Table):  # in place: the table keeps its column types and log mode
            table.data = redact_value([list(row) for row in table.data])
            redacted[redact_value(key)] = table
    return redacted


def run_sweep(group: str, axes: list[tuple[str, list[str]]], command: list[str]) -> str:
    """A W&B grid sweep over `axes` whose agent runs `command` (with `${args_no_hyphens}`: KEY=VALUE words) once per
    grid point, here, until the grid is done; the sweep's id."""
    project, entity = os.environ.get("WANDB_PROJECT", "harness"), os.environ.get("WANDB_ENTITY") or None
    config = {
        "name": group,
        "method": "grid",
        "command": command,
        "parameters": {key: {"values": values} for key, values in axes},
    }
    sweep_id = wandb.sweep(config, project=project, entity=entity)
    wandb.agent(sweep_id, project=project, entity=entity)
    return sweep_id


def guarded_trainer_callback() -> Any:
    """transformers' WandbCallback whose failures (no network, W&B down) warn once instead of stopping training."""
    from transformers.integrations import WandbCallback

    class GuardedWandbCallback(WandbCallback):
        def __getattribute__(self, name: str) -> Any:
            attribute = super().__getattribute__(name)
            if not name.startswith("on_") or not callable(attribute):
                return attribute

            def guarded(*args: Any, **kwargs: Any) -> Any:
                try:
                    return attribute(*args, **kwargs)
                except Exception as exc:
                    _warn_once(name, exc)
                    return None

            return guarded

    return GuardedWandbCallback()
