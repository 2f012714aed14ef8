"""Two short real runs (embedded model) made once per test session and shared by the comparison tests."""

from __future__ import annotations

from pathlib import Path

from conftest import ROOT, SMALL_EXPERIMENT

from harness.cli import main

_made: dict[str, Path] = {}


def two_runs(tmp_path_factory) -> tuple[Path, Path]:
    """A baseline (LoRA r=8, 4 steps, rounds at 0, 2, 4) and a variant (r=4, 4 steps, rounds at 0, 4)."""
    if not _made:
        root = tmp_path_factory.mktemp("compare")
        (root / "experiments").mkdir()
        data = str(ROOT / "data" / "kaggle_tweets.jsonl")
        for name, max_steps, eval_every, r in (("baseline", 4, 2, 8), ("variant", 4, 4, 4)):
            source = SMALL_EXPERIMENT.format(data=data, max_steps=max_steps, eval_every=eval_every)
            path = root / "experiments" / f"{name}.py"
            path.write_text(source.replace("r=8,", f"r={r},"), encoding="utf-8")
            assert main(["run", str(path), "--runs-dir", str(root / "runs")]) == 0
            (_made[name],) = (root / "runs").glob(f"{name}-*")
    return _made["baseline"], _made["variant"]
