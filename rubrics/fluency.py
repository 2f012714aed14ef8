"""Fluency: how natural the Japanese of each turn is, read from MeCab's own costs and the shape of the turn.

MeCab's word and connection costs (unidic-lite, trained on a large balanced corpus: books, news, magazines, blogs,
Q&A sites) say how ordinary each word and each junction is; the turn's end says whether it was cut mid-word or
mid-clause; loops in any script (`GGLGGLGGL`, `0.8812 0.8812 0.8812`, `一番一番一番`) and a turn that repeats the
conversation's earlier turns are degenerate whatever their grammar. A frozen logistic regression weighs the evidence.
"""

from __future__ import annotations

import functools
import json
import math
import re
import unicodedata
from collections.abc import Sequence
from typing import NamedTuple

import numpy as np

from rubrics._morph import DATA, MECABRC, Analysis, Memo, analyse
from rubrics._registry import rubric
from rubrics.contamination import strip_artefacts
from rubrics.records import Conversation, Score

MODEL = DATA / "fluency.json"
FEATURES = (
    "word_cost",
    "link_cost",
    "rough_links",
    "end",
    "cut",
    "loop",
    "repeat",
    "unknown",
    "archaic",
    "particle_runs",
    "particles",
)
_PRIOR_WEIGHT = 3  # pseudo-morphemes of ordinary text each mean is shrunk towards: one rare word is not garbage
_ROUGH_LINK = 1500  # a connection dearer than this is rare in real text (its 95th percentile in news is ~1,600)
# A unit repeated three times or more back to back, up to 20 characters long, in any script (see _loop_chars).
_LOOP = re.compile(r"(.{1,20}?)\1\1+", re.S)
_EMPHASIS = frozenset("wｗW笑ー〜～~・.。、!！?？…‥♪☆★*＊-_=＝") | {" ", "\u3000"}
# A turn echoes the conversation when most of its character trigrams were already said in one earlier turn.
# Chosen on data/rubric_train/agreement_dev.jsonl (the reader's scale: a repeated turn is a flaw, one filler said
# all along is the bottom): from 0.7-0.9 to 0.5-0.8 the error against the reader fell 0.183 -> 0.166 (Spearman 0.769
# -> 0.797), while real 4-turn dialogue windows below 0.5 went 0.1 % -> 0.3 % (976 windows; 0.4-0.7: 0.148 but 0.8 %).
_ECHO_FROM, _ECHO_FULL, _ECHO_MIN_GRAMS = 0.5, 0.8, 4


def _kind(key: str) -> str:
    """One letter per morpheme: `l` a Latin word or number MeCab does not know, `k` an unknown katakana word (a
    loanword or a name: real text is full of them), `u` any other unknown word, `a` a classical conjugation (what
    random kana parses into), `p` a particle, `s` a space, ` ` anything else."""
    if key.startswith("?"):
        c = unicodedata.normalize("NFKC", key[1])
        if c.isascii() or unicodedata.category(c)[0] in "NPSZ":
            return "l"
        return "k" if all("\u30a0" <= c <= "\u30ff" for c in key[1:]) else "u"
    pos1, _, kind = key.split(",", 3)[:3]
    if pos1 == "空白":
        return "s"
    if kind.startswith("文語"):
        return "a"
    return "p" if pos1 == "助詞" else " "


def end_class(key: str) -> str:
    """What a turn ending on this morpheme ends on: its part of speech and form, or the word itself if closed-class.

    Unknown Latin words are told apart by shape: a cut `To` or `Kagg` is short or lower case after a capital.
    """
    if key.startswith("?"):
        word = unicodedata.normalize("NFKC", key[1:])
        if word.isascii() and word.isalpha():
            shape = "caps" if word.isupper() else "short" if len(word) <= 3 else "title" if word.istitle() else "word"
            return "?latin-" + shape
        return "?" + _kind(key) + ("-digit" if word[-1:].isdigit() else "")
    pos1, pos2, _, form, lemma = key.split(",", 4)
    if pos1 in ("助詞", "助動詞", "補助記号", "接尾辞", "接頭辞", "記号", "接続詞", "感動詞"):
        return f"{pos1}-{pos2}-{form.partition('-')[0]}-{lemma}"
    # A one-character noun (`平` of `平日`, `割` of `割引`) is how a word cut in two most often ends a turn.
    return f"{pos1}-{pos2}-{form.partition('-')[0]}" + ("-1" if len(lemma) == 1 and pos1 == "名詞" else "")


KIND = Memo(_kind)
END = Memo(end_class)


class Model(NamedTuple):
    """MeCab-cost priors, the end-of-turn table and the classifier that weighs the evidence, as frozen by build."""

    latin_cost: int  # the word cost a Latin word or number MeCab does not know reads at: an ordinary noun's
    prior: tuple[float, float]  # mean word and connection cost of real text the build did not fit on
    ends: dict[str, float]  # end class -> log-odds that a turn ending there is whole rather than cut
    weights: tuple[float, ...]  # per-feature weights with the standardisation folded in
    bias: float

    @classmethod
    def from_json(cls, m: dict) -> Model:
        c = m["classifier"]
        weights = tuple(w / s for w, s in zip(c["weights"], c["scale"], strict=True))
        bias = c["bias"] - sum(w * mu for w, mu in zip(weights, c["mean"], strict=True))
        return cls(m["latin_cost"], tuple(m["prior"]), m["ends"], weights, bias)


@functools.cache
def _model() -> Model:
    return Model.from_json(json.loads(MODEL.read_text(encoding="utf-8")))


def _loop_chars(text: str) -> int:
    """How many characters sit in loops: a unit of two or more characters said three or more times in a row.

    A one-character unit counts only from five in a row and never for digits, Latin letters or emphasis: `1000`,
    `SIII`, `ｗｗｗ` and `！！！` are ordinary writing, `ららら` and `ザザザ` are sound words; `//////` is not.
    """
    total = 0
    for m in _LOOP.finditer(text):
        unit = m.group(1)
        ordinary = unit.isdigit() or (unit.isascii() and unit.isalpha()) or unit in _EMPHASIS
        long_run = len(m.group(0)) >= 5 and not ordinary
        if len(unit) > 1 or long_run:
            total += len(m.group(0))
    return total


def end_odds(table: dict[str, float], cls: str) -> float:
    """A class's log-odds, or its part of speech's when the word itself was too rare to count (`不` → a prefix)."""
    odds = table.get(cls)
    return odds if odds is not None else table.get(cls.rsplit("-", 1)[0] + "-*", 0.0)


def _ending(keys: tuple[str, ...], kinds: str) -> str:
    """The end class of the last morpheme that is not a space ("<empty>" for none)."""
    last = len(kinds.rstrip("s")) - 1
    return END[keys[last]] if last >= 0 else "<empty>"


def ending(text: str) -> str:
    """The end class a text ends on (see `end_class`)."""
    a = analyse(text)
    return _ending(a.keys, "".join(map(KIND.__getitem__, a.keys)))


def _feature_matrix(texts: list[str], analyses: list[Analysis], model: Model) -> np.ndarray:
    """The classifier's inputs, one row per feature in the order of `FEATURES`, one column per text."""
    if not texts:
        return np.empty((len(FEATURES), 0))
    # Every text's costs as one array: "word link" per morpheme then the end's link, read by numpy in one call.
    costs = np.fromstring(" ".join(a.cost_text for a in analyses), np.int64, sep=" ")
    kinds = ["".join(map(KIND.__getitem__, a.keys)) for a in analyses]
    morphemes = np.array([len(a.keys) for a in analyses], np.int64)
    is_word = np.ones(len(costs), bool)
    is_word[np.cumsum(2 * morphemes + 1) - 1] = False  # the end's link
    word_at = np.flatnonzero(is_word)[0::2]
    words = costs[word_at].astype(np.float64)
    latin = np.frombuffer("".join(kinds).encode("ascii"), np.uint8) == ord("l")
    words[latin] = model.latin_cost
    links = np.delete(costs, word_at).astype(np.float64)  # each morpheme's link, then the end's
    text_of_word = np.repeat(np.arange(len(texts)), morphemes)
    text_of_link = np.repeat(np.arange(len(texts)), morphemes + 1)
    n = len(texts)
    # bincount adds each text's values in order, one at a time, so the sums do not depend on the batch around them
    word_sum = np.bincount(text_of_word, words, n)
    link_sum = np.bincount(text_of_link, links, n)
    rough = np.bincount(text_of_link, links >= _ROUGH_LINK, n)
    stats = np.array(
        [
            (
                end_odds(model.ends, _ending(a.keys, k)),
                min(_loop_chars(t) / 6, 1.0),
                len(set(zip(a.surfaces, a.surfaces[1:], a.surfaces[2:], strict=False))),
                k.count("u"),
                k.count("a"),
                sum(map(len, re.findall("p{4,}", k))),
                k.count("p"),
            )
            for t, a, k in zip(texts, analyses, kinds, strict=True)
        ],
        np.float64,
    ).reshape(-1, 7)
    grams, m = morphemes - 2, np.maximum(morphemes, 1)
    return np.array(
        [
            (word_sum + _PRIOR_WEIGHT * model.prior[0]) / (morphemes + _PRIOR_WEIGHT) / 1000,
            (link_sum + _PRIOR_WEIGHT * model.prior[1]) / (morphemes + 1 + _PRIOR_WEIGHT) / 1000,
            rough / (morphemes + 1),
            np.maximum(stats[:, 0], 0.0),  # a whole end (`。`, `ます`, `ね`)
            np.minimum(stats[:, 0], 0.0),  # a cut end (`が`, `To`): weighed apart, as it says more
            stats[:, 1],
            np.where(grams > 2, 1.0 - stats[:, 2] / np.maximum(grams, 3), 0.0),
            stats[:, 3] / m,
            stats[:, 4] / m,
            stats[:, 5] / m,
            stats[:, 6] / m,  # particle soup: `をからへをの対しかもも` has no long run, but little else
        ]
    )


def features(texts: list[str], model: Model | None = None) -> list[list[float]]:
    """The fluency classifier's inputs for each text, in the order of `FEATURES`."""
    return _feature_matrix(texts, [analyse(t) for t in texts], model or _model()).T.tolist()


def naturalness(texts: list[str], model: Model | None = None) -> list[float]:
    """Probability that each text is natural Japanese rather than a degenerate or corrupted generation."""
    texts = [strip_artefacts(t) for t in texts]  # tweet artefacts are contamination's finding; fluency judges language
    kept = [t for t in texts if t.strip()]
    model = model or _model()
    x = _feature_matrix(kept, [analyse(t) for t in kept], model)
    # cumsum adds one feature at a time, in order, as Python's `sum` does (numpy's `sum` adds pairwise)
    logits = iter((model.bias + np.cumsum(np.array(model.weights)[:, None] * x, axis=0)[-1]).tolist())
    out = []
    for text in texts:
        logit = next(logits) if text.strip() else -math.inf
        out.append(1.0 / (1.0 + math.exp(-logit)) if logit > -30 else 0.0)  # math.exp: numpy's may differ in a bit
    return out


def _trigrams(text: str) -> set[str]:
    text = "".join(filter(str.isalnum, text))
    return {text[i : i + 3] for i in range(len(text) - 2)}


def echoes(texts: Sequence[str]) -> list[float]:
    """How much each turn repeats one earlier turn of the conversation, 0 (new) to 1 (said before).

    The largest share of the turn's character trigrams (letters and digits only) that one earlier turn holds, mapped
    linearly from _ECHO_FROM (0) to _ECHO_FULL (1). One earlier turn at a time, so that endings every turn shares
    (`ですか`, `ました`) do not add up; in 1,000 real dialogues 0.8 % of turns (7,839; `ありがとうございます。` said
    twice, `はい、そうです。` after `はい、そうですね。`) take any penalty.
    """
    said: list[set[str]] = []
    out = []
    for text in texts:
        grams = _trigrams(text)
        share = max((len(grams & s) for s in said), default=0) / len(grams) if len(grams) >= _ECHO_MIN_GRAMS else 0.0
        out.append(min(max((share - _ECHO_FROM) / (_ECHO_FULL - _ECHO_FROM), 0.0), 1.0))
        said.append(grams)
    return out


def scores(conversations: Sequence[Conversation]) -> list[Score]:
    """`fluency` of each conversation, all turns of all of them scored in one pass."""
    per_turn = iter(naturalness([turn.text for c in conversations for turn in c.turns]))
    out = []
    for c in conversations:
        natural = [next(per_turn) for _ in c.turns]
        if not natural:
            out.append(Score(0.0, {"turns": [], "worst_turn": None, "echoes": []}))
            continue
        echo = echoes([strip_artefacts(t.text) for t in c.turns])
        values = [v * (1.0 - e) for v, e in zip(natural, echo, strict=True)]
        worst = min(range(len(values)), key=values.__getitem__)
        evidence = {
            "turns": [round(v, 4) for v in values],
            "worst_turn": worst,
            "echoes": [i for i, e in enumerate(echo) if e > 0],
        }
        # Read as a whole, a conversation is as good as its turns on average and held down by its worst: one cut or
        # looping turn in four makes a flawed conversation (the written scale's 3), not a three-quarters-good one.
        out.append(Score((sum(values) / len(values) + values[worst]) / 2, evidence))
    return out


# Artefact stripping lives in contamination.py, so its source is part of this rubric's version too.
@rubric(
    higher_is_better=True,
    data_files=(MECABRC, MODEL, DATA.parent / "_morph.py", DATA.parent / "contamination.py"),
    many=scores,
)
def fluency(conversation: Conversation) -> Score:
    """Naturalness of the turns' Japanese, mean with the worst turn, a repeated turn broken; higher = better."""
    return scores([conversation])[0]
