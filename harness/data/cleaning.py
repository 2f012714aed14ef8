"""Data-cleaning rules for tweets: an ordered list of HojiChar filters whose effect is counted, never silent.

A rule is a `hojichar.Filter`; a rule set is a list (or a `hojichar.Compose`) of them. Every rule shipped here
carries `examples`, (input, expected output or None for a dropped document) pairs that the tests run; a
corpus-level rule (deduplication) carries `corpus_examples`, (inputs, kept outputs) pairs.
"""

from __future__ import annotations

import copy
import re
from collections.abc import Iterable
from dataclasses import dataclass, field
from difflib import SequenceMatcher
from typing import Any, ClassVar

import neologdn
from hojichar import Document, Filter
from hojichar.filters.deduplication import GenerateDedupLSH, InlineDeduplicator
from hojichar.filters.document_filters import AcceptJapanese, DocumentLengthFilter

from harness.errors import UserError
from harness.spec.rules import Rule, rule_name
from rubrics.contamination import find_artefacts

Example = tuple[str, str | None]


def _cut(text: str, kinds: set[str]) -> str:
    """The text without the artefacts of `kinds`: the contamination rubric's own spans, so cleaning removes exactly
    what the gate measures (one detector)."""
    for span in reversed(find_artefacts(text)):
        if span["kind"] in kinds:
            text = text[: int(span["start"])] + text[int(span["end"]) :]
    return text


class StripRetweet(Filter):
    """`RT @user: ` at the start of a tweet goes; the retweeted text stays."""

    examples: ClassVar[tuple[Example, ...]] = (
        ("RT @kaggle_taro: 金圏きた", "金圏きた"),
        ("RT ＠lgbm_hanako：初submitした", "初submitした"),
        ("RTをお願いします", "RTをお願いします"),
    )
    _RT = re.compile(r"^RT ?[@＠][A-Za-z0-9_]{1,20} ?[:：]\s*")

    def apply(self, document: Document) -> Document:
        document.text = self._RT.sub("", document.text)
        return document


class RemoveURLs(Filter):
    """URLs go whole, query and fragment included: with a scheme, `www.`, bare domains (`t.co/…`, `zenn.dev`).

    File names and code stay (`train.csv`, `best.pt`, `df.info()`): the contamination rubric's rules decide."""

    examples: ClassVar[tuple[Example, ...]] = (
        ("解法まとめた https://t.co/AbCdEf1234", "解法まとめた "),
        ("詳細は kaggle.com/competitions/foo を見て", "詳細は  を見て"),
        ("スライド bit.ly/3xYz 参照", "スライド  参照"),
        ("書いた https://zenn.dev/u/articles/lgbm?utm_source=twitter&utm_medium=x です", "書いた  です"),
        ("解説動画→https://www.youtube.com/watch?v=LOxOAuDHzaw&t=95s 後半が大事", "解説動画→ 後半が大事"),
        ("train.csv を読む", "train.csv を読む"),
        ("best.pt と train.zip を消した", "best.pt と train.zip を消した"),
        ("連絡は taro@example.com まで", "連絡は taro@example.com まで"),
    )

    def apply(self, document: Document) -> Document:
        document.text = _cut(document.text, {"url"})
        return document


class RemoveMentions(Filter):
    """@mentions (half- and full-width `@`) go; e-mail addresses stay."""

    examples: ClassVar[tuple[Example, ...]] = (
        ("@lgbm_taro おめでとう！", " おめでとう！"),
        ("勉強会の資料です cc ＠kaggle_jiro", "勉強会の資料です cc "),
        ("連絡は taro@example.com まで", "連絡は taro@example.com まで"),
    )

    def apply(self, document: Document) -> Document:
        document.text = _cut(document.text, {"mention"})
        return document


class Unhashtag(Filter):
    """Trailing hashtags are dropped; a tag inside the sentence keeps its word without the `#`.

    A trailing tag is a label, not language; a tag in the sentence (`#Kaggle の沼は深い`) is a word the sentence
    needs. `C#` and `#1` are no tags and stay."""

    examples: ClassVar[tuple[Example, ...]] = (
        ("初メダル！ #kaggle #機械学習", "初メダル！"),
        ("#Kaggle の沼は深い", "Kaggle の沼は深い"),
        ("今日も＃月刊Kaggle を読んだ ＃駆け出しKaggler", "今日も月刊Kaggle を読んだ"),
        ("やっと銅メダル取れた#kaggle", "やっと銅メダル取れた"),
        ("C#で書いた", "C#で書いた"),
        ("LB #1 はすごい", "LB #1 はすごい"),
        ("Meetup #6の参加記です", "Meetup #6の参加記です"),
    )

    def apply(self, document: Document) -> Document:
        text = document.text
        tags = [s for s in find_artefacts(text) if s["kind"] == "hashtag"]
        for span in reversed(tags):
            start, end = int(span["start"]), int(span["end"])
            trailing = not text[end:].strip()
            text = text[:start].rstrip() + text[end:] if trailing else text[:start] + text[start + 1 : end] + text[end:]
        document.text = text
        return document


def _is_emoji(ch: str) -> bool:
    code = ord(ch)
    if ch in _KEPT_SYMBOLS:
        return False
    return code >= 0x1F000 or 0x2300 <= code <= 0x23FF or 0x2600 <= code <= 0x27BF or ch in _EMOJI_JOINERS


_KEPT_SYMBOLS = frozenset("♪♫☆★※→←↑↓")
_EMOJI_JOINERS = frozenset("\ufe0f\ufe0e\u200d\u20e3\u2b50\u2b55")


class RemoveEmoji(Filter):
    """Pictographic emoji (and their joiners and variation selectors) go; Japanese typography (♪ ☆ ※ →) stays.

    The debates are written prose: emoji are tweet voice, and the tiny model's vocabulary spends a token on each."""

    examples: ClassVar[tuple[Example, ...]] = (
        ("銀メダル🥈嬉しい🎉", "銀メダル嬉しい"),
        ("朝活☕️ 🧑‍💻", "朝活 "),
        ("楽しかった♪ 次も☆", "楽しかった♪ 次も☆"),
    )

    def apply(self, document: Document) -> Document:
        document.text = "".join(ch for ch in document.text if not _is_emoji(ch))
        return document


class Normalise(Filter):
    """neologdn per line: NFKC-style width folding, spaces between Japanese words removed, ーーー folded.

    neologdn over HojiChar's `DocumentNormalizer` (plain NFKC): it also removes the spaces left where URLs and tags
    were cut, and folds long-vowel and hyphen variants. Line breaks stay."""

    examples: ClassVar[tuple[Example, ...]] = (
        ("ＬＢ　が  動いた ", "LBが動いた"),
        ("すごーーーい", "すごーい"),
        ("lightgbm 4.5.0 で学習", "lightgbm 4.5.0で学習"),
        ("一行目 \n 二行目", "一行目\n二行目"),
    )

    def apply(self, document: Document) -> Document:
        document.text = "\n".join(filter(None, (neologdn.normalize(line) for line in document.text.split("\n"))))
        return document


class LengthRange(DocumentLengthFilter):
    """HojiChar's length filter: under 10 characters is no debate material, over 280 is no tweet."""

    examples: ClassVar[tuple[Example, ...]] = (
        ("短いね", None),
        ("CVとLBが全然相関しない", "CVとLBが全然相関しない"),
        ("あ" * 281, None),
    )

    def __init__(self, min_doc_len: int = 10, max_doc_len: int = 280, **kwargs: Any) -> None:
        super().__init__(min_doc_len=min_doc_len, max_doc_len=max_doc_len, **kwargs)


class Japanese(AcceptJapanese):
    """HojiChar's language filter over the whole tweet: no kana at all, and the document is not Japanese."""

    examples: ClassVar[tuple[Example, ...]] = (
        ("Finally got my first Kaggle medal", None),
        ("LightGBMのパラメータ調整", "LightGBMのパラメータ調整"),
        ("CV 0.6421 LB 0.6398 順位87/1530", None),
    )

    def __init__(self, lookup_size: int = 280, **kwargs: Any) -> None:
        super().__init__(lookup_size=lookup_size, **kwargs)


class NearDuplicates(Filter):
    """HojiChar's MinHash LSH (character 5-grams, Jaccard >= 0.8) with an in-memory pool: exact and near copies of
    an earlier document go (copied tweets, retweets once their prefix is stripped)."""

    corpus_examples: ClassVar[tuple[tuple[tuple[str, ...], tuple[str, ...]], ...]] = (
        (
            ("初メダル取れた!嬉しい!", "初メダル取れた!嬉しい!", "初メダル取れた!嬉しい!!", "CVとLBが全然相関しない"),
            ("初メダル取れた!嬉しい!", "CVとLBが全然相関しない"),
        ),
    )

    def __init__(self, threshold: float = 0.8, seed: int = 0, **kwargs: Any) -> None:
        super().__init__(**kwargs)
        self.threshold, self.seed = threshold, seed
        self._lsh = GenerateDedupLSH(threshold=threshold, n_grams=5, seed=seed, num_perm=128)
        self._pool = InlineDeduplicator()

    def apply(self, document: Document) -> Document:
        return self._pool.apply(self._lsh.apply(document))


def default_tweet_rules() -> tuple[Rule, ...]:
    """The shipped rule set: artefacts out, emoji out, neologdn, 10..280 characters, Japanese only, no near copies."""
    return (
        StripRetweet(),
        RemoveURLs(),
        RemoveMentions(),
        Unhashtag(),
        RemoveEmoji(),
        Normalise(),
        LengthRange(),
        Japanese(),
        NearDuplicates(),
    )


@dataclass
class RuleStats:
    """What one rule did to the corpus."""

    name: str
    docs_in: int = 0
    docs_out: int = 0
    changed: int = 0
    chars_removed: int = 0
    examples: list[tuple[str, str | None]] = field(default_factory=list)

    @property
    def removed(self) -> int:
        return self.docs_in - self.docs_out

    def to_dict(self) -> dict[str, Any]:
        return {
            "rule": self.name,
            "docs_in": self.docs_in,
            "docs_out": self.docs_out,
            "removed": self.removed,
            "changed": self.changed,
            "chars_removed": self.chars_removed,
            "examples": [list(e) for e in self.examples],
        }


def apply_rules(texts: Iterable[str], rules: Iterable[Rule], n_examples: int = 3) -> tuple[list[str], list[RuleStats]]:
    """Run the rules in order over the corpus; return the surviving texts and per-rule counts.

    Each call works on fresh copies of the rules, so stateful filters (the deduplication pool) start empty."""
    current = [Document(t) for t in texts]
    stats = []
    for rule in copy.deepcopy(tuple(rules)):
        s = RuleStats(rule_name(rule), docs_in=len(current))
        kept = []
        for doc in current:
            before = doc.text
            doc = _apply(rule, s.name, doc)
            out = None if doc.is_rejected else doc.text
            if out != before:
                s.changed += out is not None
                s.chars_removed += len(before) - len(out or "")
                if len(s.examples) < n_examples:
                    s.examples.append((before, out))
            if out is not None:
                kept.append(doc)
        s.docs_out = len(kept)
        stats.append(s)
        current = kept
    return [d.text for d in current], stats


def _apply(rule: Rule, name: str, document: Document) -> Document:
    """One rule on one document; a rule that raises or returns no Document is the user's to fix, in one line."""
    try:
        out = rule.apply(document)
    except Exception as exc:
        raise UserError(f"cleaning rule {name}: {type(exc).__name__}: {exc} (on the document "
                        f"{document.text[:40]!r}); fix the rule or leave it out of cleaning=") from None  # fmt: skip
    if not isinstance(out, Document):
        raise UserError(f"cleaning rule {name}: apply() returned {type(out).__name__}, not the Document; return the "
                        "document (set document.is_rejected = True to drop it)")  # fmt: skip
    return out


def clean_one(text: str, rule: Rule) -> str | None:
    """One document through one rule: its text, or None when the rule drops it."""
    texts, _ = apply_rules([text], [rule])
    return texts[0] if texts else None


def show_change(before: str, after: str | None, context: int = 24) -> str:
    """One example of a rule's effect on one line: removed text as [-...-], added as {+...+} (git's word-diff
    marks), unchanged stretches longer than `context` shortened with …, so the removed span is always visible."""
    flat = lambda text: text.replace("\n", "\\n")  # noqa: E731
    if after is None:
        return f"[-{flat(before if len(before) <= 3 * context else before[: 3 * context] + '…')}-] (dropped)"
    ops = SequenceMatcher(None, before, after, autojunk=False).get_opcodes()
    parts = []
    for i, (tag, i1, i2, j1, j2) in enumerate(ops):
        kept = before[i1:i2]
        if tag != "equal":
            parts += [f"[-{kept}-]" if kept else "", f"{{+{after[j1:j2]}+}}" if j2 > j1 else ""]
        elif len(kept) <= context:
            parts.append(kept)
        elif i == 0:
            parts.append("…" + kept[-context:])
        elif i == len(ops) - 1:
            parts.append(kept[:context] + "…")
        else:
            parts.append(kept[: context // 2] + "…" + kept[-context // 2 :])
    return flat("".join(parts))


def stats_table(stats: list[RuleStats]) -> str:
    """The per-rule table `harness clean` prints: counts, then examples of each rule's effect."""
    lines = [f"{'rule':<16} {'docs in':>8} {'docs out':>8} {'removed':>8} {'changed':>8} {'chars removed':>14}"]
    for s in stats:
        lines.append(f"{s.name:<16} {s.docs_in:>8} {s.docs_out:>8} {s.removed:>8} {s.changed:>8} {s.chars_removed:>14}")
    if any(s.examples for s in stats):
        lines.append("examples ([-removed-], {+added+}, … unchanged text left out):")
    for s in stats:
        for before, after in s.examples[:2]:
            lines.append(f"  {s.name}: {show_change(before, after)}")
    return "\n".join(lines)
