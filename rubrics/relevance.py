"""Relevance: how much a conversation is about Kaggle and its competition culture, from a frozen linear classifier."""

from __future__ import annotations

import functools
import json
import math
from collections.abc import Iterable
from itertools import pairwise
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
    weights: dict[str, tuple[float, float, float]]  # feature -> its weight for each class
    cue: dict[str, float]  # features that push towards Kaggle rather than unrelated talk, and how far


@functools.cache
def _model() -> _Model:
    m = json.loads(MODEL.read_text(encoding="utf-8"))
    cue = {f: w[0] - w[2] for f, w in m["weights"].items()}
    return _Model(
        tuple(m["bias"]), {f: tuple(w) for f, w in m["weights"].items()}, {f: c for f, c in cue.items() if c > 0}
    )


def text_features(texts: Iterable[str]) -> set[str]:
    """Content-word lemmas and their bigrams: `オリンピック 金` and `銅 メダル` read differently.

    Particles, auxiliaries and punctuation are left out: they carry register (tweet vs dialogue), not topic.
    """
    feats: set[str] = set()
    for text in texts:
        words = list(filter(None, analyse(text).lemmas))
        feats.update(words)
        feats.update(map(" ".join, pairwise(words)))
    return feats


def probabilities(texts: Iterable[str]) -> tuple[dict[str, float], list[str]]:
    """Class probabilities for the texts read as one document, and the features that pushed towards Kaggle."""
    model = _model()
    feats = sorted(text_features(texts))  # a fixed order: float sums and ties must not follow the hash seed
    # Binary features, not length-normalised: one strong cue counts in a long turn too. Features the model
    # does not know add nothing, so only the known ones are summed, in the same order.
    known = map(model.weights.__getitem__, filter(model.weights.__contains__, feats))
    columns = list(zip(*known, strict=True)) or [()] * len(CLASSES)
    logits = [b + sum(w) for b, w in zip(model.bias, columns, strict=True)]
    top = max(logits)
    exp = [math.exp(z - top) for z in logits]
    total = sum(exp)
    cues = sorted(filter(model.cue.__contains__, feats), key=lambda f: (-model.cue[f], f))[:5]
    return {c: e / total for c, e in zip(CLASSES, exp, strict=True)}, cues


# The shared parse lives in fluency.py, so its source is part of this rubric's version too.
@rubric(higher_is_better=True, data_files=(MECABRC, MODEL, DATA.parent / "fluency.py"))
def relevance(conversation: Conversation) -> Score:
    """How much the conversation is about Kaggle competitions; higher = more Kaggle (general ML ≈ 0.5, other ≈ 0)."""
    probs, cues = probabilities(turn.text for turn in conversation.turns)
    value = sum(v * probs[c] for c, v in zip(CLASSES, _CLASS_VALUE, strict=True))
    return Score(min(max(value, 0.0), 1.0), {**{c: round(p, 4) for c, p in probs.items()}, "kaggle_cues": cues})
