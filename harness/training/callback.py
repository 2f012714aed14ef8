"""The Trainer and its callback: evaluation rounds as Trainer metrics; record logs; stop cleanly on request."""

from __future__ import annotations

import math
import time
from typing import Any

from transformers import Trainer, TrainerCallback

from harness import distributed
from harness.evaluation.round import Evaluator, RoundStopped
from harness.records.runlog import RunLog
from harness.training._signals import Diverged, StopRequest
from harness.training.watch import round_metrics


class RubricTrainer(Trainer):
    """A Trainer whose evaluation is the harness' round: the debates over the live model, scored by the rubrics.

    `evaluate` returns the round's means and their composite as `eval_rubric/<name>` metrics (logged like any eval
    metric), so transformers' own `metric_for_best_model`, `load_best_model_at_end` and `EarlyStoppingCallback` work
    on them unchanged. The rounds run where transformers evaluates: `eval_on_start` (step 0), every `eval_steps`, and
    at the last step."""

    def __init__(self, *args: Any, evaluator: Evaluator, stop: StopRequest, **kwargs: Any) -> None:
        super().__init__(*args, **kwargs)
        self.evaluator = evaluator
        self.stop = stop

    def evaluate(self, eval_dataset: Any = None, ignore_keys: Any = None, metric_key_prefix: str = "eval") -> Any:
        started = time.perf_counter()
        # A long round asks for a stop between turns; several processes must leave a round together, so they stop
        # after it, where the ranks agree (EvalCallback.on_step_end).
        alone = distributed.world_size() == 1
        try:
            means = self.evaluator.round(
                self.state.global_step, should_stop=(lambda: self.stop.requested) if alone else None
            )
        except RoundStopped:
            if not self.state.global_step:
                raise  # the step-0 round, before any step: no step may be trained before it; fit stops the run
            self.control.should_save = self.control.should_training_stop = True  # a resume redoes this round
            return {}
        metrics = {**round_metrics(means), "eval_runtime": round(time.perf_counter() - started, 3)}
        self.log(metrics)
        self.control = self.callback_handler.on_evaluate(self.args, self.state, self.control, metrics)
        return metrics


class EvalCallback(TrainerCallback):
    """Records the Trainer's logs, stops on a NaN loss, and stops cleanly (no round, a checkpoint) on a signal."""

    def __init__(self, evaluator: Evaluator, runlog: RunLog, stop: StopRequest) -> None:
        self.evaluator = evaluator
        self.runlog = runlog
        self.stop = stop

    def on_step_end(self, args: Any, state: Any, control: Any, **kwargs: Any) -> Any:
        self.stop.requested = distributed.any_rank(self.stop.requested)  # a signal on one rank stops every rank
        if self.stop.requested:
            control.should_save = True
            control.should_training_stop = True
            control.should_evaluate = False
        elif state.global_step in self.evaluator.done:  # a resumed run never repeats a round it holds
            control.should_evaluate = False
        return control

    def on_log(self, args: Any, state: Any, control: Any, logs: dict[str, float] | None = None, **kwargs: Any) -> None:
        if not logs:
            return
        self.runlog.write("metrics", step=state.global_step, **logs)
        loss = logs.get("loss")
        if loss is not None and not math.isfinite(loss):
            raise Diverged(f"the training loss is {loss} at step {state.global_step}; lower the learning rate or "
                           "check the data, then start a new run")  # fmt: skip
