"""Relevance: how much a conversation is about Kaggle and its competition culture, from a frozen linear classifier."""

from __future__ import annotations

import functools
import json
import math
from collections.abc import Container, Iterable, Sequence
from itertools import chain, pairwise
from typing import NamedTuple

import numpy as np

from rubrics._morph import DATA, LEMMA, MECABRC, Analysis, Memo, analyse
from rubrics._registry import rubric
from rubrics.contamination import strip_artefacts
from rubrics.records import Conversation, Score

MODEL = DATA / "relevance.json"
TOPICS = DATA / "relevance_topics.json"  # lemma classes from real-corpus word vectors (rubrics/build_topics.py)
CLASSES = ("kaggle", "ml", "other")
# General machine-learning talk sits halfway: about the field Kaggle lives in, but not about Kaggle.
_CLASS_VALUE = (1.0, 0.5, 0.0)


def _topic_lemma(key: str) -> str:
    """A content lemma that can carry topic: numbers carry none (`金20、銀12` is not Kaggle for its digits)."""
    lemma = LEMMA[key]
    if key.startswith("名詞,数詞") or (key.startswith("?") and not any(map(str.isalpha, lemma))):
        return ""
    return lemma


TOPIC = Memo(_topic_lemma)


@functools.cache
def topic_classes() -> dict[str, str]:
    """Content lemma -> its word-vector class as a feature (`陸上`, `卓球` -> `@野球`): words our text never shows.

    Named by the class's most frequent lemma, spaces made `_`, so a class feature is never read as a bigram.
    """
    classes = json.loads(TOPICS.read_text(encoding="utf-8"))["classes"]
    return {w: "@" + name.replace(" ", "_") for name, words in classes.items() for w in words}


def read(text: str) -> Analysis:
    """The parse relevance reads: the text with its tweet artefacts cut, since a `#kaggle` tag is not Kaggle talk.

    The same text fluency parses, so the two rubrics share one parse of each turn.
    """
    return analyse(strip_artefacts(text))


class _Model(NamedTuple):
    """The classifier over feature indices: features numbered in sorted order, so sorting indices sorts the text."""

    bias: tuple[float, float, float]
    features: tuple[str, ...]  # the features that have weights, sorted
    weights: np.ndarray  # feature index -> its weight for each class
    words: Memo  # MeCab key -> its lemma's id: 0 for none (closed-class words), 1 for one in no feature, else 2 up
    classes: Memo  # MeCab key -> index of the feature that is its lemma's word class (-1: none)
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
    lemmas = [f for f in features if not f.startswith("@")]
    pairs = {(f[:i], f[i + 1 :]): index[f] for f in lemmas for i, c in enumerate(f) if c == " "}
    vocab = sorted({*lemmas, *chain.from_iterable(pairs)} - {""})
    ids = {w: i for i, w in enumerate(vocab, 2)}
    words = Memo(lambda key: ids.get(TOPIC[key], 1) if TOPIC[key] else 0)
    unigrams = np.full(len(vocab) + 2, -1)
    unigrams[[ids[f] for f in lemmas]] = [index[f] for f in lemmas]
    # A word's class stands in for the word only where the model does not know the word itself (as in training).
    classes = Memo(lambda key: -1 if TOPIC[key] in index else index.get(topic_classes().get(TOPIC[key], ""), -1))
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
        classes,
        unigrams,
        np.array([c for c, _ in codes], np.int64),
        np.array([f for _, f in codes], np.int64),
        cues,
        cue_rank,
    )


def text_features(texts: Iterable[str], known: Container[str] = ()) -> set[str]:
    """Content-word lemmas, their bigrams (`オリンピック 金` and `銅 メダル` read differently) and word classes.

    A word's class (`陸上` -> `@野球`) is a back-off for the words not `known` to the model, so the class of a word
    the model knows never counts twice, and class weights are learnt from the rare words, as the unseen ones are.

    Particles, auxiliaries, punctuation and numbers are left out: they carry register (tweet vs dialogue), not topic.
    """
    feats: set[str] = set()
    for text in texts:
        words = list(filter(None, map(TOPIC.__getitem__, read(text).keys)))
        feats.update(words)
        feats.update(map(" ".join, pairwise(words)))
        feats.update(filter(None, (topic_classes().get(w) for w in words if w not in known)))
    return feats


def _known(texts: Sequence[str], model: _Model) -> tuple[np.ndarray, np.ndarray]:
    """(text, feature index) of each weighted feature in `text_features` of each text (a turn).

    Sorted, each pair once: the features of all texts are found with a few numpy calls, on lemma ids.
    """
    analyses = [read(text) for text in texts]
    lengths = [len(a.keys) for a in analyses]
    keys = list(chain.from_iterable(a.keys for a in analyses))
    ids = np.fromiter(map(model.words.__getitem__, keys), np.int64, len(keys))
    classes = np.fromiter(map(model.classes.__getitem__, keys), np.int64, len(keys))
    turn = np.repeat(np.arange(len(analyses)), lengths)
    content = ids != 0
    ids, classes, turn = ids[content], classes[content], turn[content]
    code = ids[:-1] * len(model.unigrams) + ids[1:]
    at = np.minimum(np.searchsorted(model.bigrams, code), len(model.bigrams) - 1)
    bigram = (model.bigrams[at] == code) & (turn[:-1] == turn[1:])
    unigram = model.unigrams[ids]
    return _unique_pairs(
        np.concatenate([turn[unigram >= 0], turn[:-1][bigram], turn[classes >= 0]]),
        np.concatenate([unigram[unigram >= 0], model.bigram_features[at[bigram]], classes[classes >= 0]]),
        len(model.weights),
    )


def _unique_pairs(owner: np.ndarray, feature: np.ndarray, features: int) -> tuple[np.ndarray, np.ndarray]:
    """The (owner, feature) pairs sorted, each once."""
    pairs = np.sort(owner * features + feature)
    first = np.ones(len(pairs), bool)  # np.unique's work, which takes longer
    first[1:] = pairs[1:] != pairs[:-1]
    pairs = pairs[first]
    return pairs // features, pairs % features


def _values(owner: np.ndarray, feature: np.ndarray, talk: np.ndarray, model: _Model) -> list[list[float]]:
    """Each owner's class probabilities from its features' summed weights, scaled by how much of it is talk.

    bincount adds each owner's weights in feature order, one at a time, as Python's `sum` does: float sums and ties
    must not follow the hash seed."""
    sums = [np.bincount(owner, model.weights[feature, k], len(talk)) for k in range(len(CLASSES))]
    out = []
    for logit in np.array([b + s * talk for b, s in zip(model.bias, sums, strict=True)]).T.tolist():
        top = max(logit)
        exp = [math.exp(z - top) for z in logit]  # math.exp: numpy's may differ in a bit with the batch around it
        out.append([e / sum(exp) for e in exp])
    return out


@functools.lru_cache(maxsize=1 << 16)
def _letters(text: str) -> tuple[int, int]:
    """(letters, visible characters) of one text: kana, kanji and Latin letters are letters; digits, marks are not."""
    visible = sum(not c.isspace() for c in text)
    return sum(map(str.isalpha, text)), visible


def _talk(texts: Sequence[str]) -> float:
    """How much of some text is words: 1 from half its visible characters being letters (plain prose is ~0.9)."""
    counts = [_letters(text) for text in texts]
    visible = sum(v for _, v in counts)
    return min(1.0, 2 * sum(n for n, _ in counts) / visible) if visible else 1.0


def scores(conversations: Sequence[Conversation]) -> list[Score]:
    """`relevance` of each conversation, the features of all of them found at once.

    Two readings, combined as their geometric mean: the conversation as a whole (every feature of every turn; binary,
    not length-normalised: one strong cue counts in a long turn too) and how much of its talk is on topic (the mean of
    its turns read one by one, an empty turn counting 0). A whole-conversation reading alone lets one `Kaggle` among
    four filler turns make the debate Kaggle talk; a per-turn mean alone marks down a natural debate whose replies
    carry no jargon (`それはそうだけど…`). Measured on 64 fresh transcripts of the harness's own model and 12 written
    debates, labelled on the written scale (data/rubric_train/agreement_dev.jsonl): mean absolute error 0.256 (whole) /
    0.125 (turns) / 0.142 (both); on the natural Kaggle debates 0.00 / 0.24 / 0.13.
    """
    model = _model()
    texts = [turn.text for c in conversations for turn in c.turns]
    turn, feature = _known(texts, model)
    of = np.repeat(np.arange(len(conversations)), [len(c.turns) for c in conversations])
    # A conversation that is mostly numbers and symbols says little, whatever words stand among them: its evidence is
    # scaled by how much of it is words (`CV LB 0.8812 0.8812 0.8812` is not Kaggle talk).
    conversation, features = _unique_pairs(of[turn], feature, len(model.weights))
    whole = _values(conversation, features, np.array([_talk([t.text for t in c.turns]) for c in conversations]), model)
    turn_probs = _values(turn, feature, np.array([_talk([t]) for t in texts]), model)
    per_turn = [sum(v * p for v, p in zip(_CLASS_VALUE, probs, strict=True)) if text.strip() else 0.0
                for text, probs in zip(texts, turn_probs, strict=True)]  # fmt: skip
    bounds = np.cumsum([0, *(len(c.turns) for c in conversations)]).tolist()
    rank = model.cue_rank[features]
    cued = rank > 0
    ranked = np.sort(conversation[cued] * (len(model.cues) + 1) + rank[cued])
    cue_bounds = np.searchsorted(ranked, np.arange(len(conversations) + 1) * (len(model.cues) + 1)).tolist()
    ranks = (ranked % (len(model.cues) + 1)).tolist()
    out = []
    for i, probs in enumerate(whole):
        turns = per_turn[bounds[i] : bounds[i + 1]]
        reading = sum(v * p for v, p in zip(_CLASS_VALUE, probs, strict=True))
        coverage = sum(turns) / len(turns) if turns else 0.0
        cues = [model.cues[r - 1] for r in ranks[cue_bounds[i] : min(cue_bounds[i] + 5, cue_bounds[i + 1])]]
        evidence = {**{c: round(p, 4) for c, p in zip(CLASSES, probs, strict=True)}, "kaggle_cues": cues,
                    "turns": [round(v, 4) for v in turns]}  # fmt: skip
        out.append(Score(min(math.sqrt(reading * coverage), 1.0), evidence))  # both are sums of non-negative terms
    return out


# The shared parse and the artefact finder live in other modules, so their sources are part of this rubric's version.
@rubric(
    higher_is_better=True,
    data_files=(MECABRC, MODEL, TOPICS, DATA.parent / "_morph.py", DATA.parent / "contamination.py"),
    many=scores,
)
def relevance(conversation: Conversation) -> Score:
    """How much the conversation is about Kaggle competitions; higher = more Kaggle (general ML ≈ 0.5, other ≈ 0)."""
    return scores([conversation])[0]
