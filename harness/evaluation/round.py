"""An evaluation round: the live model holds every scenario's debate, each conversation is scored and recorded."""

from __future__ import annotations

import dataclasses
import statistics
import sys
import time
from collections.abc import Callable, Sequence
from typing import Any

from harness import distributed
from harness.evaluation.debate import RoundStopped, build_chain, generation_threads, hold_debates
from harness.evaluation.quality import appearance
from harness.records.runlog import RunLog, redact
from harness.records.tracking import Tracker
from harness.spec.experiment import Experiment
from rubrics import Rubric
from rubrics.records import Conversation


def score(conversations: Sequence[Conversation], rubrics: Sequence[Rubric]) -> list[tuple[dict[str, Any], ...]]:
    """Each conversation's rubric values, evidence and error text, every rubric scoring the round as one batch.

    A rubric that fails on the batch is retried one conversation at a time, so the failure lands on the
    conversations that cause it (value None, error recorded) instead of stopping the run.
    """
    values: list[dict[str, float | None]] = [{} for _ in conversations]
    evidence: list[dict[str, Any]] = [{} for _ in conversations]
    errors: list[list[str]] = [[] for _ in conversations]
    for rubric in rubrics:
        try:
            results: list[Any] = rubric.many(conversations)
        except Exception:
            results = []
            for conversation in conversations:
                try:
                    results.append(rubric(conversation))
                except Exception as exc:
                    results.append(exc)
        for i, result in enumerate(results):
            if isinstance(result, Exception):
                values[i][rubric.name], evidence[i][rubric.name] = None, None
                errors[i].append(f"{rubric.name}: {type(result).__name__}: {result}")
            else:
                values[i][rubric.name], evidence[i][rubric.name] = result.value, dict(result.evidence)
    return [(v, e, "; ".join(errs)) for v, e, errs in zip(values, evidence, errors, strict=True)]


def _stderr(line: str) -> None:
    print(line, file=sys.stderr, flush=True)


__all__ = ["EvalFailed", "Evaluator", "RoundStopped", "score"]


class EvalFailed(RuntimeError):
    """An evaluation round failed under --strict."""


class Evaluator:
    """Holds the chain over the live model and writes each round to the run log, then to W&B."""

    def __init__(
        self, model: Any, tokenizer: Any, experiment: Experiment, runlog: RunLog, tracker: Tracker, strict: bool = False
    ) -> None:
        self.model = model
        self.strict = strict
        self.experiment = experiment
        self.runlog = runlog
        self.tracker = tracker
        self.chain = build_chain(model, tokenizer, experiment.generation)
        self.done: set[int] = set()
        self.appeared: set[str] = set()  # scenarios whose debates already held tweet artefacts
        self.echo: Callable[[str], None] = _stderr

    def round(self, step: int, should_stop: Callable[[], bool] | None = None) -> dict[str, float]:
        """Hold, score and record every scenario's debate at `step`; the round's rubric means.

        Under several processes each rank holds its share of the debates; rank 0 gathers, scores and records them and
        every rank returns rank 0's means (or raises rank 0's EvalFailed), so all ranks decide alike. `should_stop` is
        asked between turns: a stop request raises RoundStopped and the round, left without its `eval` record, does
        not count.
        """
        started = time.perf_counter()
        generated = self._generate(step, should_stop)
        if (parts := distributed.gather(generated)) is None:  # not rank 0: take rank 0's outcome
            self.done.add(step)
            outcome = distributed.broadcast(None)
            if isinstance(outcome, str):
                raise EvalFailed(outcome)
            return outcome
        try:
            means = self._record(step, parts, started)
        except EvalFailed as exc:
            distributed.broadcast(str(exc))
            raise
        return distributed.broadcast(means)

    def _generate(
        self, step: int, should_stop: Callable[[], bool] | None
    ) -> tuple[list[int], list[Conversation], list[dict[str, Any]], str | None]:
        """This rank's share of the debates: scenario indices (-1: a pad), conversations, trace events, error."""
        import torch

        scenarios = self.experiment.scenarios
        indices = distributed.shard(len(scenarios))
        mine = [
            scenarios[i] if i >= 0 else dataclasses.replace(scenarios[0], name=f"{scenarios[0].name}--pad")
            for i in indices
        ]
        was_training = self.model.training
        self.model.eval()
        devices = [torch.cuda.current_device()] if torch.cuda.is_available() else []
        try:
            # Sampling is seeded per step without disturbing the training RNG streams.
            with (
                torch.no_grad(),
                torch.random.fork_rng(devices=devices),
                generation_threads(self.model),
                distributed.full_parameters(self.model),  # sharded (FSDP2): gathered, so ranks decode independently
            ):
                torch.manual_seed(self.experiment.generation.seed + step)
                conversations, trace = hold_debates(self.chain, mine, should_stop)
        except RoundStopped as exc:
            print(f"harness: eval step {step} abandoned ({exc}); a resume holds it again", file=sys.stderr, flush=True)
            raise
        except Exception as exc:
            if self.strict and distributed.world_size() == 1:
                raise EvalFailed(f"evaluation at step {step} failed: {type(exc).__name__}: {exc}") from exc
            return indices, [], [], f"{type(exc).__name__}: {exc}"
        finally:
            self.model.train(was_training)
        return indices, conversations, trace, None

    def _record(self, step: int, parts: list[Any], started: float) -> dict[str, float]:
        """Rank 0: the gathered debates in scenario order, scored and written to the run log, then to W&B."""
        if error := next((e for *_, e in parts if e), None):
            if self.strict:
                raise EvalFailed(f"evaluation at step {step} failed: {error}")
            return self._failed_round(step, error, time.perf_counter() - started)
        by_index = {i: c for indices, conversations, _, _ in parts for i, c in zip(indices, conversations, strict=True)}
        conversations = [by_index[i] for i in range(len(self.experiment.scenarios))]
        names = {s.name for s in self.experiment.scenarios}
        trace = [e for _, _, events, _ in parts for e in events if e.get("scenario") in names]  # pads' dropped
        generation_s = time.perf_counter() - started

        rows = []
        scored = score(conversations, self.experiment.rubrics)
        for conversation, (values, evidence, error) in zip(conversations, scored, strict=True):
            row = {
                "step": step,
                "scenario": conversation.scenario,
                "topic": conversation.topic,
                "speakers": list(dict.fromkeys(t.speaker for t in conversation.turns)),
                "turns": [{"speaker": t.speaker, "text": t.text} for t in conversation.turns],
                "transcript": conversation.transcript(),
                "scores": values,
                "evidence": evidence,
                "error": error or None,
            }
            self.runlog.write("conversation", **row)
            rows.append(row)
        if self.strict and (failed := next((row for row in rows if row["error"]), None)):
            raise EvalFailed(f"rubric failed at step {step} ({failed['scenario']}): {failed['error']}")
        self._first_artefacts(step, rows)
        for event in trace:
            self.runlog.write("trace", step=step, **event)
        means = {
            r.name: statistics.fmean(v for row in rows if (v := row["scores"][r.name]) is not None)
            for r in self.experiment.rubrics
            if any(row["scores"][r.name] is not None for row in rows)
        }
        seconds = time.perf_counter() - started
        self.runlog.write(
            "eval", step=step, seconds=round(seconds, 3), generation_s=round(generation_s, 3), means=means
        )
        self.tracker.log_round(step, rows, [r.name for r in self.experiment.rubrics], means, trace)
        self.done.add(step)
        return means

    def _first_artefacts(self, step: int, rows: list[dict[str, Any]]) -> None:
        """An `appearance` record the first time a scenario's debate holds tweet artefacts (contamination's)."""
        for row in rows:
            found = appearance(step, row["scenario"], (row["evidence"] or {}).get("contamination"))
            if found is not None and found.scenario not in self.appeared:
                self.appeared.add(found.scenario)
                self.runlog.write("appearance", **found.to_record())
                kinds = ", ".join(f"{k} {n}" for k, n in found.kinds.items())
                self.echo(f"harness: step {step}: first tweet artefacts in {found.scenario} ({kinds}: "
                          f"{' '.join(found.examples)})")  # fmt: skip

    def _failed_round(self, step: int, error: str, seconds: float) -> dict[str, float]:
        """Generation failed: the round is recorded with its error (run log and W&B table) and training goes on."""
        rows = [
            {"step": step, "scenario": s.name, "topic": s.topic, "speakers": list(s.speakers), "turns": [],
             "transcript": "", "scores": {}, "evidence": {}, "error": error}
            for s in self.experiment.scenarios
        ]  # fmt: skip
        for row in rows:
            self.runlog.write("conversation", **row)
        self.runlog.write("eval", step=step, seconds=round(seconds, 3), generation_s=None, means={}, error=error)
        self.tracker.log_round(step, rows, [r.name for r in self.experiment.rubrics], {})
        self.done.add(step)
        self.echo(redact(f"harness: eval step {step} failed ({error}); training continues (--strict makes this fatal)"))
        return {}
