"""`harness score IN.jsonl [-o OUT.jsonl]`: every registered rubric over JSON lines of conversations."""

from __future__ import annotations

import argparse
import sys
from pathlib import Path

from harness.errors import UserError
from harness.evaluation.scoring import read_items, write_scored

HELP = "score JSON lines of texts or conversations with every rubric"
DESCRIPTION = (
    "Read JSON lines ({'id', 'text'} or {'id', 'turns': [{'speaker', 'text'}]}) and write one line "
    "per input, in order: {'id', 'scores', 'artefacts', 'evidence'}."
)


def add_arguments(parser: argparse.ArgumentParser) -> None:
    parser.add_argument("input", help="JSON lines to score, one text or conversation per line ('-' for stdin)")
    parser.add_argument("-o", "--output", help="where to write the scored lines (default: standard output)")
    parser.add_argument(
        "--skip-bad", action="store_true", help="skip malformed lines (counted on stderr) instead of stopping"
    )


def main(args: argparse.Namespace) -> int:
    items, skipped = read_items(args.input, args.skip_bad)
    if args.output:
        try:
            with Path(args.output).open("w", encoding="utf-8") as out:
                write_scored(out, items)
        except OSError as e:
            raise UserError(f"{args.output}: cannot write ({e.strerror})") from None
    else:
        write_scored(sys.stdout, items)
    if skipped:
        print(f"harness score: skipped {skipped} malformed line(s) of {args.input}", file=sys.stderr)
    return 0
