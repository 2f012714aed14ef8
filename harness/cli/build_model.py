"""`harness build-model`: rebuild the embedded tiny GPT-NeoX-Japanese from the shipped general Japanese text."""

from __future__ import annotations

import argparse
import dataclasses
from pathlib import Path

from harness.cli.run import positive

HELP = "rebuild the embedded tiny GPT-NeoX-Japanese from the shipped general Japanese text"
DESCRIPTION = (
    "Pretrain the embedded model from scratch on data/general_ja.jsonl (deterministic for a given "
    "seed, torch version and thread count) and write it with its tokenizer."
)


def add_arguments(parser: argparse.ArgumentParser) -> None:
    parser.add_argument("--out", help="output directory (default: the shipped harness/assets/tiny-gpt-neox-japanese)")
    parser.add_argument("--steps", type=positive, help="override the recipe's optimizer steps")


def main(args: argparse.Namespace) -> int:
    from harness.training.embedded import EMBEDDED_DIR, PretrainConfig, build

    config = PretrainConfig() if args.steps is None else dataclasses.replace(PretrainConfig(), steps=args.steps)
    report = build(Path(args.out) if args.out else EMBEDDED_DIR, config)
    print(f"harness: embedded model written: {report}")
    return 0
