"""Calibrate the cleaning gate: its false-fail rate on null runs and its verdict on a catalogue of rule edits.

    nice python benchmarks/gate_calibration.py [--null-seeds 12] [--draws 24] [--out runs/gate-calibration]

Fine-tunes are reused: the baseline rules are trained once per seed (0 .. N-1), and each null run is the gate's own
sequential test on two disjoint random orderings of those seeds (the baseline rules against themselves under other
seeds: no shared randomness, harder than any real comparison, which pairs seed s with seed s). Each catalogue edit
(`benchmarks/gate_catalogue/*.py`, `EXPECTED` = "fail" or "pass") then goes through `harness.gate.compare` against
the same baseline seeds. Adapters are kept under OUT/adapters, so a rerun retrains nothing. Writes OUT/calibration.json
and prints the Markdown tables the README quotes.
"""

from __future__ import annotations

import argparse
import importlib.util
import json
import random
import sys
import time
from pathlib import Path
from typing import Any

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))

from harness.gate import gate, probes  # noqa: E402
from harness.gate.stats import decided, probe_rows  # noqa: E402
from harness.spec.load import load_experiment  # noqa: E402

EXPERIMENT = ROOT / "experiments" / "kaggle_debate.py"


def null_run(results: dict[int, dict[str, Any]], order_a: list[int], order_b: list[int], spec: Any) -> dict[str, Any]:
    """The gate's sequential probe test with seeds `order_a` as the baseline and `order_b` as the candidate."""
    rows: list[dict[str, Any]] = []
    for k in range(1, len(order_a) + 1):
        final = k == len(order_a)
        base = [results[s]["probes"] for s in order_a[:k]]
        cand = [results[s]["probes"] for s in order_b[:k]]
        rows = probe_rows(base, cand, spec.probe_tolerances, probes.HIGHER_IS_BETTER, spec.confidence, final)
        if final or (k >= spec.min_seeds and decided(rows)):
            break
    failed = [r["probe"] for r in rows if r["verdict"] == "fail"]
    worst = max((r["harm"] / r["tolerance"], r["probe"]) for r in rows if r["tolerance"])
    return {"baseline_seeds": order_a[:k], "candidate_seeds": order_b[:k], "seeds": k, "failed": failed,
            "verdict": "fail" if failed else "pass", "worst_harm_over_tolerance": worst,
            "harms": {r["probe"]: r["harms"] for r in rows}}  # fmt: skip


def load_rules(file: Path) -> tuple[str, tuple[Any, ...]]:
    spec = importlib.util.spec_from_file_location(f"catalogue_{file.stem}", file)
    assert spec is not None and spec.loader is not None
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module.EXPECTED, tuple(module.rules)


def deciding(result: dict[str, Any]) -> str:
    """The measures that failed (or, for a pass, the one closest to its tolerance), with value / tolerance."""
    measured = [(r["value"], r["tolerance"], f"data {r['check']}") for r in result["data"] if r.get("tolerance")]
    measured += [(r["harm"], r["tolerance"], f"probe {r['probe']}") for r in result["probes"] if r["tolerance"]]
    failed = [m for m in measured if m[0] > m[1]] if result["verdict"] == "fail" else []
    shown = failed or [max(measured, key=lambda m: m[0] / m[1])]
    return "; ".join(f"{name} {value:.4g} (tol {tol:g})" for value, tol, name in shown)


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--null-seeds", type=int, default=12, help="baseline seeds trained for the null runs")
    parser.add_argument("--draws", type=int, default=24, help="null runs drawn from those seeds")
    parser.add_argument("--catalogue", type=Path, default=ROOT / "benchmarks" / "gate_catalogue")
    parser.add_argument("--only", nargs="*", help="catalogue entries (file stems) to run; default all")
    parser.add_argument("--model-level-always", action="store_true", help="train catalogue edits that fail on data")
    parser.add_argument("--out", type=Path, default=ROOT / "runs" / "gate-calibration")
    parser.add_argument("--adapters", type=Path, help="fine-tune cache (default: OUT/adapters)")
    args = parser.parse_args()
    experiment = load_experiment(EXPERIMENT)
    spec = gate.gate_spec(experiment)
    adapters = args.adapters or args.out / "adapters"
    raw = gate.raw_texts(experiment, EXPERIMENT)
    baseline = gate.side("baseline (shipped rules)", raw, experiment.cleaning)
    key = gate.train_key(experiment)

    started = time.perf_counter()
    catalogue = []
    for file in sorted(args.catalogue.glob("*.py")):
        if args.only is not None and file.stem not in args.only:
            continue
        expected, rules = load_rules(file)
        t0 = time.perf_counter()
        candidate = gate.side(file.stem, raw, rules)
        result = gate.compare(experiment, baseline, candidate, adapters, args.model_level_always)
        baseline.train_key = key  # its seeds trained under today's key are reused by the next edit
        catalogue.append({"edit": file.stem, "expected": expected, "verdict": result["verdict"],
                          "right": result["verdict"] == expected, "deciding": deciding(result),
                          "seeds": result["seeds"], "seconds": round(time.perf_counter() - t0, 1),
                          "result": result})  # fmt: skip
        print(f"{file.stem}: {result['verdict']} (expected {expected}) {catalogue[-1]['deciding']}", file=sys.stderr)
    catalogue_s = time.perf_counter() - started

    for seed in range(args.null_seeds):
        gate.seed_result(experiment, baseline, seed, key, adapters)
        print(f"baseline seed {seed}: {baseline.results[seed]['probes']}", file=sys.stderr, flush=True)
    rng = random.Random(0)
    nulls = []
    for _ in range(args.draws if args.null_seeds >= 2 * spec.seeds else 0):
        drawn = rng.sample(range(args.null_seeds), 2 * spec.seeds)
        nulls.append(null_run(baseline.results, drawn[: spec.seeds], drawn[spec.seeds :], spec))

    false_fails = sum(n["verdict"] == "fail" for n in nulls)
    summary = {
        "null_runs": len(nulls),
        "null_false_fails": false_fails,
        "null_seeds": args.null_seeds,
        "seconds": round(time.perf_counter() - started, 1),
        "catalogue_seconds": round(catalogue_s, 1),
        "catalogue_right": sum(c["right"] for c in catalogue),
        "catalogue": len(catalogue),
        "settings": dict(vars(spec)),
    }
    args.out.mkdir(parents=True, exist_ok=True)
    record = {"summary": summary, "nulls": nulls, "catalogue": catalogue, "baseline_seeds": baseline.results}
    (args.out / "calibration.json").write_text(json.dumps(record, ensure_ascii=False, indent=1))
    print(f"null runs: {false_fails} / {len(nulls)} false fails ({args.null_seeds} baseline seeds, "
          f"{sum(n['seeds'] for n in nulls) / max(len(nulls), 1):.2f} seeds per run on average)")  # fmt: skip
    print("\n| edit | expected | verdict | seeds | deciding measure (value, tolerance) |\n|---|---|---|---|---|")
    for c in catalogue:
        print(f"| `{c['edit']}` | {c['expected']} | **{c['verdict']}** | {c['seeds']} | {c['deciding']} |")
    print(f"\n{summary['catalogue_right']} / {summary['catalogue']} right")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
