"""The cleaning gate: does a rule change make the data or the trained model worse? Paired checks, one verdict."""

from __future__ import annotations

import dataclasses
import hashlib
import json
import os
import subprocess
import sys
import tempfile
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from harness.errors import UserError
from harness.gate import paired, probes
from harness.gate.finetune import THREADS, fine_tune
from harness.gate.stats import compare_rubric, decided, probe_rows
from harness.spec.experiment import EMBEDDED_DIR, Experiment, GateSpec
from harness.spec.profiles import gate_experiment
from harness.spec.profiles import gate_spec as declared_gate
from harness.spec.rules import as_rules, rule_name
from rubrics.records import Conversation, Turn

BASELINE_VERSION = 2
_PACKAGE = Path(__file__).resolve().parents[1]
# Every module of the packages a gate fine-tune, its probes and debates run through (the gate's own package too):
# a new file there is in the key as well.
TRAINING_PATH = ("spec", "data", "training", "evaluation", "gate")
_memo: dict[str, dict[str, Any]] = {}


@dataclass
class Side:
    """One rule set's cleaning of the raw corpus and, once trained, its per-seed probe results."""

    label: str
    rules: list[str]
    raw: list[str]
    cleaned: list[str | None]
    """Each raw document's cleaned text, None where a rule dropped it."""
    results: dict[int, dict[str, Any]] = field(default_factory=dict)
    """Seed -> {"probes": {...}, "conversations": [...] or None} (a blessed baseline's, or trained here)."""
    train_key: str | None = None

    def documents(self) -> list[tuple[str, str]]:
        """(stable key, cleaned text) of each kept document, in raw order."""
        return [(k, t) for k, t in zip(paired.keys(self.raw), self.cleaned, strict=True) if t is not None]


def _sha(value: Any) -> str:
    data = value if isinstance(value, bytes) else json.dumps(value, ensure_ascii=False, sort_keys=True).encode()
    return hashlib.sha256(data).hexdigest()[:16]


def gate_spec(experiment: Experiment) -> GateSpec:
    """The experiment's gate, its probe and data tolerances checked against the measures that exist."""
    gate = declared_gate(experiment)
    for name, known in (("probe_tolerances", probes.HIGHER_IS_BETTER), ("data_tolerances", paired.CHECKS)):
        if unknown := sorted(set(getattr(gate, name)) - set(known)):
            raise UserError(f"GateSpec.{name}: {unknown} are not gate measures; known: {', '.join(known)}")
    return gate


def _code_files() -> dict[str, str]:
    """Every .py file of the training path's packages (whole directories, no hand-kept list) and the probe set."""
    files = sorted(p for package in TRAINING_PATH for p in (_PACKAGE / package).rglob("*.py"))
    return {str(p.relative_to(_PACKAGE)): _sha(p.read_bytes()) for p in files} | {"probes": probes.probe_set().version}


def train_key(experiment: Experiment) -> str:
    """Everything but the data that decides a gate fine-tune and its probes: schedule, model files, code, versions."""
    from importlib import metadata

    gate = gate_spec(experiment)
    ignored = ("name", "cleaning", "rubrics", "gate")  # the data is hashed apart; conversations are rescored
    config = {k: v for k, v in gate_experiment(experiment).to_config().items() if k not in ignored}
    files = {p.name: _sha(p.read_bytes()) for p in sorted(EMBEDDED_DIR.iterdir()) if p.is_file()}
    versions = {name: metadata.version(name) for name in ("torch", "transformers", "peft")}
    return _sha({"config": config, "max_steps": gate.max_steps, "model": files, "code": _code_files(),
                 "versions": versions, "threads": THREADS})  # fmt: skip


def seed_result(
    experiment: Experiment, side: Side, seed: int, key: str, adapters: Path | None = None
) -> dict[str, Any]:
    """Seed `seed`'s probes (and, for the first seed, debates) of `side`: its blessed result, memo, or a fine-tune.

    `adapters` (calibration only) keeps each fine-tune's adapter and result under a name that hashes the schedule,
    data and seed but not the code, so a rerun re-reads them; empty it when the training or probe code changes."""
    if side.train_key == key and seed in side.results:
        return side.results[seed]
    documents = side.documents()
    memo = _sha([key, documents, seed])
    if memo not in _memo:
        first = seed == gate_spec(experiment).seed
        spec = gate_experiment(experiment)
        stem = adapters / _sha([spec.to_config(), documents, seed]) if adapters else None
        saved = stem.with_suffix(".json") if stem else None
        if saved and saved.exists() and (not first or json.loads(saved.read_text())["conversations"] is not None):
            _memo[memo] = json.loads(saved.read_text(encoding="utf-8"))
        else:
            adapter = stem.with_suffix(".safetensors") if stem else None
            result = fine_tune(spec, documents, seed, debates=first, cache=adapter)
            _memo[memo] = {"probes": result["probes"], "conversations": result["conversations"]}
            if saved:
                saved.write_text(json.dumps(_memo[memo], ensure_ascii=False), encoding="utf-8")
    side.results[seed] = _memo[memo]
    return _memo[memo]


def _conversations(rows: list[dict[str, Any]]) -> list[Conversation]:
    return [Conversation(tuple(Turn(t["speaker"], t["text"]) for t in c["turns"]), c["scenario"], c["topic"])
            for c in rows]  # fmt: skip


def generation_rows(experiment: Experiment, base: list[dict[str, Any]], cand: list[dict[str, Any]]) -> list[Any]:
    """The secondary check: seed 0's debates of both sides scored by today's rubrics, paired by scenario."""
    gate = gate_spec(experiment)
    scored = []
    for rows in (base, cand):
        conversations = _conversations(rows)
        values = {r.name: [s.value for s in r.many(conversations)] for r in experiment.rubrics}
        scored.append({c.scenario: {n: v[i] for n, v in values.items()} for i, c in enumerate(conversations)})
    scenarios = sorted(scored[0].keys() & scored[1].keys())
    out = []
    for r in experiment.rubrics:
        pairs = [(scored[0][s][r.name], scored[1][s][r.name]) for s in scenarios]
        row = compare_rubric(r.name, pairs, gate.tolerances.get(r.name, 0.0), r.higher_is_better, gate.resamples,
                             gate.seed, gate.confidence)  # fmt: skip
        if r.name not in gate.tolerances:
            row["tolerance"], row["verdict"] = None, "info"
        out.append(row)
    return out


def aligned(baseline: Side, candidate: Side) -> tuple[list[str | None], list[str | None]]:
    """The two sides' cleaned texts over the union of their raw documents (a document one side lacks: None)."""
    base = dict(zip(paired.keys(baseline.raw), baseline.cleaned, strict=True))
    cand = dict(zip(paired.keys(candidate.raw), candidate.cleaned, strict=True))
    order = list(dict.fromkeys([*cand, *base]))
    return [base.get(k) for k in order], [cand.get(k) for k in order]


def compare(experiment: Experiment, baseline: Side, candidate: Side, adapters: Path | None = None,
            model_level_always: bool = False) -> dict[str, Any]:  # fmt: skip
    """The gate result: paired data checks, then (unless they already failed) the paired-seed probes, one verdict."""
    gate = gate_spec(experiment)
    data = paired.rows(paired.measure(*aligned(baseline, candidate)), gate.data_tolerances)
    result: dict[str, Any] = {
        "experiment": experiment.name,
        "baseline": {"label": baseline.label, "rules": baseline.rules},
        "candidate": {"label": candidate.label, "rules": candidate.rules},
        "settings": dataclasses.asdict(gate),
        "data": data,
        "probes": [],
        "rubrics": [],
        "seeds": 0,
        "model_level": "not run: the data level failed, so no fine-tune was needed",
    }
    data_failed = any(r["verdict"] == "fail" for r in data)
    if data_failed and not model_level_always:
        return {"verdict": "fail", **result}
    key = train_key(experiment)
    same = baseline.documents() == candidate.documents()
    if same and baseline.train_key == key:  # identical data trains identical weights: nothing to train
        candidate.results, candidate.train_key = dict(baseline.results), key
    if baseline.train_key != key and baseline.results:
        print("harness: the baseline was trained under other settings or code; retraining its seeds "
              "(--update-baseline saves this)", file=sys.stderr, flush=True)  # fmt: skip
    runs: list[tuple[dict[str, Any], dict[str, Any]]] = []
    rows: list[dict[str, Any]] = []
    for k, seed in enumerate(range(gate.seed, gate.seed + gate.seeds), 1):
        runs.append(tuple(seed_result(experiment, s, seed, key, adapters) for s in (baseline, candidate)))  # type: ignore[arg-type]
        final = k == gate.seeds
        rows = probe_rows([b["probes"] for b, _ in runs], [c["probes"] for _, c in runs], gate.probe_tolerances,
                          probes.HIGHER_IS_BETTER, gate.confidence, final)  # fmt: skip
        if final or (k >= gate.min_seeds and decided(rows)):
            break
    generation = generation_rows(experiment, runs[0][0]["conversations"], runs[0][1]["conversations"])
    failed = data_failed or any(r["verdict"] == "fail" for r in [*rows, *generation])
    model_level = "identical training data: the candidate's fine-tunes are the baseline's" if same else "trained"
    return result | {"verdict": "fail" if failed else "pass", "probes": rows, "rubrics": generation,
                     "seeds": len(runs), "model_level": model_level, "train_key": key}  # fmt: skip


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


def raw_texts(experiment: Experiment, experiment_file: Path) -> list[str]:
    from harness.data.corpus import read_texts, resolve_data_path

    return read_texts(experiment.data, resolve_data_path(experiment.data, experiment_file))[0]


def side(label: str, raw: list[str], rules: tuple[Any, ...]) -> Side:
    """`rules` over the raw corpus; a rule that raises is the rule set's author's error (one line, exit 2)."""
    try:
        cleaned = paired.clean_each(raw, rules)
    except UserError:
        raise
    except Exception as exc:
        raise UserError(f"{label}: a rule raised {type(exc).__name__}: {exc}") from None
    if not any(t is not None for t in cleaned):
        raise UserError(f"{label}: the rules remove all {len(raw)} documents; nothing is left to train on")
    return Side(label, [rule_name(r) for r in rules], raw, cleaned)


_AT_REVISION = """import copy, json, sys
from pathlib import Path
from hojichar import Document
# by file, not by trying imports: the editable install would resolve a module the export lacks from elsewhere
if Path("harness/spec/load.py").is_file():
    from harness.spec.load import load_experiment
else:
    from harness.load import load_experiment
e = load_experiment(sys.argv[1])
data = Path(e.data.path) if Path(e.data.path).is_file() else Path(sys.argv[1]).resolve().parent.parent / e.data.path
lines = data.read_text(encoding="utf-8").splitlines()
raw = [r[e.data.text_field] for r in map(json.loads, filter(str.strip, lines))]
docs = [(i, Document(t)) for i, t in enumerate(raw)]
for rule in copy.deepcopy(tuple(e.cleaning)):
    docs = [(i, d) for i, d in ((i, rule.apply(d)) for i, d in docs) if not d.is_rejected]
cleaned = [None] * len(raw)
for i, d in docs:
    cleaned[i] = d.text
names = [getattr(r, "name", None) or type(r).__name__ for r in e.cleaning]
print(json.dumps({"raw": raw, "cleaned": cleaned, "rules": names}, ensure_ascii=False))
"""


def side_at_revision(revision: str, experiment_file: Path) -> Side:
    """The experiment's corpus as the code, data and rules at `revision` clean it (run in a pristine export)."""
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
    return Side(f"git {revision}", out["rules"], out["raw"], out["cleaned"])


def baseline_path(experiment_file: Path) -> Path:
    return experiment_file.with_name(f"{experiment_file.stem}.gate-baseline.json")


def read_baseline(path: Path, raw: list[str]) -> Side:
    """A blessed baseline: its cleaning of today's raw corpus (checked by hash) and its per-seed probe results."""
    fix = "write it again with --update-baseline"
    try:
        data = json.loads(path.read_text(encoding="utf-8"))
    except FileNotFoundError:
        raise UserError(f"{path}: no baseline file; bless the current rules with --update-baseline") from None
    except (json.JSONDecodeError, UnicodeDecodeError) as exc:
        raise UserError(f"{path}: not a gate baseline file ({exc}); {fix}") from None
    if not isinstance(data, dict) or data.get("version") != BASELINE_VERSION:
        found = data.get("version") if isinstance(data, dict) else type(data).__name__
        raise UserError(f"{path}: not a gate baseline file of version {BASELINE_VERSION} (found {found!r}); {fix}")
    results = data.get("results")
    shapes = {
        "rules": isinstance(data.get("rules"), list) and all(isinstance(r, str) for r in data["rules"]),
        "cleaned": isinstance(data.get("cleaned"), list) and len(data["cleaned"]) == len(raw)
        and all(t is None or isinstance(t, str) for t in data["cleaned"]),
        "train_key": isinstance(data.get("train_key"), str),
        "raw_sha": isinstance(data.get("raw_sha"), str),
        "results": isinstance(results, dict) and all(_result_shape(k, r) for k, r in results.items()),
    }  # fmt: skip
    if bad := [name for name, ok in shapes.items() if not ok]:
        raise UserError(f"{path}: not a gate baseline file ({', '.join(bad)} of the wrong shape); {fix}")
    if data["raw_sha"] != _sha(raw):
        raise UserError(f"{path}: blessed on another version of the data file; {fix}")
    results = {int(s): r for s, r in results.items()}
    return Side(f"baseline file {path.name}", data["rules"], raw, data["cleaned"], results, data["train_key"])


def _result_shape(seed: Any, result: Any) -> bool:
    """One seed's stored result: numeric probe values, and debates (or null) whose turns are speaker and text."""
    if not (isinstance(seed, str) and seed.isdigit() and isinstance(result, dict)):
        return False
    values = result.get("probes")
    if not isinstance(values, dict) or not all(isinstance(values.get(p), int | float) for p in probes.HIGHER_IS_BETTER):
        return False
    rows = result.get("conversations")
    return rows is None or (isinstance(rows, list) and all(
        isinstance(c, dict) and isinstance(c.get("scenario"), str) and isinstance(c.get("topic"), str)
        and isinstance(c.get("turns"), list) and all(isinstance(t, dict) and isinstance(t.get("speaker"), str)
                                                     and isinstance(t.get("text"), str) for t in c["turns"])
        for c in rows))  # fmt: skip


def write_baseline(path: Path, side: Side) -> None:
    """The baseline's cleaning of the raw corpus (so it can be retrained and paired) and its per-seed results."""
    data = {"version": BASELINE_VERSION, "rules": side.rules, "raw_sha": _sha(side.raw), "train_key": side.train_key,
            "results": {str(s): r for s, r in sorted(side.results.items())}, "cleaned": side.cleaned}  # fmt: skip
    path.write_text(json.dumps(data, ensure_ascii=False, indent=1) + "\n", encoding="utf-8")
