"""`harness compare RUN RUN ...`: one self-contained HTML report over runs (and a W&B Report)."""

from __future__ import annotations

import argparse
from pathlib import Path

from harness.compare.report import TOLERANCE, read_gate, render
from harness.errors import UserError
from harness.records.runs import RUNS_DIR, find_runs, frames, open_run

HELP = "compare runs in one self-contained HTML report (and, with --wandb, a W&B Report)"
DESCRIPTION = (
    "Write one HTML file (no network needed to open it) comparing runs from their logs: loss and "
    "rubric curves on train/global_step, where each run was best and where quality turned down while the loss "
    "still fell, transcripts side by side with artefacts marked, configuration differences and, with --gate, "
    "a gate verdict. A RUN is a run id under --runs-dir or a run directory."
)


def _steps(text: str) -> list[int]:
    try:
        return [int(s) for s in text.split(",") if s.strip()]
    except ValueError:
        raise argparse.ArgumentTypeError(f"expected comma-separated steps like 0,50,100, got {text!r}") from None


def add_arguments(parser: argparse.ArgumentParser) -> None:
    parser.add_argument("runs", nargs="*", metavar="RUN", help="run ids (under --runs-dir) or run directories")
    parser.add_argument("--group", help="also every run of this group under --runs-dir (a sweep's runs), ranked")
    parser.add_argument("-o", "--output", help="the HTML file to write (default: reports/<runs>.html)")
    parser.add_argument("--runs-dir", default=str(RUNS_DIR), help="where run ids are looked up (default: runs)")
    parser.add_argument("--scenario", action="append", help="a scenario whose transcripts to show (repeatable; "
                        "default: all)")  # fmt: skip
    parser.add_argument("--steps", type=_steps, help="comma-separated steps for the transcripts (default: all)")
    parser.add_argument("--gate", type=Path, help="a gate result (JSON) whose verdict to show")
    parser.add_argument("--tolerance", type=float, default=TOLERANCE, help="composite drop that counts as turning "
                        f"down (default: {TOLERANCE})")  # fmt: skip
    parser.add_argument("--wandb", action="store_true", help="also create a W&B Report over the runs (needs W&B "
                        "online)")  # fmt: skip


def main(args: argparse.Namespace) -> int:
    if args.wandb:
        from harness.compare import wandb_report

        wandb_report.require_online()
    read = [open_run(r, args.runs_dir) for r in args.runs]
    if args.group:
        if not (grouped := [r for r in find_runs(args.runs_dir) if r.header.get("group") == args.group]):
            raise UserError(f"--group {args.group}: no runs of that group under {args.runs_dir}")
        read += grouped
    if not read:
        raise UserError("give the runs to compare (run ids or directories), or --group GROUP")
    if len({r.id for r in read}) < len(read):
        raise UserError("the same run is given twice; compare distinct runs")
    runs = [frames(r) for r in read]
    gate = read_gate(args.gate) if args.gate else None
    html = render(runs, args.scenario, args.steps, gate, args.tolerance)
    ids = [r.id for r in runs]
    name = "_vs_".join(ids) if len(ids) <= 2 else f"{ids[0]}_vs_{len(ids) - 1}_more"
    out = Path(args.output or f"reports/{name}.html")
    out.parent.mkdir(parents=True, exist_ok=True)
    out.write_text(html, encoding="utf-8")
    print(f"harness: report written: {out}")
    if args.wandb:
        print(f"harness: W&B Report saved: {wandb_report.save(runs)}")
    return 0
