"""Data-level checks, paired per document: the same raw document cleaned by the baseline and by the candidate rules.

Deterministic and nearly free, so they can fail on small changes; tolerances are set from the spread of harmless
edits (README: "Cleaning and the gate").
"""

from __future__ import annotations

import copy
import functools
from collections import Counter
from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass
from typing import Any

from rubrics.records import Conversation

TOPIC = 0.5
"""A document bears the topic when the relevance rubric gives it at least this (the classifier's midpoint)."""
FLUENCY_DROP = 0.2
"""A document loses its fluency when its fluency score falls by more than this from baseline to candidate."""

CHECKS = {
    "topic_lost": "share of topic-bearing documents kept by both sides whose candidate text no longer bears the topic",
    "fluency_lost": f"share of documents kept by both sides whose fluency falls by more than {FLUENCY_DROP}",
    "chars_removed": "share of the baseline's characters the candidate removes from documents kept by both sides",
    "document_loss": "share of the baseline's documents the candidate drops",
    "char_loss": "share of the baseline's characters (all documents) missing from the candidate's corpus",
    "topic_document_loss": "share of the baseline's topic-bearing documents that the candidate does not keep as such",
    "artefact_rate": "rise of the share of documents in which the contamination rubric finds an artefact",
    "emoji_rate": "rise of the share of documents holding an emoji (as the shipped `RemoveEmoji` rule reads one)",
}
"""Each data-level check, all oriented so that a larger value is worse."""


def keys(raw: Sequence[str]) -> list[str]:
    """One stable key per raw document: its text, numbered when the same text occurs again."""
    seen: Counter[str] = Counter()
    out = []
    for text in raw:
        out.append(f"{seen[text]}\0{text}")
        seen[text] += 1
    return out


def clean_each(raw: Sequence[str], rules: Iterable[Any]) -> list[str | None]:
    """Each raw document's cleaned text (None when a rule drops it), the rules run in order over the whole corpus
    exactly as `harness.data.cleaning.apply_rules` runs them (fresh copies, so the deduplication pool starts empty)."""
    from hojichar import Document

    from harness.data.cleaning import _apply
    from harness.spec.rules import rule_name

    out: list[str | None] = [None] * len(raw)
    current = [(i, Document(t)) for i, t in enumerate(raw)]
    for rule in copy.deepcopy(tuple(rules)):
        name = rule_name(rule)
        current = [(i, d) for i, d in ((i, _apply(rule, name, d)) for i, d in current) if not d.is_rejected]
    for i, doc in current:
        out[i] = doc.text
    return out


@dataclass(frozen=True)
class DocScores:
    """Per-document relevance, fluency, artefact and emoji flags of one side's cleaned texts (None: dropped)."""

    relevance: list[float | None]
    fluency: list[float | None]
    artefact: list[bool | None]
    emoji: list[bool | None]


def _has_emoji(text: str) -> bool:
    from hojichar import Document

    from harness.data.cleaning import RemoveEmoji

    return RemoveEmoji().apply(Document(text)).text != text


@functools.lru_cache(maxsize=8)
def _scores(texts: tuple[str, ...]) -> tuple[tuple[Any, ...], ...]:
    from rubrics import fluency, relevance
    from rubrics.contamination import find_artefacts

    docs = [Conversation.from_text(t) for t in texts]
    return (tuple(s.value for s in relevance.many(docs)), tuple(s.value for s in fluency.many(docs)),
            tuple(bool(find_artefacts(t)) for t in texts), tuple(map(_has_emoji, texts)))  # fmt: skip


def doc_scores(cleaned: Sequence[str | None]) -> DocScores:
    kept = [i for i, t in enumerate(cleaned) if t is not None]
    scores = _scores(tuple(cleaned[i] for i in kept))  # type: ignore[arg-type]
    out: list[list[Any]] = [[None] * len(cleaned) for _ in scores]
    for values, column in zip(scores, out, strict=True):
        for j, i in enumerate(kept):
            column[i] = values[j]
    return DocScores(*out)


def _share(part: int, whole: int) -> float:
    return part / whole if whole else 0.0


def measure(base: Sequence[str | None], cand: Sequence[str | None]) -> dict[str, dict[str, float]]:
    """Every check's value for one pairing (the two lists align on the raw documents), plus context counts."""
    b, c = doc_scores(base), doc_scores(cand)
    n = range(len(base))
    both = [i for i in n if base[i] is not None and cand[i] is not None]
    topical = [i for i in n if base[i] is not None and b.relevance[i] >= TOPIC]  # type: ignore[operator]
    topical_both = [i for i in topical if cand[i] is not None]
    base_chars = sum(len(t) for t in base if t is not None)
    cand_chars = sum(len(t) for t in cand if t is not None)
    base_docs, cand_docs = sum(t is not None for t in base), sum(t is not None for t in cand)
    cand_topical = sum(1 for i in topical if cand[i] is not None and c.relevance[i] >= TOPIC)  # type: ignore[operator]
    checks = {
        "topic_lost": _share(sum(c.relevance[i] < TOPIC for i in topical_both), len(topical_both)),  # type: ignore[operator]
        "fluency_lost": _share(sum(b.fluency[i] - c.fluency[i] > FLUENCY_DROP for i in both), len(both)),  # type: ignore[operator]
        "chars_removed": 1 - _share(sum(len(cand[i]) for i in both), sum(len(base[i]) for i in both)),  # type: ignore[arg-type]
        "document_loss": 1 - _share(cand_docs, base_docs),
        "char_loss": 1 - _share(cand_chars, base_chars),
        "topic_document_loss": 1 - _share(cand_topical, len(topical)),
        "artefact_rate": _share(sum(map(bool, c.artefact)), cand_docs) - _share(sum(map(bool, b.artefact)), base_docs),
        "emoji_rate": _share(sum(map(bool, c.emoji)), cand_docs) - _share(sum(map(bool, b.emoji)), base_docs),
    }
    context = {
        "documents": {"baseline": base_docs, "candidate": cand_docs},
        "retention": {"baseline": _share(base_docs, len(base)), "candidate": _share(cand_docs, len(cand))},
        "topic_documents": {"baseline": len(topical), "candidate": cand_topical},
        "relevance_mean": {"baseline": _mean(b.relevance), "candidate": _mean(c.relevance)},
        "fluency_mean": {"baseline": _mean(b.fluency), "candidate": _mean(c.fluency)},
    }
    return {"checks": checks, "context": context}  # type: ignore[dict-item]


def _mean(values: Sequence[float | None]) -> float:
    kept = [v for v in values if v is not None]
    return sum(kept) / len(kept) if kept else 0.0


def rows(measured: Mapping[str, Any], tolerances: Mapping[str, float]) -> list[dict[str, Any]]:
    """One verdict row per check: `fail` when its value exceeds its tolerance; checks without one are `info`."""
    out = []
    for check, value in measured["checks"].items():
        tolerance = tolerances.get(check)
        verdict = "info" if tolerance is None else "fail" if value > tolerance else "pass"
        out.append({"check": check, "value": value, "tolerance": tolerance, "verdict": verdict,
                    "meaning": CHECKS[check]})  # fmt: skip
    for name, pair in measured["context"].items():
        out.append({"check": name, "baseline": pair["baseline"], "candidate": pair["candidate"], "verdict": "info"})
    return out
