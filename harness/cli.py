"""The `harness` command line: `python -m harness COMMAND ...`."""

from __future__ import annotations

import argparse
import sys
from collections.abc import Sequence
from pathlib import Path

from harness.errors import UserError


def _positive(text: str) -> int:
    value = int(text)
    if value <= 0:
        raise argparse.ArgumentTypeError(f"must be a positive integer, got {text}")
    return value


def _cmd_run(args: argparse.Namespace) -> int:
    from harness.train import run

    run_dir = run(args.experiment, args.profile, Path(args.runs_dir), args.max_steps, args.eval_every)
    print(f"harness: run finished: {run_dir}")
    return 0


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
    run.add_argument("experiment", help="path to an experiment file, e.g. experiments/kaggle_debate.py")
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
        print(f"harness: error: {exc}", file=sys.stderr)
        return 2
    except KeyboardInterrupt:
        print("harness: interrupted", file=sys.stderr)
        return 130
