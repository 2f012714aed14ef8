"""Data-cleaning rules for tweets: ordered, named text transforms whose effect is counted, never silent."""

from __future__ import annotations

import re
import unicodedata
from collections.abc import Callable, Iterable
from dataclasses import dataclass, field
from typing import Any

RuleFn = Callable[[str], str | None]


@dataclass(frozen=True)
class Rule:
    """One cleaning step: returns the new text, or None to drop the document."""

    name: str
    fn: RuleFn = field(repr=False)
    examples: tuple[tuple[str, str | None], ...] = ()
    """(input, expected output) pairs; the tests run every one."""

    def __call__(self, text: str) -> str | None:
        return self.fn(text)


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
    """Run the rules in order over the corpus; return the surviving texts and per-rule counts."""
    current = list(texts)
    stats = []
    for rule in rules:
        s = RuleStats(rule.name, docs_in=len(current))
        kept = []
        for text in current:
            out = rule(text)
            if out != text:
                s.changed += out is not None
                s.chars_removed += len(text) - len(out or "")
                if len(s.examples) < n_examples:
                    s.examples.append((text, out))
            if out is not None:
                kept.append(out)
        s.docs_out = len(kept)
        stats.append(s)
        current = kept
    return current, stats


_RT = re.compile(r"^RT [@＠][A-Za-z0-9_]{1,15}[:：]\s*")
_URL = re.compile(
    r"(?:https?://|www\.)[^\s　]+"
    r"|(?<![\w.@])(?:[a-z0-9-]+\.)+(?:com|net|org|io|dev|co|jp|ly|me|ai|gl)(?:/[^\s　]*)?(?![\w])",
    re.IGNORECASE,
)
_MENTION = re.compile(r"(?<![A-Za-z0-9_.])[@＠][A-Za-z0-9_]{1,15}(?![A-Za-z0-9_@.])")
_HASHTAG = re.compile(r"(?<![A-Za-z0-9_&])[#＃](?!\d+(?![\w]))([\w\u3000-\u30ff\u4e00-\u9fff\uff10-\uffef]+)")
_SPACES = re.compile(r"[ \t\u3000]+")


def _strip_retweet(text: str) -> str:
    return _RT.sub("", text)


def _remove_urls(text: str) -> str:
    return _URL.sub("", text)


def _remove_mentions(text: str) -> str:
    return _MENTION.sub("", text)


def _unhashtag(text: str) -> str:
    """Trailing tags are dropped; a tag inside the sentence keeps its word without the mark."""
    body = text.rstrip()
    while (m := list(_HASHTAG.finditer(body))) and m[-1].end() == len(body):
        body = body[: m[-1].start()].rstrip()
    return _HASHTAG.sub(lambda m: m.group(1), body)


def _is_emoji(ch: str) -> bool:
    return ord(ch) >= 0x1F000 or unicodedata.category(ch) == "So" or ch in "\ufe0f\u200d"


def _remove_emoji(text: str) -> str:
    return "".join(ch for ch in text if not _is_emoji(ch))


def _normalise_spaces(text: str) -> str:
    return _SPACES.sub(" ", unicodedata.normalize("NFKC", text)).strip()


def min_chars(n: int) -> Rule:
    """Drop documents shorter than `n` characters after cleaning."""
    return Rule(f"min_chars_{n}", lambda t: t if len(t) >= n else None, (("短い", None),) if n > 2 else ())


strip_retweet = Rule("strip_retweet", _strip_retweet, (("RT @kaggle_taro: 金圏きた", "金圏きた"),))
remove_urls = Rule(
    "remove_urls",
    _remove_urls,
    (("解法まとめた https://t.co/AbCdEf1234", "解法まとめた "), ("train.csv を読む", "train.csv を読む")),
)
remove_mentions = Rule("remove_mentions", _remove_mentions, (("@lgbm_taro おめでとう！", " おめでとう！"),))
unhashtag = Rule(
    "unhashtag",
    _unhashtag,
    (
        ("初メダル！ #kaggle #機械学習", "初メダル！"),
        ("#Kaggle の沼は深い", "Kaggle の沼は深い"),
        ("C#で書いた", "C#で書いた"),
    ),
)
remove_emoji = Rule("remove_emoji", _remove_emoji, (("銀メダル🥈嬉しい🎉", "銀メダル嬉しい"),))
normalise_spaces = Rule("normalise_spaces", _normalise_spaces, (("ＬＢ　が  動いた ", "LB が 動いた"),))


def default_tweet_rules() -> tuple[Rule, ...]:
    """The shipped rule set: strip retweet prefixes, URLs, mentions, hashtags and emoji, then drop short leftovers."""
    return (strip_retweet, remove_urls, remove_mentions, unhashtag, remove_emoji, normalise_spaces, min_chars(5))
