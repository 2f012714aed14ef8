"""The Trainer callback: evaluate at step 0, every N steps and at the end; record logs; stop cleanly on request."""

from __future__ import annotations

import contextlib
import math
import signal
import sys
from typing import Any

from transformers import TrainerCallback

from harness import distributed
from harness.evaluation.round import Evaluator, RoundStopped
from harness.records.runlog import RunLog


class Diverged(RuntimeError):
    """The loss became NaN or infinite: the run cannot continue meaningfully."""


class StopRequest:
    """SIGINT/SIGTERM ask the run to stop after the current step; a second SIGINT aborts at once."""

    def __init__(self) -> None:
        self.requested = False
        self._previous: dict[int, Any] = {}

    def __enter__(self) -> StopRequest:
        for sig in (signal.SIGINT, signal.SIGTERM):
            self._previous[sig] = signal.signal(sig, self._handle)
        return self

    def __exit__(self, *exc: object) -> None:
        for sig, handler in self._previous.items():
            signal.signal(sig, handler)

    def _handle(self, signum: int, frame: object) -> None:
        if self.requested and signum == signal.SIGINT:
            raise KeyboardInterrupt
        self.requested = True
        print(f"harness: {signal.Signals(signum).name}: stopping after this step (checkpoint and run log are "
              "flushed; Ctrl-C again aborts now)", file=sys.stderr, flush=True)  # fmt: skip


class EvalCallback(TrainerCallback):
    """Two guards (already done? not scheduled?), then one evaluation round over the live model."""

    def __init__(self, evaluator: Evaluator, eval_every: int, runlog: RunLog, stop: StopRequest) -> None:
        self.evaluator = evaluator
        self.eval_every = eval_every
        self.runlog = runlog
        self.stop = stop

    def _maybe_evaluate(self, step: int, final: bool = False) -> None:
        if step in self.evaluator.done:
            return
        if not final and step % self.eval_every != 0:
            return
        # Several processes must leave a round together: they stop after it, where the ranks agree (on_step_end).
        alone = distributed.world_size() == 1
        self.evaluator.round(step, should_stop=(lambda: self.stop.requested) if alone else None)

    def on_train_begin(self, args: Any, state: Any, control: Any, **kwargs: Any) -> None:
        # A stop inside this round raises RoundStopped out of train(): no step may be trained before the round.
        self._maybe_evaluate(state.global_step)

    def on_step_end(self, args: Any, state: Any, control: Any, **kwargs: Any) -> Any:
        self.stop.requested = distributed.any_rank(self.stop.requested)  # a signal on one rank stops every rank
        if not self.stop.requested:
            with contextlib.suppress(RoundStopped):  # the checkpoint saved below lets a resume hold this round
                self._maybe_evaluate(state.global_step)
            self.stop.requested = distributed.any_rank(self.stop.requested)  # a signal during the round
        if self.stop.requested:
            control.should_save = True
            control.should_training_stop = True
        return control

    def on_train_end(self, args: Any, state: Any, control: Any, **kwargs: Any) -> None:
        if not self.stop.requested:
            with contextlib.suppress(RoundStopped):  # the final checkpoint is saved: a resume holds this round
                self._maybe_evaluate(state.global_step, final=True)

    def on_log(self, args: Any, state: Any, control: Any, logs: dict[str, float] | None = None, **kwargs: Any) -> None:
        if not logs:
            return
        self.runlog.write("metrics", step=state.global_step, **logs)
        loss = logs.get("loss")
        if loss is not None and not math.isfinite(loss):
            raise Diverged(f"the training loss is {loss} at step {state.global_step}; lower the learning rate or "
                           "check the data, then start a new run")  # fmt: skip
