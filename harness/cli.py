"""The `harness` command line: `python -m harness COMMAND ...`."""

from __future__ import annotations

import argparse
import sys
from collections.abc import Sequence
from pathlib import Path

from harness.errors import UserError
from harness.runlog import redact


def _positive(text: str) -> int:
    value = int(text)
    if value <= 0:
        raise argparse.ArgumentTypeError(f"must be a positive integer, got {text}")
    return value


EXIT_CODES = {"completed": 0, "failed": 1, "interrupted": 130}


def _cmd_run(args: argparse.Namespace) -> int:
    from harness.callback import Diverged
    from harness.evaluation import EvalFailed
    from harness.runs import resolve
    from harness.train import resume, run

    try:
        if args.resume:
            if args.experiment or args.profile != "auto" or args.max_steps or args.eval_every:
                raise UserError("--resume continues a run with its recorded settings; give no experiment, "
                                "--profile, --max-steps or --eval-every with it")  # fmt: skip
            run_dir, status = resume(resolve(args.resume, args.runs_dir), strict=args.strict)
        elif not args.experiment:
            raise UserError("give an experiment file (or --resume RUN)")
        else:
            run_dir, status = run(args.experiment, args.profile, Path(args.runs_dir), args.max_steps,
                                  args.eval_every, strict=args.strict)  # fmt: skip
    except (Diverged, EvalFailed) as exc:
        print(f"harness: run failed: {exc}", file=sys.stderr)
        return EXIT_CODES["failed"]
    print(f"harness: run {status}: {run_dir}" + (f" (continue with --resume {run_dir})" if status != "completed"
                                                  else ""))  # fmt: skip
    return EXIT_CODES[status]


def _cmd_build_model(args: argparse.Namespace) -> int:
    import dataclasses

    from harness.embedded import EMBEDDED_DIR, PretrainConfig, build

    config = PretrainConfig() if args.steps is None else dataclasses.replace(PretrainConfig(), steps=args.steps)
    report = build(Path(args.out) if args.out else EMBEDDED_DIR, config)
    print(f"harness: embedded model written: {report}")
    return 0


def parser() -> argparse.ArgumentParser:
    top = argparse.ArgumentParser(
        prog="python -m harness",
        description="Evaluation-first LoRA fine-tuning of Japanese causal LMs: train, debate, score, log.",
    )
    sub = top.add_subparsers(dest="command", required=True, metavar="COMMAND")

    run = sub.add_parser(
        "run",
        help="fine-tune an experiment with LoRA, scoring its debates at step 0, every N steps and at the end",
        description="Fine-tune the experiment's model with LoRA (HF Trainer + peft). At step 0, every eval_every "
        "steps and at the end the live model holds every scenario's debate through an LCEL chain; each conversation "
        "is scored by the experiment's rubrics and written to the run log (RUNS_DIR/RUN_ID/runlog.jsonl) and W&B "
        "(offline unless an API key is configured; WANDB_MODE, WANDB_PROJECT, WANDB_ENTITY are respected).",
    )
    run.add_argument("experiment", nargs="?", help="path to an experiment file, e.g. experiments/kaggle_debate.py")
    run.add_argument(
        "--profile",
        choices=("auto", "full", "cpu"),
        default="auto",
        help="full: the declared model and schedule; cpu: the experiment's cpu profile (embedded tiny model, short "
        "schedule); auto (default): full where CUDA and the model's weights are available locally, else cpu",
    )
    run.add_argument("--runs-dir", default="runs", help="where run directories are created (default: runs)")
    run.add_argument("--max-steps", type=_positive, help="override the profile's training.max_steps")
    run.add_argument("--eval-every", type=_positive, help="override the profile's eval_every")
    run.add_argument(
        "--resume",
        metavar="RUN",
        help="continue an interrupted or crashed run (a run directory or run id) from its last checkpoint, in the "
        "same run log and W&B run; every scheduled evaluation ends up recorded exactly once",
    )
    run.add_argument(
        "--strict",
        action="store_true",
        help="make a failure inside an evaluation round (generation or a rubric) fatal; by default it is recorded "
        "in the run log and the W&B table and training continues",
    )
    run.set_defaults(func=_cmd_run)

    score = sub.add_parser(
        "score",
        help="score JSON lines of texts or conversations with every rubric",
        description="Read JSON lines ({'id', 'text'} or {'id', 'turns': [{'speaker', 'text'}]}) and write one line "
        "per input, in order: {'id', 'scores', 'artefacts', 'evidence'}.",
    )
    from harness import scoring

    scoring.add_arguments(score)
    score.set_defaults(func=scoring.run)

    from harness import report, runs

    listing = sub.add_parser(
        "runs",
        help="list runs: id, experiment, profile, model, steps, status, last rubric means",
        description="List the runs under DIR from their run logs; --json prints a list of objects "
        "(id, path, experiment, profile, model, steps, max_steps, status, eval_step, means).",
    )
    runs.add_arguments(listing)
    listing.set_defaults(func=runs.main)

    compare = sub.add_parser(
        "compare",
        help="compare runs in one self-contained HTML report (and, with --wandb, a W&B Report)",
        description="Write one HTML file (no network needed to open it) comparing runs from their logs: loss and "
        "rubric curves on train/global_step, where each run was best and where quality turned down while the loss "
        "still fell, transcripts side by side with artefacts marked, configuration differences and, with --gate, "
        "a gate verdict. A RUN is a run id under --runs-dir or a run directory.",
    )
    report.add_arguments(compare)
    compare.set_defaults(func=report.main)

    from harness import cleaning, gate

    clean = sub.add_parser(
        "clean",
        help="clean an experiment's corpus with its rules and print what each rule did",
        description="Run the experiment's cleaning rules (HojiChar filters, in order) over its data, write the "
        "cleaned documents as JSON lines and print a per-rule table: documents in/out, removed, changed, characters "
        "removed and examples of each rule's effect.",
    )
    clean.add_argument("experiment", help="experiment file, e.g. experiments/kaggle_debate.py")
    clean.add_argument("-o", "--out", help="output .jsonl (default: runs/cleaned/EXPERIMENT.jsonl)")
    clean.set_defaults(func=cleaning.clean_main)

    gating = sub.add_parser(
        "gate",
        help="fail (exit 1) when a cleaning rule change makes the trained model worse",
        description="Compare a candidate rule set with a baseline: the cleaned corpora (artefact rate, retention, "
        "rubric means) and a short deterministic fine-tune of the embedded model on each, every conversation scored "
        "and paired, with a paired bootstrap interval per rubric. Fails (exit 1) when a rubric moves the wrong way "
        "beyond the experiment's tolerance with the interval excluding zero; exit 0 passes, 2 is a usage error. "
        "Writes EXPERIMENT.gate.json and .md under --out.",
    )
    gate.add_arguments(gating)
    gating.set_defaults(func=gate.main)

    build = sub.add_parser(
        "build-model",
        help="rebuild the embedded tiny GPT-NeoX-Japanese from the shipped general Japanese text",
        description="Pretrain the embedded model from scratch on data/general_ja.jsonl (deterministic for a given "
        "seed, torch version and thread count) and write it with its tokenizer.",
    )
    build.add_argument("--out", help="output directory (default: the shipped harness/assets/tiny-gpt-neox-japanese)")
    build.add_argument("--steps", type=_positive, help="override the recipe's optimizer steps")
    build.set_defaults(func=_cmd_build_model)
    return top


def main(argv: Sequence[str] | None = None) -> int:
    args = parser().parse_args(argv)
    try:
        return int(args.func(args))
    except UserError as exc:
        print(redact(f"harness: error: {exc}"), file=sys.stderr)
        return 2
    except KeyboardInterrupt:
        print("harness: interrupted", file=sys.stderr)
        return 130
