"""Rebuild the rubrics' frozen artefacts from data shipped in the repo: `python -m rubrics.build`.

Deterministic (fixed seed, sorted inputs); any text that is also in data/validation is dropped from training.
"""

from __future__ import annotations

import argparse
import importlib
import itertools
import json
import math
import random
import re
from collections import Counter
from collections.abc import Callable, Iterator
from pathlib import Path

import numpy as np
from scipy.sparse import csr_matrix
from sklearn.linear_model import LogisticRegression

from rubrics.contamination import strip_artefacts

# The package re-exports the rubric objects under the module names, so reach the modules themselves.
fluency = importlib.import_module("rubrics.fluency")
relevance = importlib.import_module("rubrics.relevance")

ROOT = Path(__file__).resolve().parent.parent
GENERAL = ROOT / "data" / "general_ja.jsonl"
TWEETS = ROOT / "data" / "kaggle_tweets.jsonl"
TRAIN = ROOT / "data" / "rubric_train"
VALIDATION = ROOT / "data" / "validation"
SEED = 20240601
BACKOFF = round(math.log(0.4), 3)  # stupid backoff's constant
_SPEAKER = re.compile(r"^[^：:\n]{1,20}[：:]")

Corruption = Callable[[str, random.Random], str]


def read_jsonl(path: Path) -> Iterator[dict]:
    with path.open(encoding="utf-8") as f:
        yield from (json.loads(line) for line in f if line.strip())


def general_lines() -> list[str]:
    """General Japanese, one utterance per line, speaker labels removed."""
    lines = []
    for row in read_jsonl(GENERAL):
        for line in row["text"].split("\n"):
            line = _SPEAKER.sub("", line).strip()
            if len(line) >= 8:
                lines.append(line)
    return lines


def labelled_relevance() -> list[tuple[str, str, float]]:
    """(text, class, sample weight): tweets (artefacts cut) are Kaggle talk, general text is other, plus our rows."""
    rows = [(strip_artefacts(r["text"]), "kaggle", 1.0) for r in read_jsonl(TWEETS)]
    rows += [(line, "other", 1.0) for line in general_lines()]
    # Hand-written rows carry the hard cases (ML talk, Olympic medals, notebook PCs), so they count for more.
    rows += [(r["text"], r["label"], 4.0) for r in read_jsonl(TRAIN / "relevance.jsonl")]
    return [r for r in rows if len(r[0]) >= 4]


def labelled_context() -> list[tuple[str, str, float]]:
    """Rows that teach context (medals, ranks, scores in sport and school; LB/CV/サブ without the word Kaggle).

    Relevance's alone: fluency's natural text is the tweets, the general text and `labelled_relevance`.
    """
    return [(r["text"], r["label"], 4.0) for r in read_jsonl(TRAIN / "relevance_context.jsonl")]


def validation_texts() -> set[str]:
    texts = set()
    for path in sorted(VALIDATION.glob("*.jsonl")):
        for row in read_jsonl(path):
            texts.update(t["text"] for t in row["turns"]) if "turns" in row else texts.add(row["text"])
    return texts


# --- corruptions: what small or drifting models emit -------------------------------------------------------------

_HIRAGANA = [chr(c) for c in range(0x3041, 0x3094)]
_KATAKANA = [chr(c) for c in range(0x30A1, 0x30F7)]
_LATIN = list("abcdefghijklmnopqrstuvwxyzABCDEFGHIJKLMNOPQRSTUVWXYZ0123456789")
_SYMBOLS = list("!?#%&*+-=<>/()[]「」、。・…ー～@$")


def shuffle_words(text: str, rng: random.Random) -> str:
    words = list(fluency.analyse(text).surfaces)
    rng.shuffle(words)
    return "".join(words)


def shuffle_chars(text: str, rng: random.Random) -> str:
    chars = list(text)
    if rng.random() < 0.5:
        rng.shuffle(chars)
    else:  # local shuffles inside short windows keep the script mix but break every word
        for i in range(0, len(chars), 4):
            window = chars[i : i + 4]
            rng.shuffle(window)
            chars[i : i + 4] = window
    return "".join(chars)


def repetition(text: str, rng: random.Random) -> str:
    words = fluency.analyse(text).surfaces
    start = rng.randrange(max(len(words) - 1, 1))
    loop = "".join(words[start : start + rng.randint(1, 6)]) or text[:3]
    times = rng.randint(3, 12)
    prefix = "".join(words[:start]) if rng.random() < 0.6 else ""
    return (prefix + loop * times)[: max(len(text), len(loop) * 3) + rng.randint(0, 20)]


def random_kana(text: str, rng: random.Random) -> str:
    pool = _HIRAGANA if rng.random() < 0.6 else _HIRAGANA + _KATAKANA
    out = [rng.choice(pool) for _ in range(rng.randint(8, max(len(text), 12)))]
    for _ in range(rng.randint(0, 2)):
        out.insert(rng.randrange(len(out)), rng.choice("、。"))
    return "".join(out)


def mixed_script(text: str, rng: random.Random, kanji: list[str] | None = None) -> str:
    pools = [_HIRAGANA, _KATAKANA, _LATIN, _SYMBOLS, kanji or list("日本語学習機械予測分析大会")]
    if rng.random() < 0.5:
        return "".join(rng.choice(rng.choice(pools)) for _ in range(rng.randint(8, max(len(text), 12))))
    words = list(fluency.analyse(text).surfaces)  # natural words with garbage spliced between them
    for _ in range(max(len(words) // 2, 2)):
        junk = "".join(rng.choice(rng.choice(pools)) for _ in range(rng.randint(1, 4)))
        words.insert(rng.randrange(len(words) + 1), junk)
    return "".join(words)


def truncate(text: str, rng: random.Random) -> str:
    """Cut mid-clause: after a particle, a noun or a verb stem, never at a sentence end."""
    a = fluency.analyse(text)
    cuts = [
        i
        for i in range(2, len(a.classes))
        if a.classes[i - 1] not in ("。", "！", "？", "!", "?", "ね", "よ", "か", "です", "ます", "た", "だ")
        and not a.classes[i - 1].startswith("補助記号")
    ]
    if not cuts:
        return text[: max(len(text) // 2, 1)]
    cut = rng.choice(cuts[len(cuts) // 4 :] or cuts)
    return "".join(a.surfaces[:cut]).rstrip("、,")


CORRUPTIONS: dict[str, Corruption] = {
    "shuffled_words": shuffle_words,
    "shuffled_chars": shuffle_chars,
    "repetition": repetition,
    "random_kana": random_kana,
    "mixed_script": mixed_script,
    "truncation": truncate,
}


# --- fluency -----------------------------------------------------------------------------------------------------


def _logprob_table(counts: Counter[str], context: Callable[[str], str], context_counts: Counter[str]) -> dict:
    return {k: round(math.log(c / context_counts[context(k)]), 2) for k, c in sorted(counts.items())}


def language_models(texts: list[str]) -> dict:
    """Stupid-backoff morpheme-class trigram and character bigram tables (rare n-grams pruned to stay small)."""
    m1, m2, m3, c1, c2 = Counter(), Counter(), Counter(), Counter(), Counter()
    for text in texts:
        seq = ["<s>", "<s>", *fluency.analyse(text).classes, "</s>"]
        m1.update(seq[2:])
        m2.update(f"{a} {b}" for a, b in itertools.pairwise(seq[1:]))
        m3.update(f"{a} {b} {c}" for a, b, c in zip(seq, seq[1:], seq[2:], strict=False))
        s = fluency.normalise_chars(text)
        c1.update(s)
        c2.update(s[i : i + 2] for i in range(len(s) - 1))
    ctx2 = Counter({"<s>": len(texts), **m1})
    ctx3 = Counter({"<s> <s>": len(texts), **m2})
    total, chars = sum(m1.values()), sum(c1.values())
    return {
        "vocab": sorted(set(m1) - {"</s>"}),
        "morph": {
            "1": {k: round(math.log(c / total), 2) for k, c in sorted(m1.items())},
            "2": _logprob_table(m2, lambda k: k.split(" ")[0], ctx2),
            "3": _logprob_table(Counter({k: c for k, c in m3.items() if c >= 2}), lambda k: k.rsplit(" ", 1)[0], ctx3),
        },
        "chars": {"2": _logprob_table(c2, lambda k: k[0], c1), "miss": _char_miss(c1, chars)},
        "backoff": BACKOFF,
        "floor": round(math.log(0.5 / chars), 2),
    }


def _char_miss(c1: Counter[str], total: int) -> float:
    """What an unseen character pair costs: backing off to the mean unigram log-prob over character types."""
    return round(BACKOFF + sum(math.log(c / total) for c in c1.values()) / len(c1), 2)


def build_fluency(natural: list[str], rng: random.Random) -> dict:
    """Language model on 4/5 of the natural text; classifier on the rest against its corruptions."""
    rng.shuffle(natural)
    # Half the texts lose their final 。/！: chat turns often end without one, and only a cut clause should cost.
    natural = [t.rstrip("。！!．.") if i % 2 and len(t) > 8 else t for i, t in enumerate(natural)]
    held = natural[: len(natural) // 5]
    model = language_models(natural[len(natural) // 5 :])
    lm = fluency.Model.from_json({**model, "prior": [0.0, 0.0], "classifier": _identity()})
    model["prior"] = _prior(held, lm)
    lm = fluency.Model.from_json({**model, "classifier": _identity()})
    kanji = sorted({c for t in natural for c in t if "\u4e00" <= c <= "\u9fff"})
    samples, y = [], []
    for i, text in enumerate(held):
        kind = list(CORRUPTIONS)[i % len(CORRUPTIONS)]
        bad = mixed_script(text, rng, kanji) if kind == "mixed_script" else CORRUPTIONS[kind](text, rng)
        for sample, label in ((text, 1), (bad, 0)):
            if sample.strip():
                samples.append(sample)
                y.append(label)
    return {**model, "classifier": _fit_scaled(np.array(fluency.features(samples, lm)), np.array(y))}


def _prior(texts: list[str], lm: fluency.Model) -> list[float]:
    """Mean morpheme and character log-probability of natural text the model has not seen: short texts lean on it."""
    logprobs = fluency.logprobs(texts, lm)
    morph = [lp for p in logprobs for lp in p.morph[:-1]]  # the end of a text is a feature of its own
    chars = [lp for p in logprobs for lp in p.chars]
    return [round(sum(morph) / len(morph), 3), round(sum(chars) / len(chars), 3)]


def _identity() -> dict:
    n = len(fluency.FEATURES)
    return {"mean": [0.0] * n, "scale": [1.0] * n, "weights": [0.0] * n, "bias": 0.0}


def _fit_scaled(x: np.ndarray, y: np.ndarray) -> dict:
    mean, scale = x.mean(axis=0), x.std(axis=0) + 1e-9
    # Strong regularisation: synthetic corruptions are separable, and unbounded weights would let one odd feature
    # of an unusual but natural text (an emoji, a rare symbol) veto it.
    clf = LogisticRegression(C=0.05, max_iter=1000).fit((x - mean) / scale, y)
    return {
        "features": list(fluency.FEATURES),
        "mean": [round(float(v), 6) for v in mean],
        "scale": [round(float(v), 6) for v in scale],
        "weights": [round(float(v), 6) for v in clf.coef_[0]],
        "bias": round(float(clf.intercept_[0]), 6),
    }


# --- relevance ---------------------------------------------------------------------------------------------------


def build_relevance(rows: list[tuple[str, str, float]]) -> dict:
    """Multinomial logistic regression on binary lemma uni/bigrams (features seen twice or more).

    Binary without length normalisation and C=3 won a 5-fold cross-validation on the training rows.
    """
    words = [{f for f in relevance.text_features([text]) if not f.startswith("@")} for text, _, _ in rows]
    known = {f for f, c in Counter(f for d in words for f in d).items() if c >= 2}
    docs = [relevance.text_features([text], known) for text, _, _ in rows]  # classes back off for the rare words
    df = Counter(f for d in docs for f in d)
    vocab = sorted(f for f, c in df.items() if c >= 2)
    index = {f: i for i, f in enumerate(vocab)}
    indptr, cols, vals = [0], [], []
    for d in docs:
        row = sorted(index[f] for f in d if f in index)
        cols += row
        vals += [1.0] * len(row)
        indptr.append(len(cols))
    x = csr_matrix((vals, cols, indptr), shape=(len(rows), len(vocab)))
    y = np.array([relevance.CLASSES.index(label) for _, label, _ in rows])
    w = np.array([weight for _, _, weight in rows])
    w = w * (len(rows) / (len(relevance.CLASSES) * np.bincount(y, weights=w)[y]))  # balance the classes
    clf = LogisticRegression(C=3.0, max_iter=3000).fit(x, y, sample_weight=w)
    keep = np.abs(clf.coef_).max(axis=0) >= 0.05
    return {
        "classes": list(relevance.CLASSES),
        "bias": [round(float(b), 4) for b in clf.intercept_],
        "weights": {f: [round(float(v), 3) for v in clf.coef_[:, i]] for i, f in enumerate(vocab) if keep[i]},
    }


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--out", type=Path, default=fluency.DATA, help="folder for the artefacts (default: shipped)")
    out = parser.parse_args(argv).out
    held_out = validation_texts()
    rel_rows = [r for r in labelled_relevance() if r[0] not in held_out]
    chat = [r["text"] for r in read_jsonl(TRAIN / "natural.jsonl")]
    natural = sorted({text for text, _, _ in rel_rows} | set(chat) - held_out)
    artefacts = {
        out / fluency.MODEL.name: build_fluency(natural, random.Random(SEED)),
        out / relevance.MODEL.name: build_relevance(rel_rows + [r for r in labelled_context() if r[0] not in held_out]),
    }
    for path, content in artefacts.items():
        path.write_text(json.dumps(content, ensure_ascii=False, sort_keys=True), encoding="utf-8")
        print(f"wrote {path} ({path.stat().st_size / 1024:.0f} KiB)")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
