"""The Trainer callback: evaluate at step 0, every N steps and at the end; record the training logs."""

from __future__ import annotations

from typing import Any

from transformers import TrainerCallback

from harness.evaluation import Evaluator
from harness.runlog import RunLog


class EvalCallback(TrainerCallback):
    """Two guards (already done? not scheduled?), then one evaluation round over the live model."""

    def __init__(self, evaluator: Evaluator, eval_every: int, runlog: RunLog) -> None:
        self.evaluator = evaluator
        self.eval_every = eval_every
        self.runlog = runlog

    def _maybe_evaluate(self, step: int, final: bool = False) -> None:
        if step in self.evaluator.done:
            return
        if not final and step % self.eval_every != 0:
            return
        self.evaluator.round(step)

    def on_train_begin(self, args: Any, state: Any, control: Any, **kwargs: Any) -> None:
        self._maybe_evaluate(state.global_step)

    def on_step_end(self, args: Any, state: Any, control: Any, **kwargs: Any) -> None:
        self._maybe_evaluate(state.global_step)

    def on_train_end(self, args: Any, state: Any, control: Any, **kwargs: Any) -> None:
        self._maybe_evaluate(state.global_step, final=True)

    def on_log(self, args: Any, state: Any, control: Any, logs: dict[str, float] | None = None, **kwargs: Any) -> None:
        if logs:
            self.runlog.write("metrics", step=state.global_step, **logs)
