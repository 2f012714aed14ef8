"""Evaluation-round time, 2 processes (torchrun, gloo) vs 1, on the default experiment's cpu profile.

Each side is a real `harness run … --max-steps 2 --eval-every 1` (rounds at steps 0, 1 and 2); the round time is the
`seconds` of its `eval` record (generation, gather, scoring and recording). Under 2 processes each rank holds 4 of
the 8 debates with one thread, so the ratio says what splitting a round buys on this machine's cores. The sides
alternate, `--pairs` times.
"""

from __future__ import annotations

import argparse
import json
import os
import statistics
import subprocess
import sys
import tempfile
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
EXPERIMENT = ROOT / "experiments" / "kaggle_debate.py"


def round_seconds(processes: int) -> list[float]:
    """The eval rounds' seconds of one short run on `processes` processes."""
    with tempfile.TemporaryDirectory(prefix="harness-bench-dist-") as tmp:
        launcher = [sys.executable, "-m", "torch.distributed.run", "--standalone", f"--nproc_per_node={processes}"]
        command = [*(launcher if processes > 1 else [sys.executable]), "-m", "harness", "run", str(EXPERIMENT),
                   "--max-steps", "2", "--eval-every", "1", "--runs-dir", tmp]  # fmt: skip
        env = {**os.environ, "WANDB_MODE": "disabled", "OMP_NUM_THREADS": "1", "PYTHONPATH": str(ROOT)}
        subprocess.run(command, cwd=ROOT, env=env, check=True, capture_output=True)
        (log,) = Path(tmp).glob("*/runlog.jsonl")
        records = [json.loads(line) for line in log.read_text(encoding="utf-8").splitlines()]
        return [r["seconds"] for r in records if r["type"] == "eval"]


def measure(pairs: int = 2) -> dict[str, float]:
    one, two = [], []
    for _ in range(pairs):
        one += round_seconds(1)
        two += round_seconds(2)
    return {
        "eval_round_s_1_process": statistics.median(one),
        "eval_round_s_2_processes": statistics.median(two),
        "eval_round_speedup_2_vs_1": statistics.median(one) / statistics.median(two),
    }


if __name__ == "__main__":
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--pairs", type=int, default=2, help="alternating 1-process / 2-process runs (default: 2)")
    print(json.dumps(measure(parser.parse_args().pairs), indent=1))
