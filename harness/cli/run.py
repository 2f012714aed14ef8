"""`harness run EXPERIMENT`: fine-tune with LoRA, holding and scoring the debates on schedule."""

from __future__ import annotations

import argparse
import sys
from pathlib import Path

from harness.errors import UserError

HELP = "fine-tune an experiment with LoRA, scoring its debates at step 0, every N steps and at the end"
DESCRIPTION = (
    "Fine-tune the experiment's model with LoRA (HF Trainer + peft). At step 0, every eval_every "
    "steps and at the end the live model holds every scenario's debate through an LCEL chain; each conversation "
    "is scored by the experiment's rubrics and written to the run log (RUNS_DIR/RUN_ID/runlog.jsonl) and W&B "
    "(offline unless an API key is configured; WANDB_MODE, WANDB_PROJECT, WANDB_ENTITY are respected)."
)
EXIT_CODES = {"completed": 0, "failed": 1, "interrupted": 130}


def positive(text: str) -> int:
    value = int(text)
    if value <= 0:
        raise argparse.ArgumentTypeError(f"must be a positive integer, got {text}")
    return value


def add_arguments(parser: argparse.ArgumentParser) -> None:
    parser.add_argument("experiment", nargs="?", help="path to an experiment file, e.g. experiments/kaggle_debate.py")
    parser.add_argument(
        "settings",
        nargs="*",
        metavar="KEY=VALUE",
        help="settings applied to the chosen profile, e.g. lora.r=16 training.learning_rate=1e-4 eval_every=20 "
        "cleaning=NAME (one of Experiment.cleaning_variants); each value is validated like the experiment file's",
    )
    parser.add_argument(
        "--profile",
        choices=("auto", "full", "cpu"),
        default="auto",
        help="full: the declared model and schedule; cpu: the experiment's cpu profile (embedded tiny model, short "
        "schedule); auto (default): full where CUDA and the model's weights are available locally, else cpu",
    )
    parser.add_argument("--runs-dir", default="runs", help="where run directories are created (default: runs)")
    parser.add_argument(
        "--max-steps",
        type=positive,
        help="override the profile's training.max_steps; one shorter than eval_every scales eval_every down to keep "
        "the profile's number of rounds (and says so)",
    )
    parser.add_argument("--eval-every", type=positive, help="override the profile's eval_every")
    parser.add_argument("--group", help="the W&B group and run-log group of this run (default: the experiment's name)")
    parser.add_argument(
        "--resume",
        metavar="RUN",
        help="continue an interrupted or crashed run (a run directory or run id) from its last checkpoint, in the "
        "same run log and W&B run; every scheduled evaluation ends up recorded exactly once. The experiment may be "
        "given too (the command that started the run, with --resume added) but must be the run's own",
    )
    parser.add_argument(
        "--strict",
        action="store_true",
        help="make a failure inside an evaluation round (generation or a rubric) fatal; by default it is recorded "
        "in the run log and the W&B table and training continues",
    )


def _run_to_resume(args: argparse.Namespace) -> Path:
    """The run directory of --resume RUN. Repeating the run's command with --resume added is the natural way to
    resume, so its own experiment file is accepted; another one, or changed settings, are refused."""
    from harness.records.runs import open_run, resolve

    if args.profile != "auto" or args.max_steps or args.eval_every or args.settings:
        raise UserError("--resume continues a run with its recorded settings; give no KEY=VALUE settings, --profile, "
                        "--max-steps or --eval-every with it")  # fmt: skip
    run_dir = resolve(args.resume, args.runs_dir)
    if args.experiment:
        recorded = open_run(run_dir).header.get("experiment_file")
        if recorded is None or Path(args.experiment).resolve() != Path(recorded).resolve():
            raise UserError(f"--resume {args.resume}: that run is of {recorded}, not {args.experiment}; give its own "
                            "experiment file or none")  # fmt: skip
    return run_dir


def main(args: argparse.Namespace) -> int:
    from harness import distributed
    from harness.evaluation.round import EvalFailed
    from harness.records.runlog import redact
    from harness.spec.profiles import parse_settings
    from harness.training._signals import Diverged
    from harness.training.run import RankLost, resume, run

    try:
        if args.resume:
            run_dir, status = resume(_run_to_resume(args), strict=args.strict)
        elif not args.experiment:
            raise UserError("give an experiment file (or --resume RUN)")
        else:
            settings = parse_settings(args.settings)
            run_dir, status = run(args.experiment, args.profile, Path(args.runs_dir), args.max_steps, args.eval_every,
                                  strict=args.strict, settings=settings, group=args.group)  # fmt: skip
    except (Diverged, EvalFailed, RankLost) as exc:
        print(redact(f"harness: run failed: {exc}"), file=sys.stderr)
        return EXIT_CODES["failed"]
    if not distributed.is_main():
        return EXIT_CODES[status]
    print(f"harness: run {status}: {run_dir}" + (f" (continue with --resume {run_dir})" if status != "completed"
                                                  else ""))  # fmt: skip
    return EXIT_CODES[status]
