"""Agreement with a careful human reader: `python -m rubrics.agreement [PATH]` (default data/validation/human.jsonl).

Each row holds one conversation (or one turn) of the harness's own model, or a debate written for the set, with a
1-5 label for fluency and for relevance (the scale: data/validation/README.md). A rubric's value v in [0, 1] sits on
the labels' scale as 1 + 4v, so a label h is compared with v as (h - 1) / 4: Spearman's rank correlation of labels
and values, and the mean absolute error on [0, 1] (`mae`; on the 1-5 scale it is 4x that, `mae_5`).
"""

from __future__ import annotations

import argparse
import json
import sys
from pathlib import Path

from scipy.stats import spearmanr

from rubrics._registry import get
from rubrics.validate import DEFAULT, load

HUMAN = DEFAULT / "human.jsonl"
LABELLED = ("fluency", "relevance")


def _measure(labels: list[int], values: list[float]) -> dict:
    errors = [abs((h - 1) / 4 - v) for h, v in zip(labels, values, strict=True)]
    rho = float(spearmanr(labels, values).statistic) if len(set(labels)) > 1 else float("nan")
    return {"n": len(labels), "spearman": rho, "mae": sum(errors) / len(errors), "mae_5": 4 * sum(errors) / len(errors)}


def agreement(path: Path = HUMAN) -> dict:
    """Per labelled rubric: the whole set, then each part (`source`/`run`/`unit`: model turns vs written debates)."""
    rows = load(path)
    out = {}
    for name in LABELLED:
        values = [s.value for s in get(name).many([conversation for _, conversation in rows])]
        labels = [row[name] for row, _ in rows]
        parts: dict[str, list[int]] = {}
        for i, (row, _) in enumerate(rows):
            parts.setdefault(f"{row['source']}:{row.get('run') or '-'}:{row['unit']}", []).append(i)
        out[name] = {
            **_measure(labels, values),
            "parts": {k: _measure([labels[i] for i in ix], [values[i] for i in ix]) for k, ix in sorted(parts.items())},
        }
    return out


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("path", nargs="?", type=Path, default=HUMAN, help="labelled JSONL (default: the shipped set)")
    parser.add_argument("--json", action="store_true", help="print one JSON object instead of tables")
    args = parser.parse_args(argv)
    if not args.path.is_file():
        parser.exit(2, f"{args.path}: no such file; pass a JSONL file with `turns`, `fluency` and `relevance` rows\n")
    result = agreement(args.path)
    if args.json:
        json.dump(result, sys.stdout, ensure_ascii=False, indent=1)
        print()
        return 0
    for name, r in result.items():
        print(f"{name}: n={r['n']}  spearman={r['spearman']:.3f}  mae={r['mae']:.3f}  (1-5 scale: {r['mae_5']:.2f})")
        for part, m in r["parts"].items():
            print(f"  {part:<32} n={m['n']:<4} spearman={m['spearman']:.3f}  mae={m['mae']:.3f}")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
