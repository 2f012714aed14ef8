"""The shared morphological layer: one MeCab (fugashi, unidic-lite) parse per text, read by every rubric."""

from __future__ import annotations

import csv
import functools
import unicodedata
from collections.abc import Callable
from pathlib import Path
from typing import NamedTuple

DATA = Path(__file__).parent / "data"
MECABRC = DATA / "mecabrc"

# Closed-class words keep their lemma in the language model; open-class words collapse to their part of speech.
_LEXICAL_POS = frozenset({"助詞", "助動詞", "補助記号", "接尾辞", "代名詞", "連体詞", "接続詞", "感動詞", "記号"})
_CONJUGATING_POS = frozenset({"動詞", "形容詞"})


class Memo(dict):
    """A dict that computes and keeps what it lacks, so a per-morpheme mapping runs as one C-level `map`."""

    def __init__(self, compute: Callable[[str], object]) -> None:
        super().__init__()
        self.compute = compute

    def __missing__(self, key: str) -> object:
        if len(self) > 500_000:  # unknown words are part of their key; keep a long run's memory bounded
            self.clear()
        value = self[key] = self.compute(key)
        return value


def _script(surface: str) -> str:
    c = surface[0]
    if c.isascii() or unicodedata.category(c)[0] in "NPSZ" or "\uff01" <= c <= "\uff5e":
        return "latin" if c.isalpha() or "\uff21" <= c <= "\uff5a" else "symbol"
    if "\u3040" <= c <= "\u309f":
        return "hiragana"
    if "\u30a0" <= c <= "\u30ff":
        return "katakana"
    return "kanji" if "\u4e00" <= c <= "\u9fff" else "other"


def _unit(key: str) -> tuple[str, str]:
    """A MeCab key's language-model class and its content lemma ("" for closed-class words)."""
    if key.startswith("?"):  # unknown: Latin words and numbers read as nouns, anything else stays suspicious
        script = _script(key[1:])
        lemma = unicodedata.normalize("NFKC", key[1:]).lower()
        return ("名詞-普通名詞" if script in ("latin", "symbol") else "UNK-" + script), lemma
    pos1, pos2, kind, form, lemma = key.split(",", 4)
    if pos1 in _LEXICAL_POS:
        return lemma, ""
    if pos1 in _CONJUGATING_POS:  # classical conjugations: what random kana parses into, never modern text
        return pos1 + form.partition("-")[0] + ("文語" if kind.startswith("文語") else ""), lemma
    return f"{pos1}-{pos2}", lemma


def _key(feature: str) -> str:
    """MeCab's feature CSV as the key "pos1,pos2,cType,cForm,lemma" ("*" left empty); unknown words keep "?surface".

    MeCab prints the whole feature (`%H`) and Python picks the fields, once per distinct feature: MeCab's own field
    picking (`%f[i]`) copies each morpheme's feature into an 8 KiB buffer first: a fifth of MeCab's time in a profile.
    """
    if feature.startswith("?"):
        return feature
    fields = next(csv.reader([feature])) if '"' in feature else feature.split(",")
    return ",".join("" if f == "*" else f for f in (fields[0], fields[1], fields[4], fields[5], fields[7]))


# One shared key object per distinct feature: the per-morpheme lookups below then skip hashing and comparing text.
KEY = Memo(_key)
CLASS = Memo(lambda key: _unit(key)[0])
LEMMA = Memo(lambda key: _unit(key)[1])
# "u" for an unknown non-Latin word, "a" for a classical conjugation, counted per text as one string each.
FLAG = Memo(lambda cls: "u" if cls.startswith("UNK-") else "a" if cls.endswith("文語") else "")


class Analysis(NamedTuple):
    """One text parsed once by MeCab and shared by every rubric."""

    surfaces: tuple[str, ...]
    keys: tuple[str, ...]  # MeCab's "pos1,pos2,cType,cForm,lemma" of each morpheme, "?surface" when unknown
    # MeCab's costs on its best path, as it printed them: "word connection" per morpheme, then the connection cost
    # into the end of the text, space-separated (read by `costs`; fluency reads many texts' at once).
    cost_text: str = "0"

    @property
    def costs(self) -> tuple[list[int], list[int], int]:
        """Each morpheme's word cost, its connection cost from the one before, and the cost of ending the text."""
        values = list(map(int, self.cost_text.split()))
        return values[0:-1:2], values[1:-1:2], values[-1]

    @property
    def classes(self) -> tuple[str, ...]:
        """Language-model units: a closed-class lemma or an open-class part of speech."""
        return tuple(map(CLASS.__getitem__, self.keys))

    @property
    def lemmas(self) -> tuple[str, ...]:
        """Content-word lemmas ("" for closed-class words), unknown words NFKC-lowercased."""
        return tuple(map(LEMMA.__getitem__, self.keys))


@functools.cache
def _tagger():  # fugashi ships no type stubs
    import fugashi

    return fugashi.Tagger(f"-r {MECABRC} -O harness")


@functools.lru_cache(maxsize=1 << 16)
def analyse(text: str) -> Analysis:
    """Morphemes of one text (cached: the rubrics share one parse per turn)."""
    if "\x00" in text:  # MeCab's output is a C string: a NUL would end it before the end-of-sentence line
        text = text.replace("\x00", "\ufffd")
    try:
        parts = _tagger().parse(text).split("\n")
    except UnicodeEncodeError:  # lone surrogates from a broken decode: MeCab reads them as U+FFFD
        parts = _tagger().parse(text.encode("utf-8", "replace").decode("utf-8")).split("\n")
    n = len(parts) // 3
    keys = tuple(map(KEY.__getitem__, parts[1 : 3 * n : 3]))
    if keys and keys[-1][-1].isspace():  # a final blank's lemma: the shipped models saw fugashi strip it off the end
        keys = (*keys[:-1], keys[-1].rstrip())
    return Analysis(tuple(parts[0 : 3 * n : 3]), keys, " ".join(parts[2 : 3 * n : 3] + parts[-1:]))
