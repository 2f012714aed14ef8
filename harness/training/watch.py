"""Acting on the rubric curves during training: the best adapter by quality is kept, watches alert and may stop."""

from __future__ import annotations

import json
import math
import shutil
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass, field
from itertools import pairwise
from pathlib import Path
from typing import Any

from transformers import TrainerCallback

from harness import distributed
from harness.evaluation.quality import COMPOSITE, best_step, composite, higher_is_better, loss_at, turned, turned_down
from harness.records.runlog import Run, RunLog
from harness.records.tracking import Tracker
from harness.spec.experiment import Experiment, TrainingSpec
from harness.spec.watches import DriftWatch, FallingWatch, ThresholdWatch, Watch

PREFIX = "eval_rubric/"
BEST_DIR = "adapter-best"


def round_metrics(means: Mapping[str, float]) -> dict[str, float]:
    """A round's rubric means and their composite as Trainer metrics (`eval_rubric/<name>`, NaN when unscored)."""
    value = composite(means)
    return {**{PREFIX + name: v for name, v in means.items()}, PREFIX + COMPOSITE: math.nan if value is None else value}


def greater_is_better(metric: str) -> bool:
    """The direction of an `eval_rubric/...` metric: the composite and higher-is-better rubrics go up."""
    return higher_is_better(metric.removeprefix(PREFIX)) is not False


@dataclass(frozen=True)
class Alert:
    """A watch fired at a round: the run-log record, the console line and the W&B alert say the same."""

    step: int
    rubric: str
    rule: str
    value: float
    message: str
    stop: bool
    details: dict[str, Any] = field(default_factory=dict)

    def to_record(self) -> dict[str, Any]:
        return {"step": self.step, "rubric": self.rubric, "rule": self.rule, "value": self.value,
                "message": self.message, "stop": self.stop, **self.details}  # fmt: skip


class Watcher:
    """The watches' view of the run so far: each round's means (with the composite) and the training losses.

    A watch alerts when its condition starts to hold, not again while it keeps holding (one alert per episode); a
    round at which any watch's condition holds is not `healthy`, and never becomes adapter-best/."""

    def __init__(self, watches: Sequence[Watch]) -> None:
        self.watches = tuple(watches)
        self.rounds: list[tuple[int, dict[str, float]]] = []
        self.losses: list[tuple[int, float]] = []
        self._holding: set[int] = set()

    def observe(self, step: int, means: Mapping[str, float]) -> list[Alert]:
        value = composite(means)
        self.rounds.append((step, {**means, **({COMPOSITE: value} if value is not None else {})}))
        alerts = []
        for i, watch in enumerate(self.watches):
            alert = self._check(watch, step)
            if alert is not None and i not in self._holding:
                alerts.append(alert)
            self._holding = (self._holding | {i}) if alert is not None else (self._holding - {i})
        return alerts

    @property
    def healthy(self) -> bool:
        """No watch's condition holds at the latest round."""
        return not self._holding

    def _series(self, rubric: str) -> list[tuple[int, float]]:
        return [(s, m[rubric]) for s, m in self.rounds if m.get(rubric) is not None and not math.isnan(m[rubric])]

    def _check(self, watch: Watch, step: int) -> Alert | None:
        if isinstance(watch, ThresholdWatch):
            now = dict(self._series(watch.rubric)).get(step)
            if now is None or turned(watch.rubric, now) >= turned(watch.rubric, watch.level):
                return None
            side = "above" if turned(watch.rubric, 1.0) < turned(watch.rubric, 0.0) else "below"
            return Alert(step, watch.rubric, "threshold", now, f"{watch.rubric} {now:.3f} is {side} "
                         f"{watch.level:g}", watch.stop, {"level": watch.level})  # fmt: skip
        if isinstance(watch, DriftWatch):
            scores = dict(self._series(COMPOSITE))
            best = best_step(scores)
            if step not in scores or best is None or best == step:
                return None
            loss, best_loss = loss_at(self.losses, step), loss_at(self.losses, best)
            if not turned_down(scores[step], scores[best], loss, best_loss, watch.tolerance):
                return None
            return Alert(step, COMPOSITE, "turned_down", scores[step],
                         f"composite {scores[step]:.3f} is more than {watch.tolerance:g} below its best "
                         f"({scores[best]:.3f} at step {best}) while the loss fell ({best_loss:.3f} -> {loss:.3f})",
                         watch.stop, {"best_step": best, "best_value": scores[best], "loss": loss,
                                      "best_loss": best_loss, "tolerance": watch.tolerance})  # fmt: skip
        if isinstance(watch, FallingWatch):
            series = self._series(watch.rubric)[-(watch.rounds + 1) :]
            if len(series) <= watch.rounds or series[-1][0] != step:
                return None
            good = [turned(watch.rubric, v) for _, v in series]
            if not all(later < earlier - watch.min_drop for earlier, later in pairwise(good)):
                return None
            return Alert(step, watch.rubric, "falling", series[-1][1],
                         f"{watch.rubric} got worse {watch.rounds} rounds in a row "
                         f"({' -> '.join(f'{v:.3f}' for _, v in series)})", watch.stop,
                         {"rounds": watch.rounds, "since_step": series[0][0]})  # fmt: skip
        raise TypeError(f"not a watch: {watch!r}")


class BestAdapter:
    """Keeps `adapter-best/` at the healthy round with the best metric (the earliest of equal bests)."""

    def __init__(self, run_dir: Path, metric: str, greater: bool, save: Callable[[Path], None]) -> None:
        self.path = run_dir / BEST_DIR
        self.metric, self.greater, self._save = metric, greater, save
        self.step: int | None = None
        self.value: float | None = None

    def offer(self, step: int, metrics: Mapping[str, float]) -> bool:
        """Save the adapter if this round is the best so far; True when it was."""
        value = metrics.get(self.metric)
        if value is None or math.isnan(value):
            return False
        if self.value is not None and best_step({self.step: self.value, step: value}, self.greater) != step:
            return False
        staging, main = self.path.with_name(BEST_DIR + ".partial"), distributed.is_main()
        if main:
            shutil.rmtree(staging, ignore_errors=True)
        self._save(staging)  # on every rank (FSDP gathers the shards); rank 0 writes the files
        if main:
            (staging / "best.json").write_text(json.dumps({"step": step, "metric": self.metric, "value": value}))
            shutil.rmtree(self.path, ignore_errors=True)
            staging.rename(self.path)  # a crash leaves the previous best or the staging copy, never a half-written one
        self.step, self.value = step, value
        return True

    def restore(self, step: int, value: float) -> None:
        """A resumed run starts from the best its earlier session kept."""
        self.step, self.value = step, value


class WatchCallback(TrainerCallback):
    """On every round's metrics: run the watches, record and show alerts, offer a healthy round's adapter to
    adapter-best/, and stop after the round when a firing watch says `stop=True`."""

    def __init__(
        self, watcher: Watcher, best: BestAdapter, runlog: RunLog, tracker: Tracker, echo: Callable[[str], None]
    ) -> None:
        self.watcher, self.best, self.runlog, self.tracker, self.echo = watcher, best, runlog, tracker, echo
        self.stopped_by: str | None = None

    def on_log(self, args: Any, state: Any, control: Any, logs: dict[str, float] | None = None, **kwargs: Any) -> None:
        if logs and "loss" in logs:
            self.watcher.losses.append((state.global_step, logs["loss"]))

    def on_evaluate(self, args: Any, state: Any, control: Any, metrics: dict[str, float], **kwargs: Any) -> Any:
        step = state.global_step
        means = {k.removeprefix(PREFIX): v for k, v in metrics.items() if k.startswith(PREFIX)}
        means.pop(COMPOSITE, None)
        for alert in self.watcher.observe(step, {k: v for k, v in means.items() if not math.isnan(v)}):
            self.runlog.write("alert", **alert.to_record())
            if state.is_world_process_zero:
                self.echo(f"harness: ALERT step {step}: {alert.message}" + ("; stopping after this round" * alert.stop))
            self.tracker.alert(f"{alert.rule}: {alert.rubric} at step {step}", alert.message)
            if alert.stop and self.stopped_by is None:
                self.stopped_by = f"{alert.rule} watch on {alert.rubric} at step {step}: {alert.message}"
                control.should_training_stop = True
        if self.watcher.healthy:
            self.best.offer(step, metrics)
        return control

    def summary(self) -> dict[str, Any]:
        """What the run log's `end` record says about the best adapter and an early stop."""
        kept = self.best.step is not None and self.best.path.is_dir()
        return {
            "best_step": self.best.step,
            "best_metric": self.best.metric,
            "best_value": self.best.value,
            "best_adapter": str(self.best.path) if kept else None,
            "stopped_by": self.stopped_by,
        }


def best_metric(training: TrainingSpec) -> tuple[str, bool]:
    """The metric that picks adapter-best/ (the composite unless declared) and whether higher is better."""
    metric = training.metric_for_best_model or PREFIX + COMPOSITE
    greater = training.greater_is_better if training.greater_is_better is not None else greater_is_better(metric)
    return metric, greater


def best_model_arguments(training: TrainingSpec) -> dict[str, Any]:
    """TrainingArguments for transformers' best-model machinery, when the experiment declares any of it."""
    if not (training.metric_for_best_model or training.load_best_model_at_end or training.early_stopping_patience):
        return {}
    metric, greater = best_metric(training)
    return {"metric_for_best_model": metric, "greater_is_better": greater,
            "load_best_model_at_end": training.load_best_model_at_end}  # fmt: skip


def watching(
    experiment: Experiment, run_dir: Path, runlog: RunLog, tracker: Tracker, model_and_tokenizer: tuple[Any, Any],
    echo: Callable[[str], None], earlier: Run | None = None,
) -> WatchCallback:  # fmt: skip
    """The watch callback of a run; a resumed run (`earlier`: its log so far) continues from the rounds it holds."""

    def save(path: Path) -> None:  # the adapter (peft) and the tokenizer, as adapter/ is saved
        model, tokenizer = model_and_tokenizer
        model.save_pretrained(path, is_main_process=distributed.is_main())
        if distributed.is_main():
            tokenizer.save_pretrained(path)

    metric, greater = best_metric(experiment.training)
    watcher, best = Watcher(experiment.watches or ()), BestAdapter(run_dir, metric, greater, save)
    if earlier is not None:
        watcher.losses = [(m["step"], m["loss"]) for m in earlier.of("metrics") if "loss" in m]
        for record in earlier.of("eval"):
            watcher.observe(record["step"], record.get("means", {}))
        kept = best.path / "best.json"
        held = json.loads(kept.read_text()) if kept.is_file() else None
        if held and held["metric"] == metric and held["step"] in earlier.eval_steps():
            best.restore(held["step"], held["value"])
        else:  # kept by a round the resumed session redoes (or by another metric): the redone rounds decide
            shutil.rmtree(best.path, ignore_errors=True)
    return WatchCallback(watcher, best, runlog, tracker, echo)
