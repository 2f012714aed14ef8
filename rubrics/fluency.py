"""Fluency: how natural the Japanese of each turn is, from a frozen morpheme-class and character language model."""

from __future__ import annotations

import functools
import json
import math
import unicodedata
from pathlib import Path
from typing import NamedTuple

from harness.records import Conversation, Score
from rubrics._registry import rubric
from rubrics.contamination import strip_artefacts

DATA = Path(__file__).parent / "data"
MECABRC = DATA / "mecabrc"
MODEL = DATA / "fluency.json"

# Closed-class words keep their lemma in the language model; open-class words collapse to their part of speech.
_LEXICAL_POS = frozenset({"助詞", "助動詞", "補助記号", "接尾辞", "代名詞", "連体詞", "接続詞", "感動詞", "記号"})
_CONJUGATING_POS = frozenset({"動詞", "形容詞"})
# Latin words, digits and fullwidth forms all read as "a" or "0" to the character model, so that jargon
# (Kaggle, LightGBM, EDA) and numbers cost what an ordinary word costs.
_CHAR_CLASSES = str.maketrans(
    {**{c: "a" for c in "abcdefghijklmnopqrstuvwxyzABCDEFGHIJKLMNOPQRSTUVWXYZ"}, **{c: "0" for c in "0123456789"}}
)
FEATURES = ("morph_mean", "morph_low", "end", "char_mean", "char_low", "repeat", "types", "unknown", "archaic")


class Analysis(NamedTuple):
    """One text parsed once by MeCab and shared by every rubric."""

    surfaces: tuple[str, ...]
    lemmas: tuple[str, ...]  # the dictionary lemma, or the NFKC-lowercased surface of an unknown word
    classes: tuple[str, ...]  # language-model units: a closed-class lemma or an open-class part of speech
    unknown: int  # unknown words that are not Latin, digits or symbols
    archaic: int  # classical-grammar forms, which random kana strings parse into and modern text never uses


@functools.cache
def _tagger():  # noqa: ANN202 - fugashi has no stubs
    import fugashi

    return fugashi.Tagger(f"-r {MECABRC} -O harness")


def _script(surface: str) -> str:
    c = surface[0]
    if c.isascii() or unicodedata.category(c)[0] in "NP":
        return "latin" if c.isalpha() else "symbol"
    if "\u3040" <= c <= "\u309f":
        return "hiragana"
    if "\u30a0" <= c <= "\u30ff":
        return "katakana"
    return "kanji" if "\u4e00" <= c <= "\u9fff" else "other"


@functools.lru_cache(maxsize=1 << 16)
def analyse(text: str) -> Analysis:
    """Morphemes of one text: surfaces, lemmas and language-model classes (cached: rubrics share one parse)."""
    surfaces, lemmas, classes = [], [], []
    unknown = archaic = 0
    for line in _tagger().parse(text).split("\n"):
        if not line:
            continue
        surface, pos1, pos2, kind, form, lemma = line.split("\t")
        if lemma == "?":
            script = _script(surface)
            lemma = unicodedata.normalize("NFKC", surface).lower()
            if script in ("latin", "symbol"):
                cls = "名詞-普通名詞"
            else:
                cls = "UNK-" + script
                unknown += 1
        elif pos1 in _LEXICAL_POS:
            cls = lemma
        elif pos1 in _CONJUGATING_POS:
            cls = pos1 + form.partition("-")[0]
            archaic += kind.startswith("文語")
        else:
            cls = f"{pos1}-{pos2}"
        surfaces.append(surface)
        lemmas.append(lemma)
        classes.append(cls)
    return Analysis(tuple(surfaces), tuple(lemmas), tuple(classes), unknown, archaic)


class Model(NamedTuple):
    """The frozen language models and the classifier that weighs their evidence."""

    morph: tuple[dict[str, float], dict[str, float], dict[str, float]]  # unigram, bigram, trigram log-probs
    chars: tuple[dict[str, float], dict[str, float]]  # unigram, bigram log-probs
    backoff: float
    floor: float
    low: float
    mean: list[float]
    scale: list[float]
    weights: list[float]
    bias: float

    @classmethod
    def from_json(cls, m: dict) -> Model:
        c = m["classifier"]
        return cls(
            (m["morph"]["1"], m["morph"]["2"], m["morph"]["3"]),
            (m["chars"]["1"], m["chars"]["2"]),
            m["backoff"],
            m["floor"],
            m["low"],
            c["mean"],
            c["scale"],
            c["weights"],
            c["bias"],
        )


@functools.cache
def _model() -> Model:
    return Model.from_json(json.loads(MODEL.read_text(encoding="utf-8")))


def _morph_logprobs(classes: tuple[str, ...], model: Model) -> list[float]:
    """Stupid-backoff trigram log-probabilities of each class and of the end of the text."""
    uni, bi, tri = model.morph
    a, b = "<s>", "<s>"
    out = []
    for c in (*classes, "</s>"):
        lp = tri.get(f"{a} {b} {c}")
        if lp is None:
            lp = bi.get(f"{b} {c}")
            lp = model.backoff + (lp if lp is not None else model.backoff + uni.get(c, model.floor))
        out.append(lp)
        a, b = b, c
    return out


def normalise_chars(text: str) -> str:
    """What the character model reads: NFKC, Latin letters as `a`, digits as `0`."""
    return unicodedata.normalize("NFKC", text).translate(_CHAR_CLASSES)


def _char_logprobs(text: str, model: Model) -> list[float]:
    uni, bi = model.chars
    s = normalise_chars(text)
    out = []
    for i in range(1, len(s)):
        lp = bi.get(s[i - 1 : i + 1])
        out.append(lp if lp is not None else model.backoff + uni.get(s[i], model.floor))
    return out or [model.floor]


def _repeat(surfaces: tuple[str, ...]) -> float:
    """Share of repeated morpheme 3-grams: near 0 in natural text, near 1 in a degenerate loop."""
    grams = list(zip(surfaces, surfaces[1:], surfaces[2:], strict=False))
    return 1.0 - len(set(grams)) / len(grams) if len(grams) > 2 else 0.0


def features(text: str, model: Model | None = None) -> list[float]:
    """The fluency classifier's inputs for one text, in the order of `FEATURES`."""
    model = model or _model()
    a = analyse(text)
    n = max(len(a.classes), 1)
    morph = _morph_logprobs(a.classes, model)
    chars = _char_logprobs(text, model)
    return [
        sum(morph[:-1]) / n if len(morph) > 1 else model.floor,
        sum(lp < model.low for lp in morph[:-1]) / n,
        morph[-1],
        sum(chars) / len(chars),
        sum(lp < model.low for lp in chars) / len(chars),
        _repeat(a.surfaces),
        1.0 - len(set(a.surfaces)) / n,
        a.unknown / n,
        a.archaic / n,
    ]


def text_fluency(text: str) -> float:
    """Probability that one text is natural Japanese rather than a degenerate or corrupted generation."""
    text = strip_artefacts(text)  # tweet artefacts are contamination's finding; fluency judges the language
    if not text.strip():
        return 0.0
    model = _model()
    z = model.bias + sum(
        w * (x - mu) / s for w, x, mu, s in zip(model.weights, features(text), model.mean, model.scale, strict=True)
    )
    return 1.0 / (1.0 + math.exp(-z)) if z > -30 else 0.0


@rubric(higher_is_better=True, data_files=(MECABRC, MODEL))
def fluency(conversation: Conversation) -> Score:
    """Naturalness of the turns' Japanese, mean over turns; higher = more natural (0 = garbage or empty)."""
    per_turn = [text_fluency(turn.text) for turn in conversation.turns]
    if not per_turn:
        return Score(0.0, {"turns": [], "worst_turn": None})
    worst = min(range(len(per_turn)), key=per_turn.__getitem__)
    return Score(
        sum(per_turn) / len(per_turn),
        {"turns": [round(v, 4) for v in per_turn], "worst_turn": worst},
    )
