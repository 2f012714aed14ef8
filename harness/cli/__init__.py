"""The `harness` command line: `python -m harness COMMAND ...`, one module per command in this package.

Each command module has HELP, DESCRIPTION, `add_arguments(parser)` and `main(args) -> int`; domain code returns data,
the command prints. Command modules import their heavy dependencies inside `main`, so `--help` stays quick.
"""

from __future__ import annotations

import argparse
import importlib
import os
import sys
import threading
from collections.abc import Sequence

from harness import distributed
from harness.cli._failures import describe_exit, describe_os_failure, os_failure
from harness.errors import UserError
from harness.records.runlog import redact

COMMANDS = {
    "run": "run",
    "score": "score",
    "runs": "runs",
    "compare": "compare",
    "clean": "clean",
    "gate": "gate",
    "sweep": "sweep",
    "build-model": "build_model",
}


def parser() -> argparse.ArgumentParser:
    top = argparse.ArgumentParser(
        prog="python -m harness",
        description="Evaluation-first LoRA fine-tuning of Japanese causal LMs: train, debate, score, log.",
    )
    sub = top.add_subparsers(dest="command", required=True, metavar="COMMAND")
    for name, module_name in COMMANDS.items():
        module = importlib.import_module(f"harness.cli.{module_name}")
        command = sub.add_parser(name, help=module.HELP, description=module.DESCRIPTION)
        module.add_arguments(command)
        command.set_defaults(func=module.main)
    return top


def main(argv: Sequence[str] | None = None) -> int:
    top = parser()
    args, extra = top.parse_known_args(argv)
    # KEY=VALUE settings may follow options too (`run EXP --max-steps 20 lora.r=16`, as a sweep agent writes them)
    if extra and isinstance(getattr(args, "settings", None), list) and all("=" in w[1:] for w in extra):
        args.settings += extra
    elif extra:
        top.error(f"unrecognized arguments: {' '.join(extra)}")
    try:
        return int(args.func(args))
    except UserError as exc:
        if distributed.is_main():  # every rank of a launch meets the same mistake: say it once
            print(redact(f"harness: error: {exc}"), file=sys.stderr)
        return 2
    except KeyboardInterrupt:
        print("harness: interrupted", file=sys.stderr)
        return 130
    except SystemExit as exc:  # arguments are parsed: only user code exits here, and exit 0 must not pass a gate
        print(redact(f"harness: error: {describe_exit(exc)}"), file=sys.stderr)
        return 2
    except Exception as exc:
        if (failure := os_failure(exc)) is None:
            raise
        print(redact(f"harness: error: {describe_os_failure(failure)}"), file=sys.stderr)
        return 2


def entry() -> None:
    """`python -m harness` and the `harness` script: exit with main's code even when user code (an experiment file)
    left a non-daemon thread running, which would otherwise keep the process alive after the error is printed."""
    code = main()
    if any(t is not threading.main_thread() and t.is_alive() and not t.daemon for t in threading.enumerate()):
        sys.stdout.flush()
        sys.stderr.flush()
        os._exit(code)
    sys.exit(code)
