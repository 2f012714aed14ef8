"""`harness clean EXPERIMENT`: write the cleaned corpus as JSON lines and print what each rule did."""

from __future__ import annotations

import argparse
import json
from pathlib import Path

from harness.data.cleaning import stats_table
from harness.data.corpus import load_corpus
from harness.errors import UserError
from harness.spec.load import load_experiment

HELP = "clean an experiment's corpus with its rules and print what each rule did"
DESCRIPTION = (
    "Run the experiment's cleaning rules (HojiChar filters, in order) over its data, write the "
    "cleaned documents as JSON lines and print a per-rule table: documents in/out, removed, changed, characters "
    "removed and examples of each rule's effect."
)


def add_arguments(parser: argparse.ArgumentParser) -> None:
    parser.add_argument("experiment", help="experiment file, e.g. experiments/kaggle_debate.py")
    parser.add_argument("-o", "--out", help="output .jsonl (default: runs/cleaned/EXPERIMENT.jsonl)")


def main(args: argparse.Namespace) -> int:
    experiment = load_experiment(args.experiment)
    corpus = load_corpus(experiment.data, experiment.cleaning, Path(args.experiment))
    out = Path(args.out or f"runs/cleaned/{experiment.name}.jsonl")
    try:
        out.parent.mkdir(parents=True, exist_ok=True)
        out.write_text("".join(json.dumps({"text": t}, ensure_ascii=False) + "\n" for t in corpus.texts), "utf-8")
    except OSError as exc:
        raise UserError(f"--out {out}: cannot write there ({exc.strerror})") from None
    print(stats_table(corpus.stats))
    print(f"harness: {len(corpus.texts)} of {corpus.raw_count} documents kept, written to {out}")
    return 0
