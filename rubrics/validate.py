"""Measure each rubric's agreement with a labelled set: `python -m rubrics.validate [DIR]` (default data/validation).

Prints AUC, accuracy and rank correlation overall and per hard-case kind; `--json` prints the same as one object.
`--relevance FILE` measures relevance alone on any JSONL of `{"label": "kaggle" | "ml" | "other", "kind", "text"}`
rows, e.g. real text gathered for measuring that must not enter the repository.
`--real FILE...` measures fluency on real sentences instead (one a line, a `.tsv`'s last column, or a CoNLL-U file's
`# text =` lines): the share scored below 0.5, and the AUC against each corruption of the same sentences.
"""

from __future__ import annotations

import argparse
import json
import random
import sys
from collections.abc import Iterable
from pathlib import Path

from scipy.stats import spearmanr
from sklearn.metrics import roc_auc_score

from rubrics import contamination, fluency, relevance
from rubrics.records import Conversation, Turn

DEFAULT = Path(__file__).resolve().parent.parent / "data" / "validation"


def load(path: Path) -> list[tuple[dict, Conversation]]:
    """Rows of a labelled JSONL file with the conversation each one describes (`text` or `turns`)."""
    rows = []
    with path.open(encoding="utf-8") as f:
        for line in f:
            if line.strip():
                row = json.loads(line)
                turns = row.get("turns") or [{"speaker": "", "text": row["text"]}]
                rows.append((row, Conversation(tuple(Turn(t.get("speaker", ""), t["text"]) for t in turns))))
    return rows


def _auc(pos: Iterable[float], neg: Iterable[float]) -> float:
    pos, neg = list(pos), list(neg)
    return float(roc_auc_score([1] * len(pos) + [0] * len(neg), pos + neg)) if pos and neg else float("nan")


def _rho(labels: list[float], scores: list[float]) -> float:
    return float(spearmanr(labels, scores).statistic)


def fluency_agreement(path: Path) -> dict:
    """Natural (label `natural`) against each corruption kind (label `corrupted`, `kind` names it)."""
    scored = [(row, fluency(conv).value) for row, conv in load(path)]
    natural = [v for row, v in scored if row["label"] == "natural"]
    bad = [v for row, v in scored if row["label"] != "natural"]
    kinds = sorted({row["kind"] for row, _ in scored if row["label"] != "natural"})
    return {
        "n": len(scored),
        "auc": _auc(natural, bad),
        "accuracy": sum(v >= 0.5 for v in natural) / len(natural) / 2 + sum(v < 0.5 for v in bad) / len(bad) / 2,
        "spearman": _rho([row["label"] == "natural" for row, _ in scored], [v for _, v in scored]),
        "kinds": {
            k: _auc(natural, [v for row, v in scored if row["label"] != "natural" and row["kind"] == k]) for k in kinds
        },
        "natural_kinds": {  # natural jargon, names and numbers must not fall below the corrupted texts
            k: _auc([v for row, v in scored if row["label"] == "natural" and row["kind"] == k], bad)
            for k in sorted({row["kind"] for row, _ in scored if row["label"] == "natural"})
        },
    }


def real_sentences(path: Path) -> list[str]:
    """Sentences of a text file (one a line), a TSV (its last column) or a CoNLL-U treebank (its `# text =` lines)."""
    lines = path.read_text(encoding="utf-8").splitlines()
    if path.suffix == ".conllu":
        return [line[len("# text = ") :].strip() for line in lines if line.startswith("# text = ")]
    return [line.rsplit("\t", 1)[-1].strip() for line in lines if line.strip()]


def real_text_agreement(paths: list[Path], seed: int = 7) -> dict:
    """Fluency on real sentences: how many score below 0.5, and natural vs each corruption of the same sentences."""
    from rubrics.build import CORRUPTIONS  # the build's corruptions; build needs scikit-learn, validation already does

    texts = [t for path in paths for t in real_sentences(path)]
    natural = fluency.many([Conversation.from_text(t) for t in texts])
    rng = random.Random(seed)
    values = [s.value for s in natural]
    kinds, corrupted = {}, []
    for kind, corrupt in CORRUPTIONS.items():
        bad = [b for b in (corrupt(t, rng) for t in texts) if b.strip() and b not in texts]
        scored = [s.value for s in fluency.many([Conversation.from_text(b) for b in bad])]
        kinds[kind] = _auc(values, scored)
        corrupted += scored
    return {
        "n": len(texts),
        "below_half": sum(v < 0.5 for v in values) / len(values),
        "p10": sorted(values)[len(values) // 10],
        "auc": _auc(values, corrupted),
        "auc_min": min(kinds.values()),
        "corrupted_below_half": sum(v < 0.5 for v in corrupted) / len(corrupted),
        "kinds": kinds,
    }


def relevance_agreement(path: Path) -> dict:
    """Kaggle talk above general ML above unrelated talk, including unrelated texts that share Kaggle's words."""
    rows = load(path)
    scored = list(zip([row for row, _ in rows], [s.value for s in relevance.many([c for _, c in rows])], strict=True))
    by = {c: [v for row, v in scored if row["label"] == c] for c in ("kaggle", "ml", "other")}
    order = {"kaggle": 2, "ml": 1, "other": 0}
    predicted = [min(order, key=lambda c: abs(order[c] / 2 - v)) for _, v in scored]
    return {
        "n": len(scored),
        "auc": _auc(by["kaggle"], by["other"]),
        "auc_kaggle_vs_ml": _auc(by["kaggle"], by["ml"]),
        "auc_ml_vs_other": _auc(by["ml"], by["other"]),
        "mean": {c: sum(vs) / len(vs) for c, vs in by.items() if vs},
        "accuracy": sum(p == row["label"] for p, (row, _) in zip(predicted, scored, strict=True)) / len(scored),
        "other_below_half": sum(v < 0.5 for v in by["other"]) / len(by["other"]) if by["other"] else float("nan"),
        "spearman": _rho([order[row["label"]] for row, _ in scored], [v for _, v in scored]),
        "kinds": {  # each unrelated kind against all Kaggle talk, each Kaggle kind against all unrelated talk
            f"{label}:{k}": _auc([v for row, v in scored if row["label"] == label and row["kind"] == k], by["other"])
            if label == "kaggle"
            else _auc(by["kaggle"], [v for row, v in scored if row["label"] == label and row["kind"] == k])
            for label, k in sorted({(row["label"], row["kind"]) for row, _ in scored if row["label"] != "ml"})
        },
    }


def contamination_agreement(path: Path) -> dict:
    """Exact artefacts (the count, and the very texts where a row lists `spans`), none in the negatives (`count` 0)."""
    scored = [(row, contamination(conv)) for row, conv in load(path)]
    found = [[x["text"] for x in s.evidence["spans"]] for _, s in scored]
    exact = [row["count"] == len(f) and row.get("spans", f) == f for (row, _), f in zip(scored, found, strict=True)]
    kinds = sorted({row["kind"] for row, _ in scored})
    negatives = [s for row, s in scored if row["count"] == 0]
    return {
        "n": len(scored),
        "exact": sum(exact) / len(exact),
        "false_positives": sum(s.evidence["count"] > 0 for s in negatives),
        "negatives": len(negatives),
        "auc": _auc([s.value for row, s in scored if row["count"] > 0], [s.value for s in negatives]),
        "spearman": _rho([row["count"] for row, _ in scored], [s.value for _, s in scored]),
        "kinds": {
            k: sum(e for e, (row, _) in zip(exact, scored, strict=True) if row["kind"] == k)
            / sum(row["kind"] == k for row, _ in scored)
            for k in kinds
        },
        "misses": [row["id"] for e, (row, _) in zip(exact, scored, strict=True) if not e],
    }


def agreement(directory: Path = DEFAULT) -> dict:
    return {
        "fluency": fluency_agreement(directory / "fluency.jsonl"),
        "relevance": relevance_agreement(directory / "relevance.jsonl"),
        "contamination": contamination_agreement(directory / "contamination.jsonl"),
    }


def _print(name: str, result: dict) -> None:
    head = {k: v for k, v in result.items() if not isinstance(v, dict | list)}
    print(f"{name}: " + "  ".join(f"{k}={v:.3f}" if isinstance(v, float) else f"{k}={v}" for k, v in head.items()))
    for key, table in result.items():
        if isinstance(table, dict):
            for k, v in table.items():
                print(f"  {key:<14} {k:<28} {v:.3f}")
        elif isinstance(table, list) and table:
            print(f"  {key:<14} {', '.join(table)}")


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("directory", nargs="?", type=Path, default=DEFAULT, help="folder with the three JSONL files")
    parser.add_argument("--json", action="store_true", help="print one JSON object instead of tables")
    parser.add_argument("--relevance", type=Path, metavar="FILE", help="measure relevance alone on this labelled JSONL")
    parser.add_argument("--real", nargs="+", type=Path, metavar="FILE", help="measure fluency on real sentences")
    args = parser.parse_args(argv)
    if args.relevance and not args.relevance.is_file():
        parser.exit(2, f"{args.relevance}: no such file; pass a JSONL of label/kind/text rows\n")
    if args.relevance:
        result = {"relevance": relevance_agreement(args.relevance)}
    elif args.real:
        result = {"fluency_real": real_text_agreement(args.real)}
    else:
        result = agreement(args.directory)
    if args.json:
        json.dump(result, sys.stdout, ensure_ascii=False, indent=1)
        print()
    else:
        for name, r in result.items():
            _print(name, r)
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
