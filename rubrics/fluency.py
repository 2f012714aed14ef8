"""Fluency: how natural the Japanese of each turn is, from a frozen morpheme-class and character language model."""

from __future__ import annotations

import functools
import json
import math
import unicodedata
from collections import Counter
from collections.abc import Sequence
from typing import NamedTuple

import numpy as np

from rubrics._morph import CLASS, DATA, FLAG, MECABRC, Analysis, Memo, analyse
from rubrics._registry import rubric
from rubrics.contamination import strip_artefacts
from rubrics.records import Conversation, Score

MODEL = DATA / "fluency.json"

# The character model reads fullwidth forms as ASCII, every Latin letter as `a`, every digit as `0` and every
# symbol but sentence punctuation as `※`, so that jargon (Kaggle, LightGBM, EDA), numbers, emoji and （笑） cost
# what an ordinary word costs.
_KEPT_PUNCTUATION = frozenset("。、！？!?,.「」『』・…")


def _char_class(c: str) -> str:
    if "\uff01" <= c <= "\uff5e":
        c = chr(ord(c) - 0xFEE0)
    if c.isascii() and c.isalpha():
        return "a"
    if c.isascii() and c.isdigit():
        return "0"
    return "※" if unicodedata.category(c)[0] in "SP" and c not in _KEPT_PUNCTUATION else c


_CHAR_CLASSES = {c: k for c in range(0x21, 0x20000) if (k := _char_class(chr(c))) != chr(c)} | {0x3000: " "}
_PRIOR_WEIGHT = 3
FEATURES = ("morph_mean", "morph_unseen", "end", "char_mean", "char_unseen", "repeat", "types", "unknown", "archaic")


class Lookup(NamedTuple):
    """The language models as dense arrays, so that the turns of many conversations are scored in a few numpy calls.

    The arrays hold small indices into each table's distinct values rather than the values: smaller stays in cache.
    """

    char_ids: np.ndarray  # code point -> id of its normalised character (`chars`, the count, if never seen)
    chars: int
    char_pairs: np.ndarray  # `first * (chars + 1) + second` -> index into char_values (0: never seen)
    char_values: np.ndarray
    units: int  # how many morpheme units there are, `<s>`, `</s>` and `<unk>` included
    contexts: np.ndarray  # `a * units + b` -> row in trigrams (0: no seen trigram starts `a b`)
    trigrams: np.ndarray  # `row * units + c` -> index into trigram_values (0: never seen)
    trigram_values: np.ndarray
    backed_off: np.ndarray  # `b * units + c` -> what an unseen trigram `? b c` costs

    @classmethod
    def build(
        cls,
        n: int,
        morph: tuple[dict[str, float], ...],
        chars: dict[str, float],
        miss: float,
        backoff: float,
        floor: float,
    ) -> Lookup:
        uni, bi, tri = ({_code(k, n): v for k, v in table.items()} for table in morph)
        unigram = np.full(n, floor)
        unigram[list(uni)] = list(uni.values())
        bigram = np.tile(backoff + unigram, n)
        bigram[list(bi)] = list(bi.values())
        rows = {ab: row for row, ab in enumerate(sorted({k // n for k in tri}), 1)}
        contexts = np.zeros(n * n, np.int32)
        contexts[list(rows)] = list(rows.values())
        trigrams = {rows[k // n] * n + k % n: v for k, v in tri.items()}
        # Characters numbered by how many seen pairs they are in: the pairs of common characters then share one
        # corner of the pair table, which stays in the CPU cache (numbered by code point, each pair missed it).
        seen = Counter(c for pair in chars for c in pair)
        vocab = {c: i for i, c in enumerate(sorted(seen, key=lambda c: (-seen[c], c)))}
        normalised = np.arange(0x110000)
        normalised[list(_CHAR_CLASSES)] = [ord(c) for c in _CHAR_CLASSES.values()]
        ids = np.full(0x110000, len(vocab), np.int32)
        ids[[ord(c) for c in vocab]] = list(vocab.values())
        pairs = {vocab[a] * (len(vocab) + 1) + vocab[b]: v for (a, b), v in chars.items()}
        return cls(
            ids[normalised],
            len(vocab),
            *_indexed(pairs, (len(vocab) + 1) ** 2, miss),
            n,
            contexts,
            *_indexed(trigrams, (len(rows) + 1) * n, math.nan),
            backoff + bigram,  # stupid backoff: the bigram, or failing that the unigram, each one step down
        )


def _code(units: str, n: int) -> int:
    return sum((ord(u) - 0xE000) * n**i for i, u in enumerate(reversed(units)))


def _indexed(table: dict[int, float], size: int, default: float) -> tuple[np.ndarray, np.ndarray]:
    """`size` small indices into the table's distinct values (told apart by their bits), 0 standing for `default`."""
    bits, index = np.unique(np.array(list(table.values()), np.float64).view(np.int64), return_inverse=True)
    dense = np.zeros(size, np.min_scalar_type(len(bits)))
    dense[list(table)] = index + 1
    return dense, np.array([default, *bits.view(np.float64)])


class Model(NamedTuple):
    """The frozen language models over one-character units, and the classifier that weighs their evidence."""

    units: dict[str, str]  # morpheme class -> its one-character unit
    codes: dict[str, str]  # MeCab key -> its unit and its flag (see FLAG, " " for none), so one lookup a morpheme
    lookup: Lookup  # the unit trigram and character bigram models
    char_miss: float  # log-prob of a character bigram never seen in training
    prior: tuple[float, float]  # mean morpheme and character log-prob of unseen natural text
    weights: tuple[float, ...]  # per-feature weights with the standardisation folded in
    bias: float

    @classmethod
    def from_json(cls, m: dict) -> Model:
        # Common units first, so that the n-gram tables' busy cells sit together in the CPU cache.
        uni = m["morph"]["1"]
        vocab = ["<s>", "</s>", "<unk>", *sorted(m["vocab"], key=lambda u: (-uni.get(u, m["floor"]), u))]
        units = Memo(lambda _: "\ue002")
        units.update({c: chr(0xE000 + i) for i, c in enumerate(vocab)})
        codes = Memo(lambda key: units[CLASS[key]] + (FLAG[CLASS[key]] or " "))
        codes.update({pad: units[pad] + " " for pad in ("<s>", "</s>")})

        def keyed(table: dict[str, float]) -> dict[str, float]:
            return {"".join(units[c] for c in k.split(" ")): v for k, v in table.items()}

        morph = (keyed(m["morph"]["1"]), keyed(m["morph"]["2"]), keyed(m["morph"]["3"]))
        lookup = Lookup.build(len(vocab), morph, m["chars"]["2"], m["chars"]["miss"], m["backoff"], m["floor"])
        c = m["classifier"]
        weights = tuple(w / s for w, s in zip(c["weights"], c["scale"], strict=True))
        bias = c["bias"] - sum(w * mu for w, mu in zip(weights, c["mean"], strict=True))
        return cls(units, codes, lookup, m["chars"]["miss"], tuple(m["prior"]), weights, bias)


@functools.cache
def _model() -> Model:
    return Model.from_json(json.loads(MODEL.read_text(encoding="utf-8")))


class LogProbs(NamedTuple):
    """What the language models make of one text."""

    morph: list[float]  # stupid-backoff log-prob of each morpheme unit given the two before it, then of the end
    unseen: int  # how many of those trigrams training never saw
    chars: list[float]  # log-prob of each character given the one before it (Latin as `a`, digits as `0`)


def _language_models(
    texts: list[str], analyses: list[Analysis], model: Model
) -> tuple[list[str], np.ndarray, np.ndarray, np.ndarray]:
    """Both language models over many texts at once, laid out end to end.

    Returns each text's unit-and-flag codes, then per morpheme window the log-prob and the trigram's index (0: never
    seen), then the character pairs' log-probs. Text i has `len(analyses[i].keys) + 1` windows (its morphemes, then
    its end) followed by 2 across texts, and `len(texts[i]) - 1` character pairs followed by 1 across texts.
    """
    lk = model.lookup
    keyed = ["".join(map(model.codes.__getitem__, a.keys)) for a in analyses]
    start, end = model.units["<s>"], model.units["</s>"]
    units = start * 2 + (end + start * 2).join([k[::2] for k in keyed]) + end
    ids = np.frombuffer(units.encode("utf-32-le"), "<u4") - 0xE000
    rows = ids * lk.units
    context = rows[1:-1] + ids[2:]  # windows across two texts are looked up and never read
    found = lk.trigrams[lk.contexts[rows[:-2] + ids[1:-1]] * lk.units + ids[2:]]
    morph = np.where(found, lk.trigram_values[found], lk.backed_off[context])
    ids = lk.char_ids[np.frombuffer("".join(texts).encode("utf-32-le", "surrogatepass"), "<u4")]
    chars = lk.char_values[lk.char_pairs[ids[:-1] * (lk.chars + 1) + ids[1:]]]
    return keyed, morph, found, chars


def logprobs(texts: list[str], model: Model) -> list[LogProbs]:
    """Both language models over several texts at once: numpy's per-call cost is paid once, not once a text."""
    keyed, morph, found, chars = _language_models(texts, [analyse(t) for t in texts], model)
    morph, found, chars = morph.tolist(), found.tolist(), chars.tolist()
    out = []
    m = c = 0
    for text, k in zip(texts, keyed, strict=True):
        n = len(k) // 2 + 1
        out.append(LogProbs(morph[m : m + n], found[m : m + n].count(0), chars[c : c + len(text) - 1]))
        m, c = m + n + 2, c + len(text)
    return out


def normalise_chars(text: str) -> str:
    return text.translate(_CHAR_CLASSES)


def _labels(lengths: np.ndarray, gap: np.ndarray | int, size: int) -> np.ndarray:
    """Which text each of `size` values laid out end to end, `gap` apart, belongs to: 2i for text i, odd for gaps."""
    counts = np.empty(2 * len(lengths), np.int64)
    counts[0::2], counts[1::2] = lengths, gap
    return np.repeat(np.arange(len(counts)), counts)[:size]  # the last text has no gap after it


def _sums(labels: np.ndarray, values: np.ndarray | None, texts: int) -> np.ndarray:
    """Each text's sum of `values` (its count of labels if None).

    bincount adds each text's values in order, one at a time, as Python's `sum` does, so the sums are the same
    floats to the bit (numpy's own `sum` adds pairwise, which rounds differently).
    """
    return np.bincount(labels, values, 2 * texts)[0::2]


def _feature_matrix(texts: list[str], analyses: list[Analysis], model: Model) -> np.ndarray:
    """The classifier's inputs, one row per feature in the order of `FEATURES`, one column per text."""
    if not texts:
        return np.empty((len(FEATURES), 0))
    keyed, morph, found, chars = _language_models(texts, analyses, model)
    morphemes = np.array([len(a.keys) for a in analyses], np.int64)
    windows = _labels(morphemes + 1, 2, len(morph))
    total, unseen = _sums(windows, morph, len(texts)), _sums(windows[found == 0], None, len(texts))
    end = morph[np.cumsum(morphemes + 3) - 3]
    pairs = np.array(list(map(len, texts)), np.int64) - 1
    at = _labels(np.maximum(pairs, 0), pairs >= 0, len(chars))
    char_total, char_misses = _sums(at, chars, len(texts)), _sums(at[chars == model.char_miss], None, len(texts))
    # A one-character text has no pair: it reads as one pair at the prior's log-prob.
    none = pairs < 1
    char_total = np.where(none, model.prior[1], char_total)  # np.where: bincount of nothing is an int array
    char_misses = np.where(none, model.prior[1] == model.char_miss, char_misses)
    pairs = np.where(none, 1, pairs)
    stats = np.array(
        [
            (len(set(zip(s, s[1:], s[2:], strict=False))), len(set(s)), k.count("u"), k.count("a"))
            for (s, _), k in zip(analyses, keyed, strict=True)
        ],
        np.int64,
    ).reshape(-1, 4)
    grams, n = morphemes - 2, np.maximum(morphemes, 1)
    # Means are shrunk towards natural text by _PRIOR_WEIGHT pseudo-tokens, so one rare word in a three-word reply
    # ("うん、行こう") does not make it read as garbage; long garbage still averages low.
    return np.array(
        [
            (total - end + _PRIOR_WEIGHT * model.prior[0]) / (morphemes + _PRIOR_WEIGHT),
            unseen / (morphemes + 1),
            end,
            (char_total + _PRIOR_WEIGHT * model.prior[1]) / (pairs + _PRIOR_WEIGHT),
            char_misses / pairs,
            np.where(grams > 2, 1.0 - stats[:, 0] / np.maximum(grams, 3), 0.0),  # degenerate loops
            1.0 - stats[:, 1] / n,
            stats[:, 2] / n,
            stats[:, 3] / n,
        ]
    )


def features(texts: list[str], model: Model | None = None) -> list[list[float]]:
    """The fluency classifier's inputs for each text, in the order of `FEATURES`."""
    return _feature_matrix(texts, [analyse(t) for t in texts], model or _model()).T.tolist()


def naturalness(texts: list[str]) -> list[float]:
    """Probability that each text is natural Japanese rather than a degenerate or corrupted generation."""
    texts = [strip_artefacts(t) for t in texts]  # tweet artefacts are contamination's finding; fluency judges language
    kept = [t for t in texts if t.strip()]
    model = _model()
    x = _feature_matrix(kept, [analyse(t) for t in kept], model)
    # cumsum adds one feature at a time, in order, as Python's `sum` does (numpy's `sum` adds pairwise)
    logits = iter((model.bias + np.cumsum(np.array(model.weights)[:, None] * x, axis=0)[-1]).tolist())
    out = []
    for text in texts:
        logit = next(logits) if text.strip() else -math.inf
        out.append(
            1.0 / (1.0 + math.exp(-logit)) if logit > -30 else 0.0
        )  # math.exp: numpy's may differ in the last bit
    return out


def scores(conversations: Sequence[Conversation]) -> list[Score]:
    """`fluency` of each conversation, all turns of all of them scored in one pass."""
    per_turn = iter(naturalness([turn.text for c in conversations for turn in c.turns]))
    out = []
    for c in conversations:
        values = [next(per_turn) for _ in c.turns]
        if not values:
            out.append(Score(0.0, {"turns": [], "worst_turn": None}))
            continue
        worst = min(range(len(values)), key=values.__getitem__)
        out.append(Score(sum(values) / len(values), {"turns": [round(v, 4) for v in values], "worst_turn": worst}))
    return out


# Artefact stripping lives in contamination.py, so its source is part of this rubric's version too.
@rubric(
    higher_is_better=True,
    data_files=(MECABRC, MODEL, DATA.parent / "_morph.py", DATA.parent / "contamination.py"),
    many=scores,
)
def fluency(conversation: Conversation) -> Score:
    """Naturalness of the turns' Japanese, mean over turns; higher = more natural (0 = garbage or empty)."""
    return scores([conversation])[0]
