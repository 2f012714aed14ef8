"""Relevance: how much a conversation is about Kaggle and its competition culture, from a frozen linear classifier."""

from __future__ import annotations

import functools
import json
import math
from collections.abc import Iterable, Sequence
from itertools import chain, pairwise
from typing import NamedTuple

import numpy as np

from rubrics._morph import DATA, LEMMA, MECABRC, Memo, analyse
from rubrics._registry import rubric
from rubrics.records import Conversation, Score

MODEL = DATA / "relevance.json"
CLASSES = ("kaggle", "ml", "other")
# General machine-learning talk sits halfway: about the field Kaggle lives in, but not about Kaggle.
_CLASS_VALUE = (1.0, 0.5, 0.0)


class _Model(NamedTuple):
    """The classifier over feature indices: features numbered in sorted order, so sorting indices sorts the text."""

    bias: tuple[float, float, float]
    features: tuple[str, ...]  # the features that have weights, sorted
    weights: np.ndarray  # feature index -> its weight for each class
    words: Memo  # MeCab key -> its lemma's id: 0 for none (closed-class words), 1 for one in no feature, else 2 up
    unigrams: np.ndarray  # lemma id -> index of the feature that is the lemma alone (-1: none)
    bigrams: np.ndarray  # sorted `first * len(unigrams) + second` of lemma id pairs that are a feature
    bigram_features: np.ndarray  # the index of each of those pairs' feature
    cues: tuple[str, ...]  # features that push towards Kaggle rather than unrelated talk, furthest first
    cue_rank: np.ndarray  # feature index -> its place in `cues` counted from 1 (0: not a cue)


@functools.cache
def _model() -> _Model:
    m = json.loads(MODEL.read_text(encoding="utf-8"))
    features = sorted(m["weights"])
    index = {f: i for i, f in enumerate(features)}
    # A bigram feature is "first second", and a lemma may hold a space itself ("パソコン-personal computer"):
    # every split at a space is a pair of lemmas that joins to the feature.
    pairs = {(f[:i], f[i + 1 :]): index[f] for f in features for i, c in enumerate(f) if c == " "}
    vocab = sorted({*features, *chain.from_iterable(pairs)} - {""})
    ids = {w: i for i, w in enumerate(vocab, 2)}
    words = Memo(lambda key: ids.get(LEMMA[key], 1) if LEMMA[key] else 0)
    unigrams = np.full(len(vocab) + 2, -1)
    unigrams[[ids[f] for f in features]] = range(len(features))
    codes = sorted((ids[a] * len(unigrams) + ids[b], f) for (a, b), f in pairs.items() if a and b)
    cue = {f: w[0] - w[2] for f, w in m["weights"].items()}
    cues = tuple(sorted((f for f, c in cue.items() if c > 0), key=lambda f: (-cue[f], f)))
    cue_rank = np.zeros(len(features), np.int64)
    cue_rank[[index[f] for f in cues]] = range(1, len(cues) + 1)
    return _Model(
        tuple(m["bias"]),
        tuple(features),
        np.array([m["weights"][f] for f in features], np.float64),
        words,
        unigrams,
        np.array([c for c, _ in codes], np.int64),
        np.array([f for _, f in codes], np.int64),
        cues,
        cue_rank,
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


def _known(conversations: Sequence[Conversation], model: _Model) -> tuple[np.ndarray, np.ndarray]:
    """(conversation, feature index) of each weighted feature in `text_features` of each conversation's turns.

    Sorted, each pair once: the features of all conversations are found with a few numpy calls, on lemma ids.
    """
    analyses = [analyse(turn.text) for c in conversations for turn in c.turns]
    lengths = [len(a.keys) for a in analyses]
    keys = chain.from_iterable(a.keys for a in analyses)
    ids = np.fromiter(map(model.words.__getitem__, keys), np.int64, sum(lengths))
    turn = np.repeat(np.arange(len(analyses)), lengths)
    content = ids != 0
    ids, turn = ids[content], turn[content]
    code = ids[:-1] * len(model.unigrams) + ids[1:]
    at = np.minimum(np.searchsorted(model.bigrams, code), len(model.bigrams) - 1)
    bigram = (model.bigrams[at] == code) & (turn[:-1] == turn[1:])
    unigram = model.unigrams[ids]
    conversation = np.repeat(np.arange(len(conversations)), [len(c.turns) for c in conversations])
    pairs = np.sort(
        np.concatenate(
            [
                conversation[turn[unigram >= 0]] * len(model.weights) + unigram[unigram >= 0],
                conversation[turn[:-1][bigram]] * len(model.weights) + model.bigram_features[at[bigram]],
            ]
        )
    )
    first = np.ones(len(pairs), bool)  # np.unique's work, which takes longer
    first[1:] = pairs[1:] != pairs[:-1]
    pairs = pairs[first]
    return pairs // len(model.weights), pairs % len(model.weights)


def scores(conversations: Sequence[Conversation]) -> list[Score]:
    """`relevance` of each conversation, the features of all of them found at once."""
    model = _model()
    # Binary features, not length-normalised: one strong cue counts in a long turn too. Features the model does not
    # know add nothing, so only the known ones are summed, in sorted order: float sums and ties must not follow the
    # hash seed. bincount adds each conversation's weights in that order, one at a time, as Python's `sum` does.
    conversation, feature = _known(conversations, model)
    sums = [np.bincount(conversation, model.weights[feature, k], len(conversations)) for k in range(len(CLASSES))]
    logits = np.array([b + s for b, s in zip(model.bias, sums, strict=True)]).T.tolist()
    rank = model.cue_rank[feature]
    cued = rank > 0
    ranked = np.sort(conversation[cued] * (len(model.cues) + 1) + rank[cued])
    bounds = np.searchsorted(ranked, np.arange(len(conversations) + 1) * (len(model.cues) + 1)).tolist()
    ranks = (ranked % (len(model.cues) + 1)).tolist()
    out = []
    for i, logit in enumerate(logits):
        top = max(logit)
        exp = [math.exp(z - top) for z in logit]
        total = sum(exp)
        probs = {c: e / total for c, e in zip(CLASSES, exp, strict=True)}
        value = sum(v * probs[c] for c, v in zip(CLASSES, _CLASS_VALUE, strict=True))
        cues = [model.cues[r - 1] for r in ranks[bounds[i] : min(bounds[i] + 5, bounds[i + 1])]]
        out.append(
            Score(min(max(value, 0.0), 1.0), {**{c: round(p, 4) for c, p in probs.items()}, "kaggle_cues": cues})
        )
    return out


# The shared parse lives in fluency.py, so its source is part of this rubric's version too.
@rubric(higher_is_better=True, data_files=(MECABRC, MODEL, DATA.parent / "_morph.py"), many=scores)
def relevance(conversation: Conversation) -> Score:
    """How much the conversation is about Kaggle competitions; higher = more Kaggle (general ML ≈ 0.5, other ≈ 0)."""
    return scores([conversation])[0]
