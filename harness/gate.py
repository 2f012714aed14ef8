"""`harness gate`: does a cleaning change make the trained model worse? Data level, model level, one verdict."""

from __future__ import annotations

import argparse
import contextlib
import dataclasses
import hashlib
import json
import os
import statistics
import subprocess
import sys
import tempfile
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from harness.cleaning import as_rules, rule_name
from harness.errors import UserError
from harness.experiment import Experiment, GateSpec
from harness.gate_stats import compare_rubric, markdown
from harness.load import load_experiment
from rubrics.records import Conversation, Turn

THREADS = 1
"""Torch threads of the gate's fine-tune: bit-identical results need a fixed count; one thread is not slowed ~10x
when another process holds the second core."""
_TRAINING_CODE = ("train.py", "evaluation.py", "debate.py", "generation.py", "model.py", "data.py", "callback.py",
                  "embedded.py")  # fmt: skip
_HERE = Path(__file__).parent
_memo: dict[str, list[dict[str, Any]]] = {}


@dataclass
class Side:
    """One rule set's cleaned corpus and, once trained, its scored conversations."""

    label: str
    rules: list[str]
    texts: list[str]
    raw_count: int
    conversations: list[dict[str, Any]] | None = None
    train_key: str | None = None


def _sha(value: Any) -> str:
    data = value if isinstance(value, bytes) else json.dumps(value, ensure_ascii=False, sort_keys=True).encode()
    return hashlib.sha256(data).hexdigest()[:16]


def gate_spec(experiment: Experiment) -> GateSpec:
    if experiment.gate is None:
        raise UserError(f"experiment {experiment.name!r} declares no gate (Experiment.gate = GateSpec(...))")
    return experiment.gate


def gate_experiment(experiment: Experiment) -> Experiment:
    """The cpu profile with the gate's short schedule; checkpoints only at the end."""
    gate, cpu = gate_spec(experiment), experiment.for_profile("cpu")
    training = dataclasses.replace(cpu.training, max_steps=gate.max_steps, seed=gate.seed, save_steps=gate.max_steps,
                                   warmup_steps=min(cpu.training.warmup_steps, gate.max_steps))  # fmt: skip
    return dataclasses.replace(cpu, training=training, eval_every=min(gate.eval_every, gate.max_steps))


def train_key(experiment: Experiment) -> str:
    """Everything but the data that decides the gate's fine-tune: schedule, model files, training code, versions."""
    from importlib import metadata

    ignored = ("name", "cleaning", "rubrics")  # the data is hashed apart; conversations are rescored by today's rubrics
    config = {k: v for k, v in gate_experiment(experiment).to_config().items() if k not in ignored}
    model_dir = _HERE / "assets" / "tiny-gpt-neox-japanese"
    files = {p.name: _sha(p.read_bytes()) for p in sorted(model_dir.iterdir()) if p.is_file()}
    code = {name: _sha((_HERE / name).read_bytes()) for name in _TRAINING_CODE}
    versions = {name: metadata.version(name) for name in ("torch", "transformers", "peft")}
    return _sha({"config": config, "model": files, "code": code, "versions": versions, "threads": THREADS})


@contextlib.contextmanager
def _quiet_training() -> Iterator[None]:
    """No W&B run and a fixed thread count while the gate trains; both restored afterwards."""
    import torch

    mode, threads = os.environ.get("WANDB_MODE"), torch.get_num_threads()
    os.environ["WANDB_MODE"] = "disabled"
    torch.set_num_threads(THREADS)
    try:
        yield
    finally:
        torch.set_num_threads(threads)
        if mode is None:
            os.environ.pop("WANDB_MODE", None)
        else:
            os.environ["WANDB_MODE"] = mode


def train_and_debate(experiment: Experiment, experiment_file: Path, texts: list[str]) -> list[dict[str, Any]]:
    """Fine-tune the embedded model on `texts` under the gate's schedule; every conversation after step 0."""
    from harness.data import Corpus
    from harness.runlog import RunLog, read_run
    from harness.train import Plan, _train

    key = _sha([train_key(experiment), texts])
    if key in _memo:  # identical data and settings train to identical weights: no second run in one process
        return _memo[key]
    spec = gate_experiment(experiment)
    with tempfile.TemporaryDirectory(prefix="harness-gate-") as tmp, _quiet_training():
        run_dir = Path(tmp) / "run"
        run_dir.mkdir()
        runlog = RunLog(run_dir)
        header = {"run_id": f"gate-{key}", "experiment": spec.to_config(), "profile": "cpu", "argv": sys.argv}
        runlog.write("header", **header)
        plan = Plan(spec, experiment_file, "cpu", "harness gate", {}, cuda=False)
        status = _train(plan, Corpus(experiment_file, texts, [], len(texts), []), run_dir, runlog, header, strict=True)
        if status != "completed":
            raise UserError(f"the gate's fine-tune ended {status}")
        rows = [c for c in read_run(run_dir).conversations() if c["step"] > 0]
    _memo[key] = [{k: c[k] for k in ("step", "scenario", "topic", "turns")} for c in rows]
    return _memo[key]


def score(conversations: list[dict[str, Any]], experiment: Experiment) -> dict[tuple[int, str], dict[str, float]]:
    """Every conversation (re)scored with the experiment's current rubrics, keyed by (step, scenario)."""
    parsed = [Conversation(tuple(Turn(t["speaker"], t["text"]) for t in c["turns"]), c["scenario"], c["topic"])
              for c in conversations]  # fmt: skip
    values = {r.name: [s.value for s in r.many(parsed)] for r in experiment.rubrics}
    return {(c["step"], c["scenario"]): {name: v[i] for name, v in values.items()} for i, c in enumerate(conversations)}


def data_level(side: Side, experiment: Experiment) -> dict[str, float]:
    """The cleaned corpus: documents kept, the share with a tweet artefact, and each rubric's mean over the texts."""
    from rubrics.contamination import find_artefacts

    docs = [Conversation.from_text(t) for t in side.texts]
    metrics = {
        "documents": float(len(side.texts)),
        "retention": len(side.texts) / side.raw_count,
        "artefact_rate": sum(bool(find_artefacts(t)) for t in side.texts) / max(len(side.texts), 1),
    }
    return metrics | {r.name: statistics.fmean(r(d).value for d in docs) for r in experiment.rubrics}


def _data_rows(base: dict[str, float], cand: dict[str, float], experiment: Experiment) -> list[dict[str, Any]]:
    lower_is_better = {"artefact_rate"} | {r.name for r in experiment.rubrics if not r.higher_is_better}
    tolerances = gate_spec(experiment).data_tolerances
    rows = []
    for metric in base:
        difference = cand[metric] - base[metric]
        harm = difference if metric in lower_is_better else -difference
        verdict = ("fail" if harm > tolerances[metric] else "pass") if metric in tolerances else "info"
        rows.append({"metric": metric, "baseline": base[metric], "candidate": cand[metric], "difference": difference,
                     "tolerance": tolerances.get(metric), "verdict": verdict})  # fmt: skip
    return rows


def compare(experiment: Experiment, experiment_file: Path, baseline: Side, candidate: Side) -> dict[str, Any]:
    """The gate result: data-level rows, model-level rows with paired bootstrap intervals, and the verdict."""
    gate = gate_spec(experiment)
    key = train_key(experiment)
    if baseline.conversations is not None and baseline.train_key == key:  # a blessed baseline is a cache entry
        _memo.setdefault(_sha([key, baseline.texts]), baseline.conversations)
    for side in (baseline, candidate):
        if side.conversations is None or side.train_key != key:
            side.conversations, side.train_key = train_and_debate(experiment, experiment_file, side.texts), key
    assert baseline.conversations is not None and candidate.conversations is not None
    base, cand = score(baseline.conversations, experiment), score(candidate.conversations, experiment)
    paired = sorted(base.keys() & cand.keys())
    rows = []
    for r in (r for r in experiment.rubrics if r.name in gate.tolerances):
        pairs = [(base[k][r.name], cand[k][r.name]) for k in paired]
        tolerance = gate.tolerances[r.name]
        rows.append(compare_rubric(r.name, pairs, tolerance, r.higher_is_better, gate.resamples, gate.seed,
                                   gate.confidence))  # fmt: skip
    data = _data_rows(data_level(baseline, experiment), data_level(candidate, experiment), experiment)
    failed = any(r["verdict"] == "fail" for r in rows + data)
    return {
        "verdict": "fail" if failed else "pass",
        "experiment": experiment.name,
        "baseline": {"label": baseline.label, "rules": baseline.rules},
        "candidate": {"label": candidate.label, "rules": candidate.rules},
        "conversations": len(paired),
        "train_key": key,
        "settings": dataclasses.asdict(gate),
        "rubrics": rows,
        "data": data,
    }


def _rules_from(reference: str) -> tuple[str, tuple[Any, ...]]:
    """`MODULE.py:NAME` -> (label, rules): a list or Compose of HojiChar filters named NAME in that file."""
    import importlib.util

    path, _, name = reference.rpartition(":")
    if not path.endswith(".py") or not name:
        raise UserError(f"--rules {reference}: give MODULE.py:NAME, e.g. experiments/my_rules.py:rules")
    file = Path(path)
    if not file.is_file():
        raise UserError(f"--rules {reference}: no such file {path}")
    spec = importlib.util.spec_from_file_location(f"harness_rules_{file.stem}", file)
    assert spec is not None and spec.loader is not None
    module = importlib.util.module_from_spec(spec)
    try:
        spec.loader.exec_module(module)
    except Exception as exc:
        raise UserError(f"--rules {reference}: {type(exc).__name__}: {exc}") from None
    rules = as_rules(getattr(module, name, None))
    if rules is None:
        raise UserError(f"--rules {reference}: {name} must be a list of HojiChar filters or a hojichar.Compose")
    return reference, rules


def _side(label: str, experiment: Experiment, experiment_file: Path, rules: tuple[Any, ...]) -> Side:
    from harness.data import load_corpus

    corpus = load_corpus(experiment.data, rules, experiment_file)
    return Side(label, [rule_name(r) for r in rules], corpus.texts, corpus.raw_count)


_AT_REVISION = """import json, sys
from pathlib import Path
from harness.data import load_corpus
from harness.load import load_experiment
e = load_experiment(sys.argv[1])
c = load_corpus(e.data, e.cleaning, Path(sys.argv[1]).resolve())
names = [getattr(r, "name", None) or type(r).__name__ for r in e.cleaning]
print(json.dumps({"texts": c.texts, "raw": c.raw_count, "rules": names}, ensure_ascii=False))
"""


def side_at_revision(revision: str, experiment_file: Path) -> Side:
    """The experiment's cleaned corpus as the code and rules at `revision` make it (run in a pristine export)."""
    root = subprocess.run(["git", "-C", str(experiment_file.parent), "rev-parse", "--show-toplevel"],
                          capture_output=True, text=True).stdout.strip()  # fmt: skip
    if not root:
        raise UserError(f"--against {revision}: {experiment_file} is not in a git repository")
    relative = experiment_file.resolve().relative_to(Path(root).resolve())
    with tempfile.TemporaryDirectory(prefix="harness-gate-rev-") as tmp:
        archive = subprocess.run(["git", "-C", root, "archive", "--format=tar", revision], capture_output=True)
        if archive.returncode != 0:
            raise UserError(f"--against {revision}: {archive.stderr.decode().strip() or 'not a git revision'}")
        subprocess.run(["tar", "-x", "-C", tmp], input=archive.stdout, check=True)
        env = {**os.environ, "PYTHONPATH": tmp}
        done = subprocess.run([sys.executable, "-c", _AT_REVISION, str(relative)], cwd=tmp, env=env,
                              capture_output=True, text=True)  # fmt: skip
    if done.returncode != 0:
        last = (done.stderr.strip().splitlines() or ["no output"])[-1]
        raise UserError(f"--against {revision}: cleaning at that revision failed: {last}")
    out = json.loads(done.stdout.strip().splitlines()[-1])
    return Side(f"git {revision}", out["rules"], out["texts"], out["raw"])


def baseline_path(experiment_file: Path) -> Path:
    return experiment_file.with_name(f"{experiment_file.stem}.gate-baseline.json")


def read_baseline(path: Path) -> Side:
    try:
        data = json.loads(path.read_text(encoding="utf-8"))
        return Side(f"baseline file {path.name}", data["rules"], data["texts"], data["raw_count"],
                    data["conversations"], data["train_key"])  # fmt: skip
    except FileNotFoundError:
        raise UserError(f"{path}: no baseline file; bless the current rules with --update-baseline") from None
    except (json.JSONDecodeError, KeyError, TypeError) as exc:
        raise UserError(f"{path}: not a gate baseline file ({exc}); write it again with --update-baseline") from None


def write_baseline(path: Path, side: Side) -> None:
    """The baseline's cleaned texts (so it can be retrained when training settings change) and its conversations."""
    data = {"rules": side.rules, "raw_count": side.raw_count, "train_key": side.train_key,
            "texts": side.texts, "conversations": side.conversations}  # fmt: skip
    path.write_text(json.dumps(data, ensure_ascii=False, indent=1) + "\n", encoding="utf-8")


def add_arguments(parser: argparse.ArgumentParser) -> None:
    parser.add_argument("experiment", help="experiment file whose gate settings and data to use")
    parser.add_argument("--rules", metavar="MODULE.py:NAME", help="candidate rule set (default: the experiment's)")
    source = parser.add_mutually_exclusive_group()
    source.add_argument("--against", metavar="GIT_REV", help="baseline: the experiment's rules at a git revision")
    source.add_argument("--baseline", metavar="FILE", help="baseline file (default: EXPERIMENT.gate-baseline.json)")
    parser.add_argument("--update-baseline", action="store_true", help="bless the candidate into the baseline file")
    parser.add_argument("--out", default="runs/gate", help="where EXPERIMENT.gate.{json,md} go (default: runs/gate)")


def main(args: argparse.Namespace) -> int:
    import time

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
    baseline = side_at_revision(args.against, experiment_file) if args.against else read_baseline(path)
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
