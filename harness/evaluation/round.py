"""An evaluation round: the live model holds every scenario's debate, each conversation is scored and recorded."""

from __future__ import annotations

import statistics
import sys
import time
from collections.abc import Callable, Sequence
from typing import Any

from harness.evaluation.debate import RoundStopped, build_chain, generation_threads, hold_debates
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

    def round(self, step: int, should_stop: Callable[[], bool] | None = None) -> dict[str, float]:
        """Hold, score and record one round at `step`; a stop request between turns raises RoundStopped and the
        round, left without its `eval` record, does not count."""
        import torch

        started = time.perf_counter()
        was_training = self.model.training
        self.model.eval()
        devices = [torch.cuda.current_device()] if torch.cuda.is_available() else []
        try:
            # Sampling is seeded per step without disturbing the training RNG streams.
            with torch.no_grad(), torch.random.fork_rng(devices=devices), generation_threads(self.model):
                torch.manual_seed(self.experiment.generation.seed + step)
                conversations, trace = hold_debates(self.chain, self.experiment.scenarios, should_stop)
        except RoundStopped as exc:
            print(f"harness: eval step {step} abandoned ({exc}); a resume holds it again", file=sys.stderr, flush=True)
            raise
        except Exception as exc:
            if self.strict:
                raise EvalFailed(f"evaluation at step {step} failed: {type(exc).__name__}: {exc}") from exc
            return self._failed_round(step, exc, time.perf_counter() - started)
        finally:
            self.model.train(was_training)
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
        self.tracker.log_round(step, rows, [r.name for r in self.experiment.rubrics], means)
        self.done.add(step)
        shown = "  ".join(f"{k} {v:.3f}" for k, v in means.items())
        print(f"harness: eval step {step}: {shown}  ({seconds:.1f}s)", file=sys.stderr, flush=True)
        return means

    def _failed_round(self, step: int, exc: Exception, seconds: float) -> dict[str, float]:
        """Generation failed: the round is recorded with its error (run log and W&B table) and training goes on."""
        error = f"{type(exc).__name__}: {exc}"
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
        print(redact(f"harness: eval step {step} failed ({error}); training continues (--strict makes this fatal)"),
              file=sys.stderr, flush=True)  # fmt: skip
        return {}
