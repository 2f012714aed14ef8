"""The default run, measured: eval overhead, peak RSS and the extra RSS an eval round needs.

`measure()` runs `harness run experiments/kaggle_debate.py` at the cpu profile's default schedule in a child
process (W&B offline unless WANDB_MODE says otherwise, run directory in a temporary folder). The child times
`Trainer.train` (which holds the step-0 and final rounds too) and samples its own RSS from /proc every 5 ms while
an eval round runs. Figures:
- `eval_overhead`: the seconds of all eval rounds (the run log's `eval` records) / the wall time of `Trainer.train`.
- `peak_rss_mb`: the child's peak RSS (getrusage); the W&B service process is not counted.
- `eval_extra_rss_mb`: the largest (peak RSS sampled during a round - RSS when the round began); the step-0 round
  also loads the rubrics' tagger and frozen data, so the later rounds' figure is in `raw` too.
"""

from __future__ import annotations

import json
import os
import subprocess
import sys
import tempfile
import threading
import time
from pathlib import Path
from typing import Any

ROOT = Path(__file__).resolve().parent.parent
EXPERIMENT = ROOT / "experiments" / "kaggle_debate.py"
OVERHEAD_TARGET = 0.10
PAGE = os.sysconf("SC_PAGE_SIZE") if hasattr(os, "sysconf") else 4096


def _rss_bytes() -> int:
    with open("/proc/self/statm") as f:
        return int(f.read().split()[1]) * PAGE


class _Sampler(threading.Thread):
    """Polls this process's RSS until stopped; `peak` is the highest value seen."""

    def __init__(self, interval: float = 0.005) -> None:
        super().__init__(daemon=True)
        self.interval = interval
        self.start_rss = self.peak = _rss_bytes()
        self._stop_event = threading.Event()

    def run(self) -> None:
        while not self._stop_event.wait(self.interval):
            self.peak = max(self.peak, _rss_bytes())

    def stop(self) -> None:
        self._stop_event.set()
        self.join()
        self.peak = max(self.peak, _rss_bytes())


def _child(experiment: str, runs_dir: str, out: str, max_steps: int | None, eval_every: int | None) -> None:
    """Runs the experiment with two probes patched in; writes what they saw to `out`."""
    import resource

    from transformers import Trainer

    from harness.evaluation.round import Evaluator
    from harness.training.run import run

    rounds: list[dict[str, Any]] = []
    train_s: list[float] = []
    evaluate, train = Evaluator.round, Trainer.train

    def sampled_round(self: Evaluator, step: int, **kwargs: Any) -> dict[str, float]:
        sampler = _Sampler()
        sampler.start()
        try:
            return evaluate(self, step, **kwargs)
        finally:
            sampler.stop()
            rounds.append(
                {"step": step, "rss_start_mb": sampler.start_rss / 2**20, "rss_peak_mb": sampler.peak / 2**20}
            )

    def timed_train(self: Trainer, *args: Any, **kwargs: Any) -> Any:
        start = time.perf_counter()
        try:
            return train(self, *args, **kwargs)
        finally:
            train_s.append(time.perf_counter() - start)

    Evaluator.round, Trainer.train = sampled_round, timed_train  # type: ignore[method-assign]
    run_dir, status = run(experiment, runs_dir=Path(runs_dir), max_steps=max_steps, eval_every=eval_every)
    peak_kb = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss
    Path(out).write_text(json.dumps({"run_dir": str(run_dir), "status": status, "train_s": train_s[0],
                                     "peak_rss_mb": peak_kb / 1024, "rounds": rounds}))  # fmt: skip


def measure(experiment: Path = EXPERIMENT, max_steps: int | None = None, eval_every: int | None = None) -> list[dict]:
    """The default run by default; `experiment` and the overrides make it a small one (for the tests)."""
    with tempfile.TemporaryDirectory() as tmp:
        out = Path(tmp) / "probe.json"
        command = [
            sys.executable,
            __file__,
            "--child",
            str(experiment),
            tmp,
            str(out),
            str(max_steps or ""),
            str(eval_every or ""),
        ]
        env = {**os.environ, "WANDB_MODE": os.environ.get("WANDB_MODE", "offline")}
        start = time.perf_counter()
        done = subprocess.run(command, env=env, cwd=ROOT, stdout=subprocess.DEVNULL, stderr=subprocess.PIPE, text=True)
        if done.returncode:
            raise RuntimeError(f"the default run failed (exit {done.returncode}):\n{done.stderr[-3000:]}")
        wall_s = time.perf_counter() - start
        probe = json.loads(out.read_text())
        records = [json.loads(line) for line in (Path(probe["run_dir"]) / "runlog.jsonl").open(encoding="utf-8")]
    evals = [r for r in records if r["type"] == "eval"]
    eval_s = sum(r["seconds"] for r in evals)
    overhead = eval_s / probe["train_s"]
    extra = {str(r["step"]): r["rss_peak_mb"] - r["rss_start_mb"] for r in probe["rounds"]}
    steps = next(r for r in records if r["type"] == "header")["experiment"]["training"]["max_steps"]
    raw = {
        "status": probe["status"],
        "max_steps": steps,
        "eval_rounds": len(evals),
        "eval_s": [r["seconds"] for r in evals],
        "generation_s": [r["generation_s"] for r in evals],
        "train_s": probe["train_s"],
        "process_wall_s": wall_s,
    }
    return [
        {"name": "eval_overhead", "value": overhead, "unit": "fraction", "target": OVERHEAD_TARGET,
         "met": overhead <= OVERHEAD_TARGET, "raw": raw},
        {"name": "peak_rss_mb", "value": probe["peak_rss_mb"], "unit": "MiB", "target": None, "met": None,
         "raw": {"max_steps": steps}},
        {"name": "eval_extra_rss_mb", "value": max(extra.values()), "unit": "MiB", "target": None, "met": None,
         "raw": {"per_round_mb": extra, "after_step_0_mb": max((v for s, v in extra.items() if s != "0"), default=None),
                 "rounds": probe["rounds"], "sample_interval_s": 0.005}},
    ]  # fmt: skip


if __name__ == "__main__":
    if sys.argv[1:2] == ["--child"]:
        _experiment, _runs_dir, _out, _steps, _every = sys.argv[2:7]
        _child(_experiment, _runs_dir, _out, int(_steps) if _steps else None, int(_every) if _every else None)
    else:
        for result in measure():
            print(f"{result['name']}: {result['value']:.3f} {result['unit']}  {result['raw']}")
