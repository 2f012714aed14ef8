"""`harness score IN.jsonl [-o OUT.jsonl]`: every registered rubric over JSON lines of conversations."""

from __future__ import annotations

import argparse
import os
import sys
from pathlib import Path
from typing import Any

from harness.errors import UserError
from harness.evaluation.scoring import read_items, write_scored
from rubrics.records import Conversation

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
        _write_whole(Path(args.output), items)
    else:
        write_scored(sys.stdout, items)
    if skipped:
        print(f"harness score: skipped {skipped} malformed line(s) of {args.input}", file=sys.stderr)
    return 0


def _write_whole(path: Path, items: list[tuple[Any, Conversation]]) -> None:
    """All of the output or none of it: lines go to a temporary file beside OUT, renamed over OUT once complete."""
    partial = path.with_name(f".{path.name}.partial")
    try:
        with partial.open("w", encoding="utf-8") as out:
            write_scored(out, items)
        os.replace(partial, path)
    except OSError as e:
        partial.unlink(missing_ok=True)
        raise UserError(f"{path}: cannot write ({e.strerror}); nothing was written there") from None
    except BaseException:
        partial.unlink(missing_ok=True)
        raise
