"""The run log: a local, versioned, append-only JSON-lines record of a run, and the source of truth.

Each line is one record `{"v": 1, "type": ..., "time": ..., ...}`:
- `header`   once, first: run id, experiment, profile, config, library and rubric versions.
- `cleaning` per-rule statistics of the data cleaning.
- `model`    the LoRA target modules (the experiment's or peft's default) and parameter counts.
- `metrics`  training logs (loss, learning rate, ...) at `step`.
- `conversation` one scored conversation of an evaluation round at `step`.
- `trace`    one chain step (input, output, latency) of an evaluation round at `step`.
- `eval`     closes a round at `step`: its duration and rubric means; rounds without it are incomplete.
- `end`      closes a session: `status` (completed, failed, interrupted), adapter and checkpoint paths.
- `resume`   a later session continues from the checkpoint at `from_step`: records with a larger `step`
             written before it (and earlier `end` records) are superseded, so each scheduled round counts once.
A run whose last session has no `end` record did not finish (it crashed or is still running).
"""

from __future__ import annotations

import json
import os
import time
from collections.abc import Iterator
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

VERSION = 1
LOG_NAME = "runlog.jsonl"
SECRET_VARIABLES = ("WANDB_API_KEY", "HF_TOKEN", "HUGGING_FACE_HUB_TOKEN", "OPENAI_API_KEY", "LANGCHAIN_API_KEY")


def redact(text: str) -> str:
    """Replace the values of credential variables, wherever they appear, with `***`."""
    for name in SECRET_VARIABLES:
        secret = os.environ.get(name, "")
        if len(secret) >= 8:
            text = text.replace(secret, "***")
    return text


class RunLog:
    """Appends records and makes each one durable before returning, so a crash loses at most a round in progress."""

    def __init__(self, run_dir: Path) -> None:
        self.path = run_dir / LOG_NAME
        self._file = self.path.open("a", encoding="utf-8")

    def write(self, type_: str, **fields: Any) -> None:
        record = {"v": VERSION, "type": type_, "time": round(time.time(), 3), **fields}
        line = json.dumps(record, ensure_ascii=False, allow_nan=True)
        try:
            line.encode("utf-8")
        except UnicodeEncodeError:  # lone surrogates from a broken decode: \u-escapes keep them losslessly
            line = json.dumps(record, ensure_ascii=True, allow_nan=True)
        self._file.write(redact(line) + "\n")
        self._file.flush()
        os.fsync(self._file.fileno())

    def close(self) -> None:
        self._file.close()


def iter_records(path: Path) -> Iterator[dict[str, Any]]:
    """Records in order; a torn last line (the process died mid-write) is ignored."""
    with path.open(encoding="utf-8") as f:
        lines = f.read().split("\n")
    for i, line in enumerate(lines):
        if not line.strip():
            continue
        try:
            record = json.loads(line)
        except json.JSONDecodeError:
            if i >= len(lines) - 2:
                return
            raise ValueError(f"{path}:{i + 1}: not a run-log record") from None
        if record.get("v") != VERSION:
            raise ValueError(f"{path}:{i + 1}: run-log version {record.get('v')!r}, this harness reads {VERSION}")
        yield record


@dataclass
class Run:
    """A run as its log tells it."""

    path: Path
    header: dict[str, Any]
    records: list[dict[str, Any]] = field(repr=False)

    @property
    def id(self) -> str:
        return str(self.header["run_id"])

    @property
    def status(self) -> str:
        ends = self.of("end")
        return str(ends[-1]["status"]) if ends else "incomplete"

    def of(self, type_: str) -> list[dict[str, Any]]:
        return [r for r in self.records if r["type"] == type_]

    def eval_steps(self) -> list[int]:
        """Steps whose evaluation round completed."""
        return [r["step"] for r in self.of("eval")]

    def conversations(self) -> list[dict[str, Any]]:
        """Conversations of completed rounds only."""
        done = set(self.eval_steps())
        return [r for r in self.of("conversation") if r["step"] in done]


def _effective(records: list[dict[str, Any]]) -> list[dict[str, Any]]:
    """Apply `resume` records: what the resumed session redid replaces what the crashed one wrote."""
    kept: list[dict[str, Any]] = []
    for record in records:
        if record["type"] == "resume":
            limit = record["from_step"]
            kept = [r for r in kept if r["type"] != "end" and r.get("step", -1) <= limit]
        kept.append(record)
    return kept


def read_run(run_dir: Path) -> Run:
    records = list(iter_records(run_dir / LOG_NAME))
    if not records or records[0]["type"] != "header":
        raise ValueError(f"{run_dir / LOG_NAME}: does not start with a header record")
    return Run(run_dir, records[0], _effective(records))
