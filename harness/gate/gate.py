"""`harness gate`: does a cleaning change make the trained model worse? Data level, model level, one verdict."""

from __future__ import annotations

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

from harness.errors import UserError
from harness.gate.stats import compare_rubric
from harness.spec.experiment import EMBEDDED_DIR, Experiment
from harness.spec.profiles import gate_experiment, gate_spec
from harness.spec.rules import as_rules, rule_name
from rubrics.records import Conversation, Turn

THREADS = 1
"""Torch threads of the gate's fine-tune: bit-identical results need a fixed count; one thread is not slowed ~10x
when another process holds the second core."""
_PACKAGE = Path(__file__).resolve().parents[1]
# Every module of the packages a gate fine-tune and its debates run through: a new file there is in the key too.
TRAINING_PATH = ("spec", "data", "training", "evaluation")
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


def train_key(experiment: Experiment) -> str:
    """Everything but the data that decides the gate's fine-tune: schedule, model files, training code, versions."""
    from importlib import metadata

    ignored = ("name", "cleaning", "rubrics")  # the data is hashed apart; conversations are rescored by today's rubrics
    config = {k: v for k, v in gate_experiment(experiment).to_config().items() if k not in ignored}
    files = {p.name: _sha(p.read_bytes()) for p in sorted(EMBEDDED_DIR.iterdir()) if p.is_file()}
    code = {
        str(p.relative_to(_PACKAGE)): _sha(p.read_bytes())
        for package in TRAINING_PATH
        for p in sorted((_PACKAGE / package).rglob("*.py"))
    }
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
    from harness.data.corpus import Corpus
    from harness.records.runlog import RunLog, read_run
    from harness.training.run import Plan, fit

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
        status = fit(plan, Corpus(experiment_file, texts, [], len(texts), []), run_dir, runlog, header, strict=True)
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
    from harness.data.corpus import load_corpus

    corpus = load_corpus(experiment.data, rules, experiment_file)
    return Side(label, [rule_name(r) for r in rules], corpus.texts, corpus.raw_count)


_AT_REVISION = """import json, sys
from pathlib import Path
try:
    from harness.data.corpus import load_corpus
    from harness.spec.load import load_experiment
except ImportError:  # a revision from before the stage packages
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
