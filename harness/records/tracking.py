"""The one module that talks to Weights & Biases; it only consumes records the run log already holds."""

from __future__ import annotations

import json
import os
import shutil
import sys
from collections.abc import Mapping, Sequence
from pathlib import Path
from typing import Any

import wandb

from harness.records.runlog import Run, redact, redact_value
from harness.records.weave_link import WeaveLink, start_weave

TABLE_KEY = "conversations"
TRACES_KEY = "traces"
TRACE_COLUMNS = ["step", "scenario", "turn", "component", "input", "output", "start_s", "latency_s", "tokens_in",
                 "tokens_out", "error"]  # fmt: skip
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
    """A W&B run fed from run-log records: rubric curves on the loss's x-axis, and the conversations and chain traces
    as tables that grow by each round's rows (W&B's incremental tables: every row is stored once).

    Online, Weave (when installed) traces the LangChain calls and holds each round as an evaluation (`weave_link`).
    Offline, a resumed session writes a new offline run that `replay`s the run log up to the checkpoint and retires
    the crashed session's offline files, so `wandb sync` uploads each step and row once."""

    def __init__(self, run_dir: Path, run_id: str, group: str, config: Mapping[str, Any], resume: bool = False) -> None:
        self.mode = wandb_mode()
        self._tables: dict[str, Any] = {}
        self.weave: WeaveLink | None = None
        _own_wandb_service()
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
                resume="allow" if resume and self.mode != "offline" else None,
                settings=wandb.Settings(x_disable_stats=True, console="off", silent=True),
            )
            self.run.define_metric(STEP_KEY)
            self.run.define_metric("*", step_metric=STEP_KEY, step_sync=True)
            if self.mode == "offline":
                _retire_superseded_offline_runs(Path(self.run.dir).parent, self.run.id)
            self.weave = start_weave(self.mode, f"{self.run.entity}/{self.run.project}", run_id, group)
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

    def _table(self, key: str, columns: list[str], rows: Sequence[list[Any]]) -> Any:
        """The key's incremental table with `rows` added: logging it stores only the rows added since it was last
        logged (each in its own `media/table/<key>_<n>_*.table.json` and artifact entry)."""
        if key not in self._tables:
            self._tables[key] = wandb.Table(columns=columns, log_mode="INCREMENTAL")
        table = self._tables[key]
        for row in rows:
            table.add_data(*row)
        return table

    def log_round(
        self,
        step: int,
        conversations: Sequence[Mapping[str, Any]],
        rubrics: Sequence[str],
        means: Mapping[str, float],
        traces: Sequence[Mapping[str, Any]] = (),
    ) -> None:
        """One evaluation round: `rubric/<name>` means, per-scenario curves, the round's conversations and traces."""
        if self.run is None:
            return
        data: dict[str, Any] = {STEP_KEY: step, **{f"rubric/{name}": v for name, v in means.items()}}
        for c in conversations:
            for r in rubrics:
                if c["scores"].get(r) is not None:
                    data[f"rubric/{r}/{c['scenario']}"] = c["scores"][r]
        try:
            columns = conversation_columns(rubrics)
            data[TABLE_KEY] = self._table(
                TABLE_KEY, columns, [conversation_row(step, c, rubrics) for c in conversations]
            )
            if traces:
                data[TRACES_KEY] = self._table(TRACES_KEY, TRACE_COLUMNS, [trace_row(step, t) for t in traces])
        except Exception as exc:  # a row W&B cannot type: the curves still go, the run log has the rows
            _warn_once("a table", exc)
        if self.weave is not None:  # first: Weave links its calls to the W&B step this round's row is about to take
            self.weave.log_round(step, conversations, rubrics, means)
        self._log(data)

    def replay(self, run: Run, rubrics: Sequence[str]) -> None:
        """Rebuild an offline run's W&B history from the run log (a resumed session, up to its checkpoint): the
        cleaning table, every training log and every completed round, in the order they were first logged."""
        if self.run is None or self.mode != "offline":
            return
        from transformers.integrations.integration_utils import rewrite_logs

        if cleaning := run.of("cleaning"):
            self.log_cleaning(cleaning[-1]["rules"])
        rounds = {e["step"]: e for e in run.of("eval")}
        conversations, traces = run.conversations(), [t for t in run.of("trace") if t["step"] in rounds]
        metrics = run.of("metrics")
        for step in sorted(rounds.keys() | {m["step"] for m in metrics}):
            if step in rounds:  # a round at step N runs before step N's training log is written
                self.log_round(step, [c for c in conversations if c["step"] == step], rubrics, rounds[step]["means"],
                               [t for t in traces if t["step"] == step])  # fmt: skip
            for m in (m for m in metrics if m["step"] == step):
                logs = {k: v for k, v in m.items() if k not in _RECORD_FIELDS}
                scalars = {k: v for k, v in logs.items() if k in _SUMMARY_ONLY}
                if scalars:
                    self.run.summary.update(scalars)
                self._log({**rewrite_logs({k: v for k, v in logs.items() if k not in scalars}), STEP_KEY: step})

    def log_cleaning(self, stats: Sequence[Mapping[str, Any]]) -> None:
        """Per-rule cleaning counts with examples, as a table."""
        columns = ["rule", "docs_in", "docs_out", "removed", "changed", "chars_removed", "examples"]
        rows = [[s[c] if c != "examples" else json.dumps(s[c], ensure_ascii=False) for c in columns] for s in stats]
        self._log({"cleaning": wandb.Table(columns=columns, data=rows), STEP_KEY: 0})

    def alert(self, title: str, text: str) -> None:
        """A W&B alert (e-mail/Slack per the user's W&B settings) when online; offline runs have the run log's."""
        if self.run is None or self.mode != "online":
            return
        try:
            self.run.alert(title=title, text=text, level=wandb.AlertLevel.WARN)
        except Exception as exc:
            _warn_once("alert", exc)

    def finish(self, exit_code: int = 0) -> None:
        if self.weave is not None:
            self.weave.finish()
        if self.run is not None:
            current, run_id = Path(self.run.dir).parent, self.run.id
            try:
                self.run.finish(exit_code=exit_code)
            except Exception as exc:
                print(redact(f"harness: W&B finish failed ({exc})"), file=sys.stderr)
            if self.mode == "offline":  # again: a killed session's W&B service can still be writing when we start
                _retire_superseded_offline_runs(current, run_id)
            self.run = None


# What transformers' WandbCallback sends as run summary instead of history (kept identical on replay).
_SUMMARY_ONLY = {"train_runtime", "train_samples_per_second", "train_steps_per_second", "train_loss", "total_flos"}
_RECORD_FIELDS = {"v", "type", "time", "step"}


def conversation_columns(rubrics: Sequence[str]) -> list[str]:
    return ["step", "scenario", "speakers", "transcript", *rubrics, *(f"{r}_evidence" for r in rubrics), "error"]


def conversation_row(step: int, c: Mapping[str, Any], rubrics: Sequence[str]) -> list[Any]:
    scores = c["scores"]
    return (
        [step, c["scenario"], " / ".join(c["speakers"]), c["transcript"]]
        + [scores.get(r) for r in rubrics]
        + [json.dumps(c["evidence"].get(r), ensure_ascii=False) for r in rubrics]
        + [c.get("error") or ""]
    )


def trace_row(step: int, t: Mapping[str, Any]) -> list[Any]:
    """One chain component call; structured inputs and outputs (a turn's prompt variables) are shown as JSON."""
    given, output = t.get("input"), t.get("output")
    return [
        step, t.get("scenario"), t.get("turn"), t.get("component"), _text(given), _text(output), t.get("start_s"),
        t.get("latency_s"), t.get("tokens_in"), t.get("tokens_out"), t.get("error") or "",
    ]  # fmt: skip


def _text(value: Any) -> str | None:
    return value if value is None or isinstance(value, str) else json.dumps(value, ensure_ascii=False)


def _own_wandb_service() -> None:
    """Start this run's own W&B service rather than one inherited from a parent process (a notebook, a test runner,
    any Python that used W&B and then launched `harness run`): wandb passes its service to child processes in
    `WANDB_SERVICE`. The inherited service outlives a kill -9 of the run with its stream still open under the run's
    id, and the resumed session's records then went to that dead stream: its .wandb file lacked every step after
    the first session's last (measured: steps 9-12 of 12 missing, every time the parent had a service)."""
    token = os.environ.get("WANDB_SERVICE", "")
    owner = token.split("-")[1] if token.count("-") >= 2 else ""  # "<version>-<pid of the service's owner>-..."
    if token and owner != str(os.getpid()):
        del os.environ["WANDB_SERVICE"]


def _retire_superseded_offline_runs(current: Path, run_id: str) -> None:
    """Remove earlier offline runs of this run id in the same W&B directory: a resumed session's offline run holds
    everything they held up to the checkpoint (replayed from the run log), and syncing both would upload the steps
    after the checkpoint twice. Done when the session starts and again when it finishes, because the W&B service of
    a killed session can lag behind it and write its closing files after the first removal."""
    for other in current.parent.glob(f"offline-run-*-{run_id}"):
        if other != current and other.is_dir():
            shutil.rmtree(other, ignore_errors=True)


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
