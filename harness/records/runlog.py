"""The run log: a local, versioned, append-only JSON-lines record of a run, and the source of truth.

Each line is one record `{"v": 1, "type": ..., "time": ..., ...}`:
- `header`   once, first: run id, experiment, profile, config, library and rubric versions.
- `cleaning` per-rule statistics of the data cleaning.
- `model`    the LoRA target modules (the experiment's or peft's default) and parameter counts.
- `metrics`  training logs (loss, learning rate, ...) at `step`.
- `conversation` one scored conversation of an evaluation round at `step`.
- `trace`    one chain step (input, output, latency) of an evaluation round at `step`.
- `eval`     closes a round at `step`: its duration and rubric means; rounds without it are incomplete.
- `appearance` the first tweet artefacts in a scenario's debate at `step`: `kinds` (counts) and `examples`.
- `alert`    a watch fired at `step`: `rubric`, `rule`, `value`, `message`, `stop` and the rule's own figures.
- `end`      closes a session: `status` (completed, failed, interrupted), `reason` (why it failed), adapter and
             checkpoint paths, `best_step`, `best_adapter` (adapter-best/), `best_metric`, `best_value`, and
             `stopped_by` when a watch stopped it.
- `resume`   a later session continues from the checkpoint at `from_step`: records with a larger `step`
             written before it (and earlier `end` records) are superseded, so each scheduled round counts once.
A run whose last session has no `end` record did not finish (it crashed or is still running).
"""

from __future__ import annotations

import json
import os
import shutil
import time
from collections.abc import Iterator
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from harness.records._lock import RunDirLock
from harness.records._secrets import redact, redact_value

__all__ = [
    "LOG_NAME",
    "VERSION",
    "Run",
    "RunLog",
    "cut_torn_tail",
    "iter_records",
    "read_run",
    "redact",
    "redact_value",
]
VERSION = 1
LOG_NAME = "runlog.jsonl"


class RunLog:
    """Appends records and makes each one durable before returning, so a crash loses at most a round in progress.

    It holds the run directory's lock while open: a second process writing the same run is refused (one line, exit 2).
    A torn last line left by a crash is cut first (the original log is kept beside it); `recovered` says so.
    """

    def __init__(self, run_dir: Path) -> None:
        self.path = run_dir / LOG_NAME
        self._lock = RunDirLock(run_dir)
        try:
            self.recovered = cut_torn_tail(self.path)
            self._file = self.path.open("a", encoding="utf-8")
        except BaseException:
            self._lock.release()
            raise

    def write(self, type_: str, **fields: Any) -> None:
        record = redact_value({"v": VERSION, "type": type_, "time": round(time.time(), 3), **fields})
        line = json.dumps(record, ensure_ascii=False, allow_nan=True)
        try:
            line.encode("utf-8")
        except UnicodeEncodeError:  # lone surrogates from a broken decode: \u-escapes keep them losslessly
            line = json.dumps(record, ensure_ascii=True, allow_nan=True)
        self._file.write(line + "\n")
        self._file.flush()
        os.fsync(self._file.fileno())

    def close(self) -> None:
        try:
            self._file.close()
        finally:
            self._lock.release()


# What readers rely on in each record type; a record without it is damage, named with its line.
_REQUIRED = {"header": ("run_id",), "metrics": ("step",), "conversation": ("step",), "trace": ("step",),
             "eval": ("step",), "end": ("status",), "resume": ("from_step",)}  # fmt: skip


def _torn_tail(data: bytes) -> int:
    """Bytes after the last line break: what a process killed mid-write leaves (0 for a log that ends cleanly)."""
    return len(data) - (data.rfind(b"\n") + 1)


def cut_torn_tail(path: Path) -> str | None:
    """Cut a torn last line off the log before appending to it, keeping the original log as `runlog.jsonl.torn*`;
    returns the one line that says so, or None when the log ends cleanly."""
    if not path.exists():
        return None
    data = path.read_bytes()
    torn = _torn_tail(data)
    if not torn:
        return None
    copy = path.with_name(f"{path.name}.torn")
    n = 1
    while copy.exists():
        copy, n = path.with_name(f"{path.name}.torn{n}"), n + 1
    shutil.copy2(path, copy)
    with path.open("r+b") as f:
        f.truncate(len(data) - torn)
        f.flush()
        os.fsync(f.fileno())
    return (f"{path}: cut a torn last line ({torn} bytes, written when the process died); "
            f"the original log is kept as {copy.name}")  # fmt: skip


def iter_records(path: Path) -> Iterator[dict[str, Any]]:
    """Records in order; a torn last line (the process died mid-write: no line break after it) is ignored.

    Anything else that is not a record (a complete line that is not a JSON object, not UTF-8, of another version)
    is a ValueError naming the line.
    """
    data = path.read_bytes()
    lines = data[: len(data) - _torn_tail(data)].split(b"\n")
    for i, raw in enumerate(lines[:-1] if lines and lines[-1] == b"" else lines, 1):
        if not raw.strip():
            continue
        try:
            record = json.loads(raw.decode("utf-8"))
        except UnicodeDecodeError as e:
            raise ValueError(f"{path}:{i}: not UTF-8 ({e.reason} at byte {e.start} of the line)") from None
        except json.JSONDecodeError:
            raise ValueError(f"{path}:{i}: not a run-log record (not JSON)") from None
        if not isinstance(record, dict) or not isinstance(record.get("type"), str):
            raise ValueError(f"{path}:{i}: not a run-log record (a JSON object with a 'type')")
        if record.get("v") != VERSION:
            raise ValueError(f"{path}:{i}: run-log version {record.get('v')!r}, this harness reads {VERSION}")
        if missing := [k for k in _REQUIRED.get(record["type"], ()) if k not in record]:
            raise ValueError(f"{path}:{i}: a {record['type']!r} record without {', '.join(missing)}")
        if not isinstance(record.get("step", 0), int) or not isinstance(record.get("from_step", 0), int):
            raise ValueError(f"{path}:{i}: not a run-log record (its step is not an integer)")
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


_ROUND = ("conversation", "trace")
"""Record types written inside an evaluation round, before its closing `eval` record."""


def _effective(records: list[dict[str, Any]]) -> list[dict[str, Any]]:
    """Apply `resume` records: what the resumed session redid replaces what the crashed one wrote.

    At a resume, records after its checkpoint step go, and so do the records of any round left without its `eval`
    record (a crash inside it): the resumed session redoes that round whole.
    """
    kept: list[dict[str, Any]] = []
    for record in records:
        if record["type"] == "resume":
            limit = record["from_step"]
            kept = [r for r in kept if r["type"] != "end" and r.get("step", -1) <= limit]
            closed = {r["step"] for r in kept if r["type"] == "eval"}
            kept = [r for r in kept if r["type"] not in _ROUND or r["step"] in closed]
        kept.append(record)
    return kept


def read_run(run_dir: Path) -> Run:
    records = list(iter_records(run_dir / LOG_NAME))
    if not records or records[0]["type"] != "header":
        raise ValueError(f"{run_dir / LOG_NAME}: does not start with a header record")
    return Run(run_dir, records[0], _effective(records))
