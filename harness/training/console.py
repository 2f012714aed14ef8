"""What a person watching the terminal sees: a progress bar, and one line per evaluation round and per alert."""

from __future__ import annotations

import math
import sys
from typing import Any

from transformers import TrainerCallback

from harness.training.watch import PREFIX


class Console(TrainerCallback):
    """A tqdm bar (step, loss, speed, ETA) on a terminal; lines are written above it. Not on a terminal (CI logs),
    no bar: only the round and alert lines."""

    def __init__(self, stream: Any = None) -> None:
        self.stream = stream or sys.stderr
        self.bar: Any = None

    def write(self, line: str) -> None:
        if self.bar is not None:
            self.bar.write(line, file=self.stream)
        else:
            print(line, file=self.stream, flush=True)

    def on_train_begin(self, args: Any, state: Any, control: Any, **kwargs: Any) -> None:
        if state.is_world_process_zero and self.stream.isatty():
            from tqdm.auto import tqdm

            self.bar = tqdm(total=state.max_steps, initial=state.global_step, unit="step", file=self.stream,
                            dynamic_ncols=True, desc="train")  # fmt: skip

    def on_step_end(self, args: Any, state: Any, control: Any, **kwargs: Any) -> None:
        if self.bar is not None:
            self.bar.update(state.global_step - self.bar.n)

    def on_log(self, args: Any, state: Any, control: Any, logs: dict[str, float] | None = None, **kwargs: Any) -> None:
        if self.bar is not None and logs and "loss" in logs:
            self.bar.set_postfix(loss=f"{logs['loss']:.3f}", refresh=False)

    def on_evaluate(self, args: Any, state: Any, control: Any, metrics: dict[str, float], **kwargs: Any) -> None:
        if state.is_world_process_zero:
            self.write(round_line(state.global_step, metrics))

    def on_train_end(self, args: Any, state: Any, control: Any, **kwargs: Any) -> None:
        if self.bar is not None:
            self.bar.close()
            self.bar = None


def round_line(step: int, metrics: dict[str, float]) -> str:
    """`harness: eval step 40: relevance 0.212  contamination 0.000  fluency 0.903  composite 0.705  (1.8s)`."""
    shown = "  ".join(f"{k.removeprefix(PREFIX)} {v:.3f}" for k, v in metrics.items()
                      if k.startswith(PREFIX) and not math.isnan(v))  # fmt: skip
    seconds = metrics.get("eval_runtime")
    return f"harness: eval step {step}: {shown or 'no scores'}" + (f"  ({seconds:.1f}s)" if seconds is not None else "")
