"""`harness gate EXPERIMENT`: fail (exit 1) when a cleaning rule change makes the trained model worse."""

from __future__ import annotations

import argparse
import json
import sys
import time
from pathlib import Path

from harness.errors import UserError
from harness.gate.gate import (
    Side,
    _rules_from,
    _side,
    baseline_path,
    compare,
    read_baseline,
    side_at_revision,
    train_and_debate,
    train_key,
    write_baseline,
)
from harness.gate.stats import markdown
from harness.spec.load import load_experiment
from harness.spec.profiles import gate_spec

HELP = "fail (exit 1) when a cleaning rule change makes the trained model worse"
DESCRIPTION = (
    "Compare a candidate rule set with a baseline: the cleaned corpora (artefact rate, retention, "
    "rubric means) and a short deterministic fine-tune of the embedded model on each, every conversation scored "
    "and paired, with a paired bootstrap interval per rubric. Fails (exit 1) when a rubric moves the wrong way "
    "beyond the experiment's tolerance with the interval excluding zero; exit 0 passes, 2 is a usage error. "
    "Writes EXPERIMENT.gate.json and .md under --out."
)


def add_arguments(parser: argparse.ArgumentParser) -> None:
    parser.add_argument("experiment", help="experiment file whose gate settings and data to use")
    parser.add_argument("--rules", metavar="MODULE.py:NAME", help="candidate rule set (default: the experiment's)")
    source = parser.add_mutually_exclusive_group()
    source.add_argument("--against", metavar="GIT_REV", help="baseline: the experiment's rules at a git revision")
    source.add_argument("--baseline", metavar="FILE", help="baseline file (default: EXPERIMENT.gate-baseline.json)")
    parser.add_argument("--update-baseline", action="store_true", help="bless the candidate into the baseline file")
    parser.add_argument("--out", default="runs/gate", help="where EXPERIMENT.gate.{json,md} go (default: runs/gate)")


def _checked(side: Side, path: Path) -> Side:
    """A baseline file of the wrong shape is the user's to fix in one line (exit 2), never a traceback or exit 1."""

    def strings(value: object) -> bool:
        return isinstance(value, list) and all(isinstance(v, str) for v in value)

    def conversation(c: object) -> bool:
        return (isinstance(c, dict) and isinstance(c.get("step"), int) and isinstance(c.get("scenario"), str)
                and isinstance(c.get("topic"), str) and isinstance(c.get("turns"), list)
                and all(isinstance(t, dict) and isinstance(t.get("speaker"), str) and isinstance(t.get("text"), str)
                        for t in c["turns"]))  # fmt: skip

    problems = {
        "rules": strings(side.rules),
        "texts": strings(side.texts) and bool(side.texts),
        "raw_count": isinstance(side.raw_count, int) and side.raw_count > 0,
        "train_key": side.train_key is None or isinstance(side.train_key, str),
        "conversations": side.conversations is None
        or (isinstance(side.conversations, list) and all(conversation(c) for c in side.conversations)),
    }
    if bad := [field for field, ok in problems.items() if not ok]:
        raise UserError(f"{path}: not a gate baseline file ({', '.join(bad)} of the wrong shape); write it again "
                        "with --update-baseline")  # fmt: skip
    return side


def main(args: argparse.Namespace) -> int:
    started = time.perf_counter()
    experiment_file = Path(args.experiment).resolve()
    experiment = load_experiment(args.experiment)
    gate_spec(experiment)
    if args.rules:
        label, rules = _rules_from(args.rules)
    else:
        label, rules = f"{Path(args.experiment).name} rules", experiment.cleaning
    candidate = _side(label, experiment, experiment_file, rules)
    path = Path(args.baseline) if args.baseline else baseline_path(experiment_file)
    if args.update_baseline:
        if args.against:
            raise UserError("--update-baseline blesses the candidate into a baseline file; give no --against with it")
        candidate.conversations = train_and_debate(experiment, experiment_file, candidate.texts)
        candidate.train_key = train_key(experiment)
        write_baseline(path, candidate)
        print(f"harness: gate baseline written: {path} ({time.perf_counter() - started:.0f} s)")
        return 0
    baseline = side_at_revision(args.against, experiment_file) if args.against else _checked(read_baseline(path), path)
    if baseline.conversations is not None and baseline.train_key != train_key(experiment):
        print(f"harness: {path.name} was trained under other settings or code; retraining the baseline from its "
              "texts (--update-baseline saves this)", file=sys.stderr, flush=True)  # fmt: skip
    result = compare(experiment, experiment_file, baseline, candidate)
    result["seconds"] = round(time.perf_counter() - started, 1)
    out = Path(args.out)
    try:
        out.mkdir(parents=True, exist_ok=True)
        (out / f"{experiment.name}.gate.json").write_text(json.dumps(result, ensure_ascii=False, indent=1) + "\n")
        (out / f"{experiment.name}.gate.md").write_text(markdown(result))
    except OSError as exc:
        raise UserError(f"--out {out}: cannot write there ({exc.strerror})") from None
    print(markdown(result) + f"\nwritten: {out / experiment.name}.gate.{{json,md}} ({result['seconds']} s)")
    return 0 if result["verdict"] == "pass" else 1
