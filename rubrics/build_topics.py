"""Rebuild relevance's word classes from real-corpus word vectors: `python -m rubrics.build_topics GINZA_DIR`.

Words the rubric's training text never shows still tell the topic: `陸上`, `卓球` and `野球` fall in one class of the
chiVe word vectors (trained by Works Applications on the NWJC web corpus, billions of words; Apache-2.0), so a medal
in a sports sentence reads as sport even when the classifier has never seen `陸上`. The vectors come from the
`ja-ginza` wheel (`pip download ja-ginza==5.3.0 --no-deps`, unzip; pass the folder holding `vocab/`), which prunes
chiVe to 20,000 rows and maps every other word to its nearest row. Which words enter the table is the 40,000 most
frequent Japanese words of `wordfreq` (many real sources; its word lists are CC-BY-SA 4.0), kept where unidic-lite
reads the word as one content morpheme, keyed by that morpheme's lemma as `rubrics.relevance` sees it.

Needs `wordfreq` and `msgpack` (build-time only; the rubric reads the frozen table). Deterministic: k-means with a
fixed seed on sorted rows. The table is frozen in `rubrics/data/relevance_topics.json`; `python -m rubrics.build`
then trains the classifier with the classes as features.
"""

from __future__ import annotations

import argparse
import json
from pathlib import Path

import numpy as np
from sklearn.cluster import KMeans

from rubrics._morph import analyse
from rubrics.relevance import TOPIC, TOPICS

CLASSES = 256  # not tuned: coarse enough that a class has training words, fine enough that sport is a class
WORDS = 40_000
_M, _MASK = 0xC6A4A7935BD1E995, (1 << 64) - 1


def spacy_hash(text: str) -> int:
    """spaCy's string key: MurmurHash64A of the UTF-8 bytes, seed 1 (so the vectors load without spaCy)."""
    data = text.encode("utf-8")
    h = (1 ^ (len(data) * _M)) & _MASK
    n = len(data) // 8
    for i in range(n):
        k = (int.from_bytes(data[8 * i : 8 * i + 8], "little") * _M) & _MASK
        k = ((k ^ (k >> 47)) * _M) & _MASK
        h = ((h ^ k) * _M) & _MASK
    if len(data) % 8:
        h = ((h ^ int.from_bytes(data[8 * n :], "little")) * _M) & _MASK
    h = ((h ^ (h >> 47)) * _M) & _MASK
    return h ^ (h >> 47)


def word_rows(ginza: Path) -> dict[str, int]:
    """Each string of the model's vocabulary that has a vector, with its row."""
    import msgpack

    key2row = msgpack.unpackb((ginza / "vocab" / "key2row").read_bytes(), strict_map_key=False)
    strings = json.loads((ginza / "vocab" / "strings.json").read_text(encoding="utf-8"))
    return {s: key2row[h] for s in strings if (h := spacy_hash(s)) in key2row}


def topic_classes(ginza: Path, classes: int = CLASSES) -> dict[str, list[str]]:
    """Lemma classes named by their most frequent lemma, each class's lemmas in frequency order."""
    from wordfreq import top_n_list

    rows = word_rows(ginza)
    lemma_row: dict[str, int] = {}
    for word in top_n_list("ja", WORDS):
        keys = analyse(word).keys
        if word in rows and len(keys) == 1 and TOPIC[keys[0]]:
            lemma_row.setdefault(TOPIC[keys[0]], rows[word])
    used = sorted(set(lemma_row.values()))
    vectors = np.load(ginza / "vocab" / "vectors")[used]
    vectors /= np.linalg.norm(vectors, axis=1, keepdims=True) + 1e-9
    labels = KMeans(classes, n_init=1, random_state=0, max_iter=100).fit(vectors).labels_
    label = dict(zip(used, labels.tolist(), strict=True))
    groups: dict[int, list[str]] = {}
    for lemma, row in lemma_row.items():  # frequency order: the first lemma of a class names it
        groups.setdefault(label[row], []).append(lemma)
    return {words[0]: words for words in sorted(groups.values(), key=lambda words: words[0])}


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("ginza", type=Path, help="the ja_ginza model folder (holds vocab/vectors)")
    parser.add_argument("--out", type=Path, default=TOPICS, help="where to write the table (default: shipped)")
    args = parser.parse_args(argv)
    if not (args.ginza / "vocab" / "vectors").is_file():
        parser.exit(2, f"{args.ginza}: no vocab/vectors here; pass the unzipped ja_ginza-5.3.0 model folder\n")
    table = {"source": "chiVe via ja-ginza 5.3.0; words: wordfreq ja top 40000", "classes": topic_classes(args.ginza)}
    args.out.write_text(json.dumps(table, ensure_ascii=False, sort_keys=True), encoding="utf-8")
    print(f"wrote {args.out} ({args.out.stat().st_size / 1024:.0f} KiB, {len(table['classes'])} classes)")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
