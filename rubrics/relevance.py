"""Relevance: how much a conversation is about Kaggle and its competition culture, from a frozen linear classifier."""

from __future__ import annotations

import functools
import json
import math
from collections.abc import Iterable
from pathlib import Path
from typing import NamedTuple

from harness.records import Conversation, Score
from rubrics._registry import rubric
from rubrics.fluency import DATA, MECABRC, analyse

MODEL = DATA / "relevance.json"
CLASSES = ("kaggle", "ml", "other")
# General machine-learning talk sits halfway: about the field Kaggle lives in, but not about Kaggle.
_CLASS_VALUE = (1.0, 0.5, 0.0)


class _Model(NamedTuple):
    bias: tuple[float, float, float]
    weights: dict[str, tuple[float, float, float]]


@functools.cache
def _model() -> _Model:
    m = json.loads(MODEL.read_text(encoding="utf-8"))
    return _Model(tuple(m["bias"]), {f: tuple(w) for f, w in m["weights"].items()})


def text_features(texts: Iterable[str]) -> set[str]:
    """Content-word lemmas and their bigrams: `オリンピック 金` and `銅 メダル` read differently.

    Particles, auxiliaries and punctuation are left out: they carry register (tweet vs dialogue), not topic.
    """
    feats: set[str] = set()
    for text in texts:
        a = analyse(text)
        words = [lemma for lemma, cls in zip(a.lemmas, a.classes, strict=True) if cls != lemma]
        feats.update(words)
        feats.update(f"{x} {y}" for x, y in zip(words, words[1:], strict=False))
    return feats


def probabilities(texts: Iterable[str]) -> tuple[dict[str, float], list[str]]:
    """Class probabilities for the texts read as one document, and the known features that pushed towards Kaggle."""
    model = _model()
    known = [f for f in text_features(texts) if f in model.weights]
    norm = math.sqrt(len(known)) or 1.0
    logits = list(model.bias)
    for f in known:
        w = model.weights[f]
        logits[0] += w[0] / norm
        logits[1] += w[1] / norm
        logits[2] += w[2] / norm
    top = max(logits)
    exp = [math.exp(z - top) for z in logits]
    total = sum(exp)
    cues = sorted(known, key=lambda f: model.weights[f][2] - model.weights[f][0])[:5]
    return {c: e / total for c, e in zip(CLASSES, exp, strict=True)}, [f for f in cues if model.weights[f][0] > 0]


@rubric(higher_is_better=True, data_files=(MECABRC, MODEL))
def relevance(conversation: Conversation) -> Score:
    """How much the conversation is about Kaggle competitions; higher = more Kaggle (general ML ≈ 0.5, other ≈ 0)."""
    probs, cues = probabilities(turn.text for turn in conversation.turns)
    value = sum(v * probs[c] for c, v in zip(CLASSES, _CLASS_VALUE, strict=True))
    return Score(min(max(value, 0.0), 1.0), {**{c: round(p, 4) for c, p in probs.items()}, "kaggle_cues": cues})
