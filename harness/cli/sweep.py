"""`harness sweep EXPERIMENT --grid KEY=V1,V2 ...`: a grid of runs in one group, ranked by quality.

Online (a W&B API key), a W&B grid sweep whose agent runs `harness run EXPERIMENT KEY=VALUE ...`; offline, the
same grid run here one run after another. Either way the runs share a group that `compare --group` ranks.
"""

from __future__ import annotations

import argparse
import itertools
import json
import subprocess
import sys
import time
from pathlib import Path

from harness.cli.run import positive
from harness.errors import UserError

HELP = "run a grid of settings (and seeds) of one experiment as a group of runs, ranked by quality"
DESCRIPTION = (
    "Run EXPERIMENT once per point of the grid (every combination of the --grid values, times --seeds), each as "
    "`harness run EXPERIMENT KEY=VALUE ...` in one group. With a W&B API key this is a W&B grid sweep run by a "
    "W&B agent; offline the runs go one after another on this machine. Prints the runs ranked by the composite "
    "of their last round, next to their loss, and writes RUNS_DIR/GROUP.sweep.json."
)


def _grid_axis(text: str) -> tuple[str, list[str]]:
    key, _, values = text.partition("=")
    if not key or not values:
        raise argparse.ArgumentTypeError(f"expected KEY=V1,V2,... (e.g. lora.r=8,16), got {text!r}")
    return key, values.split(",")


def add_arguments(parser: argparse.ArgumentParser) -> None:
    parser.add_argument("experiment", help="experiment file, e.g. experiments/kaggle_debate.py")
    parser.add_argument("--grid", type=_grid_axis, action="append", default=[], metavar="KEY=V1,V2",
                        help="one axis of the grid (repeatable), e.g. lora.r=8,16 or cleaning=NAME1,NAME2")  # fmt: skip
    parser.add_argument("--seeds", type=lambda t: t.split(","), help="training seeds, e.g. 0,1,2 (an extra axis)")
    parser.add_argument("--profile", choices=("auto", "full", "cpu"), default="auto", help="as for run")
    parser.add_argument("--max-steps", type=positive, help="as for run")
    parser.add_argument("--eval-every", type=positive, help="as for run")
    parser.add_argument("--runs-dir", default="runs", help="where the runs go (default: runs)")
    parser.add_argument("--group", help="the group's name (default: EXPERIMENT-sweep-DATE-TIME)")


def grid(axes: list[tuple[str, list[str]]]) -> list[dict[str, str]]:
    """Every point of the grid as settings, in the order the axes and their values were given."""
    keys = [k for k, _ in axes]
    if duplicates := sorted({k for k in keys if keys.count(k) > 1}):
        raise UserError(f"--grid: {', '.join(duplicates)} given twice; give each key once with all its values")
    return [dict(zip(keys, values, strict=True)) for values in itertools.product(*(v for _, v in axes))]


def main(args: argparse.Namespace) -> int:
    import torch

    from harness.compare.report import ranking
    from harness.records.runs import find_runs, frames
    from harness.records.tracking import run_sweep, wandb_mode
    from harness.spec.load import load_experiment
    from harness.spec.profiles import choose_profile, with_overrides, with_settings

    axes = [*args.grid, *([("training.seed", args.seeds)] if args.seeds else [])]
    if not axes:
        raise UserError("give at least one --grid KEY=V1,V2 (or --seeds)")
    points = grid(axes)
    declared = load_experiment(args.experiment)
    profile = choose_profile(declared, args.profile, torch.cuda.is_available()).name
    experiment, _ = with_overrides(declared.for_profile(profile), args.max_steps, args.eval_every)
    for point in points:  # every grid point is checked before the first run starts
        with_settings(experiment, point)
    group = args.group or f"{experiment.name}-sweep-{time.strftime('%Y%m%d-%H%M%S')}"
    passed = [f"--profile={args.profile}", f"--runs-dir={args.runs_dir}", f"--group={group}"]
    passed += [f"--max-steps={args.max_steps}"] * bool(args.max_steps)
    passed += [f"--eval-every={args.eval_every}"] * bool(args.eval_every)
    print(f"harness: sweep {group}: {len(points)} runs of {args.experiment}", file=sys.stderr, flush=True)
    if wandb_mode() == "online":
        command = ["${env}", "${interpreter}", "-m", "harness", "run", args.experiment, *passed, "${args_no_hyphens}"]
        run_sweep(group, axes, command)
    else:
        for point in points:
            words = [f"{k}={v}" for k, v in point.items()]
            print(f"harness: sweep {group}: run {' '.join(words)}", file=sys.stderr, flush=True)
            subprocess.run([sys.executable, "-m", "harness", "run", args.experiment, *words, *passed], check=False)
    runs = [frames(r) for r in find_runs(args.runs_dir) if r.header.get("group") == group]
    ranked = ranking(runs)
    out = Path(args.runs_dir) / f"{group}.sweep.json"
    out.write_text(json.dumps({"group": group, "grid": dict(axes), "ranking": ranked}, ensure_ascii=False, indent=1))
    for i, row in enumerate(ranked, 1):
        composite = "–" if row["composite"] is None else f"{row['composite']:.3f}"
        loss = "–" if row["loss"] is None else f"{row['loss']:.3f}"
        shown = " ".join(f"{k}={v}" for k, v in row["settings"].items())
        print(f"{i:>3}  composite {composite}  loss {loss}  {row['status']:<11} {shown}  {row['run']}")
    print(f"harness: sweep {group}: {len(runs)} of {len(points)} runs recorded; ranking in {out}; report: "
          f"python -m harness compare --group {group} --runs-dir {args.runs_dir}")  # fmt: skip
    return 0 if len(runs) == len(points) and all(r["status"] == "completed" for r in ranked) else 1
