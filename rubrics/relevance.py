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
    known: frozenset[str]  # the features that have weights, to intersect a conversation's features with in C
    cues: tuple[str, ...]  # features that push towards Kaggle rather than unrelated talk, furthest first
    cue_rank: dict[str, int]  # each of those features' place in `cues`, counted from 1


@functools.cache
def _model() -> _Model:
    m = json.loads(MODEL.read_text(encoding="utf-8"))
    weights = {f: tuple(w) for f, w in m["weights"].items()}
    cue = {f: w[0] - w[2] for f, w in weights.items()}
    cues = tuple(sorted((f for f, c in cue.items() if c > 0), key=lambda f: (-cue[f], f)))
    return _Model(tuple(m["bias"]), weights, frozenset(weights), cues, {f: i for i, f in enumerate(cues, 1)})


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
    # Binary features, not length-normalised: one strong cue counts in a long turn too. Features the model does not
    # know add nothing, so only the known ones are summed, in a fixed order: float sums and ties must not follow the
    # hash seed.
    known = sorted(text_features(texts) & model.known)
    columns = list(zip(*map(model.weights.__getitem__, known), strict=True)) or [()] * len(CLASSES)
    logits = [b + sum(w) for b, w in zip(model.bias, columns, strict=True)]
    top = max(logits)
    exp = [math.exp(z - top) for z in logits]
    total = sum(exp)
    cues = [model.cues[i - 1] for i in sorted(filter(None, map(model.cue_rank.get, known)))[:5]]
    return {c: e / total for c, e in zip(CLASSES, exp, strict=True)}, cues


# The shared parse lives in fluency.py, so its source is part of this rubric's version too.
@rubric(higher_is_better=True, data_files=(MECABRC, MODEL, DATA.parent / "fluency.py"))
def relevance(conversation: Conversation) -> Score:
    """How much the conversation is about Kaggle competitions; higher = more Kaggle (general ML ≈ 0.5, other ≈ 0)."""
    probs, cues = probabilities(turn.text for turn in conversation.turns)
    value = sum(v * probs[c] for c, v in zip(CLASSES, _CLASS_VALUE, strict=True))
    return Score(min(max(value, 0.0), 1.0), {**{c: round(p, 4) for c, p in probs.items()}, "kaggle_cues": cues})
