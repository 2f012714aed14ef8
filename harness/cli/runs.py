"""`harness runs [DIR]`: list runs from their run logs."""

from __future__ import annotations

import argparse
import json
import sys
from pathlib import Path

from harness.errors import UserError
from harness.records.runs import RUNS_DIR, find_runs, format_table, summary

HELP = "list runs: id, experiment, profile, model, steps, status, last rubric means"
DESCRIPTION = (
    "List the runs under DIR from their run logs; --json prints a list of objects "
    "(id, path, experiment, profile, model, steps, max_steps, status, reason, resume_step, eval_step, means, "
    "best_step, best_adapter, alerts). Under an unfinished run the table says why it failed or the step --resume "
    "would continue from."
)


def add_arguments(parser: argparse.ArgumentParser) -> None:
    parser.add_argument("dir", nargs="?", default=str(RUNS_DIR), help="where the runs are (default: runs)")
    parser.add_argument("--json", action="store_true", help="print a JSON list, one object per run")


def main(args: argparse.Namespace) -> int:
    if not Path(args.dir).is_dir():
        raise UserError(f"{args.dir}: no such runs directory")
    rows = [summary(r) for r in find_runs(args.dir)]
    if args.json:
        print(json.dumps(rows, ensure_ascii=False, indent=1))
    elif rows:
        print(format_table(rows))
    else:
        print(f"harness: no runs in {args.dir}", file=sys.stderr)
    return 0
