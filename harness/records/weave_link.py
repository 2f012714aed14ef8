"""Weave next to an online W&B run: LangChain calls traced by Weave, each conversation an evaluation row with its
rubric scores, linked to the training run. The only module that imports weave (an optional extra).

Weave has no offline mode: offline, without the package or with `WANDB_DISABLE_WEAVE` set it is skipped; any Weave
failure prints one warning and switches it off, training goes on (the run log and the W&B tables have everything).
"""

from __future__ import annotations

import os
import re
import sys
from collections.abc import Callable, Mapping, Sequence
from typing import Any

from harness.records.runlog import redact


class WeaveLink:
    """A Weave client on the W&B run's project (`entity/project`); Weave links its calls to the active W&B run."""

    def __init__(self, project_path: str, run_id: str, experiment: str) -> None:
        import weave

        self._weave = weave
        self.run_id = run_id
        self.model = re.sub(r"\W", "_", experiment) or "experiment"
        # weave.init patches LangChain (langchain_core is imported by then): every chain call of a round is traced
        self.client = weave.init(project_path, postprocess_inputs=redacted, postprocess_output=redacted)
        self.on = True

    def log_round(
        self, step: int, conversations: Sequence[Mapping[str, Any]], rubrics: Sequence[str], means: Mapping[str, float]
    ) -> None:
        """The round as one Weave evaluation: a prediction per conversation (scenario in, transcript out) with each
        rubric's score attached, and the round's means as its summary. Weave links every call to the active W&B run
        and its current history step (`wb_run_id`, `wb_run_step`), so this goes before the round's W&B row."""
        if self.on:
            self._safely(lambda: self._log_round(step, conversations, rubrics, means))

    def _log_round(self, step: int, conversations: Sequence[Mapping[str, Any]], rubrics: Sequence[str],
                   means: Mapping[str, float]) -> None:  # fmt: skip
        ev = self._weave.EvaluationLogger(
            name=f"{self.run_id} step {step}",
            model=self.model,
            dataset=[{"scenario": c["scenario"], "topic": c["topic"]} for c in conversations],
            eval_attributes={"run_id": self.run_id, "train/global_step": step},
            scorers=list(rubrics),
        )
        for c in conversations:
            inputs = {"scenario": c["scenario"], "topic": c["topic"]}
            prediction = ev.log_prediction(inputs=inputs, output=c["transcript"])
            for rubric in rubrics:
                if (value := c["scores"].get(rubric)) is not None:
                    prediction.log_score(scorer=rubric, score=value)
            prediction.finish()
        ev.log_summary(dict(means))

    def finish(self) -> None:
        """Send what is queued and stop tracing LangChain."""
        if self.on:
            self._safely(self.client.flush)
            self._safely(self._weave.finish)
        self.on = False

    def _safely(self, action: Callable[[], Any]) -> None:
        try:
            action()
        except Exception as exc:
            _warn(exc)
            self.on = False


def redacted(value: Any) -> Any:
    """`value` with credential values replaced by `***` in every string it holds, as in the run log."""
    if isinstance(value, str):
        return redact(value)
    if isinstance(value, dict):
        return {k: redacted(v) for k, v in value.items()}
    if isinstance(value, list | tuple):
        return type(value)(redacted(v) for v in value)
    return value


def start_weave(mode: str, project_path: str, run_id: str, experiment: str) -> WeaveLink | None:
    """A WeaveLink when W&B is online and Weave is installed and not disabled; otherwise None (offline: silently)."""
    if mode != "online" or os.environ.get("WANDB_DISABLE_WEAVE", "").lower() in ("1", "true", "yes"):
        return None
    try:
        import weave  # noqa: F401
    except ImportError:
        print("harness: Weave is not installed (pip install 'harness[weave]'): chain traces and scores go to the W&B "
              "run's tables only", file=sys.stderr)  # fmt: skip
        return None
    try:
        return WeaveLink(project_path, run_id, experiment)
    except Exception as exc:
        _warn(exc)
        return None


def _warn(exc: BaseException) -> None:
    print(f"harness: Weave failed ({type(exc).__name__}: {exc}); Weave is off for this run, training continues and "
          "the W&B run and the run log have everything", file=sys.stderr, flush=True)  # fmt: skip
