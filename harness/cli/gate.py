"""`harness gate EXPERIMENT`: fail (exit 1) when a cleaning rule change makes the data or the trained model worse."""

from __future__ import annotations

import argparse
import json
import time
from pathlib import Path

from harness.errors import UserError
from harness.gate.gate import (
    _rules_from,
    baseline_path,
    compare,
    gate_spec,
    raw_texts,
    read_baseline,
    seed_result,
    side,
    side_at_revision,
    train_key,
    write_baseline,
)
from harness.gate.stats import markdown
from harness.spec.load import load_experiment

HELP = "fail (exit 1) when a cleaning rule change makes the data or the trained model worse"
DESCRIPTION = (
    "Compare a candidate rule set with a baseline. First the raw documents cleaned by both, paired per document "
    "(topic or fluency lost, characters removed, documents/characters/topic documents kept, artefact rate); then, "
    "unless those already fail, K short fine-tunes of the embedded model per side, seed s of each side sharing its "
    "initialisation and data order, read through fixed probe sets (bits per character, topic terms, artefact "
    "mass) and tested over the per-seed differences, stopping early when clear; seed 0's debates are scored by the "
    "rubrics as a secondary check. Exit 1 fails, 0 passes, 2 is a usage error. Writes EXPERIMENT.gate.json and .md "
    "under --out."
)


def add_arguments(parser: argparse.ArgumentParser) -> None:
    parser.add_argument("experiment", help="experiment file whose gate settings and data to use")
    parser.add_argument("--rules", metavar="MODULE.py:NAME", help="candidate rule set (default: the experiment's)")
    source = parser.add_mutually_exclusive_group()
    source.add_argument("--against", metavar="GIT_REV", help="baseline: the experiment's rules at a git revision")
    source.add_argument("--baseline", metavar="FILE", help="baseline file (default: EXPERIMENT.gate-baseline.json)")
    parser.add_argument("--update-baseline", action="store_true", help="bless the candidate into the baseline file")
    parser.add_argument("--out", default="runs/gate", help="where EXPERIMENT.gate.{json,md} go (default: runs/gate)")


def main(args: argparse.Namespace) -> int:
    started = time.perf_counter()
    experiment_file = Path(args.experiment).resolve()
    experiment = load_experiment(args.experiment)
    gate = gate_spec(experiment)
    raw = raw_texts(experiment, experiment_file)
    if args.rules:
        label, rules = _rules_from(args.rules)
    else:
        label, rules = f"{Path(args.experiment).name} rules", experiment.cleaning
    candidate = side(label, raw, rules)
    path = Path(args.baseline) if args.baseline else baseline_path(experiment_file)
    if args.update_baseline:
        if args.against:
            raise UserError("--update-baseline blesses the candidate into a baseline file; give no --against with it")
        key = train_key(experiment)
        for seed in range(gate.seed, gate.seed + gate.seeds):
            seed_result(experiment, candidate, seed, key)
        candidate.train_key = key
        write_baseline(path, candidate)
        print(f"harness: gate baseline written: {path} ({time.perf_counter() - started:.0f} s)")
        return 0
    baseline = side_at_revision(args.against, experiment_file) if args.against else read_baseline(path, raw)
    result = compare(experiment, baseline, candidate)
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
