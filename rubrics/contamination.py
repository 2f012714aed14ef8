"""Tweet artefacts (hashtags, URLs, @mentions) in generated turns, found by Twitter's own text rules.

The rules are twitter-text's (its extractor and `conformance/extract.yml`, which `python -m rubrics.conformance`
measures against), with valid top-level domains from the Public Suffix List the `publicsuffixlist` package bundles
(offline). Where Japanese ML talk needs it the rubric reads a string differently, on purpose: each such
place says why (`_bare_is_not_url`, `_TAG_AFTER`, `_NOT_A_TAG`).
"""

from __future__ import annotations

import functools
import re
from pathlib import Path

import regex
from publicsuffixlist import PSLFILE

from rubrics._registry import rubric
from rubrics.records import Conversation, Score


def _top_level_domains(path: str) -> list[str]:
    """Every top-level label of the list's ICANN section (1,448 in the 2026-10-22 list), IDN ones in Unicode."""
    lines = Path(path).read_text(encoding="utf-8").splitlines()
    icann = lines[lines.index("// ===BEGIN ICANN DOMAINS===") : lines.index("// ===END ICANN DOMAINS===")]
    return sorted({rule.lstrip("!*.").rsplit(".", 1)[-1].lower() for rule in icann if rule and rule[0] != "/"})


def _trie(words: list[str]) -> str:
    """The words as one regular expression shaped like a prefix tree: `re` tries 1,448 TLDs in a few steps, where a
    flat alternation (or `regex`'s named lists) makes URL search ten times slower."""
    tree: dict = {}
    for word in words:
        node = tree
        for ch in word:
            node = node.setdefault(ch, {})
        node[""] = {}

    def pattern(node: dict) -> str:
        alts = [re.escape(ch) + pattern(child) for ch, child in sorted(node.items()) if ch]
        body = "" if not alts else alts[0] if len(alts) == 1 else f"(?:{'|'.join(alts)})"
        return f"(?:{body})?" if body and "" in node else body

    return pattern(tree)


# URLs. Domain labels may hold any character but ASCII punctuation, spaces and bidi marks (`http://ああ.com`); a
# subdomain label may hold `_`, no label starts or ends with `-` or `_`; the TLD must be a real one that no letter,
# digit, `@`, `+` or `-` continues (`domain.com-typo`, `john.doe.gov@mail.com` are no URLs).
_NOT_DOMAIN = (
    r"!'#%&()*+,\\./:;<=>?@\[\]^{|}~$\"`\s\x85\u180e\u202a-\u202e\u061c\u200e\u200f\u2066-\u2069\ufeff\ufffe\uffff"
)
_DC = rf"[^{_NOT_DOMAIN}_\-]"
# Labels are matched possessively: a failed attempt costs one scan of the label, not a backtrack per character.
_SUBDOMAIN = rf"(?={_DC})[^{_NOT_DOMAIN}]++(?<={_DC})\."
_NAME = rf"(?={_DC})[^{_NOT_DOMAIN}_]++(?<={_DC})\."
_TLD = rf"(?:{_trie(_top_level_domains(PSLFILE))}|xn--[0-9a-z-]+)(?![0-9a-z@+-])"
# Path characters; a path ends on a letter, digit or one of `+-=_#/`, or on balanced parentheses (`Primer_(film)`).
_PC = r"[a-z\u0400-\u04ff0-9!*';:=+,.$/%#\[\]\-\u2013_~@|&\u00c0-\u00d6\u00d8-\u00f6\u00f8-\u024f\u1e00-\u1eff]"
_PARENS = rf"\((?:{_PC}+|{_PC}*\({_PC}+\){_PC}*)\)"
_PATH_END = rf"(?:[+\-a-z\u0400-\u04ff0-9=_#/\u00c0-\u00d6\u00d8-\u00f6\u00f8-\u024f\u1e00-\u1eff]|{_PARENS})"
_QUERY = r"\?[a-z0-9!?*'@();:&=+$/%#\[\]\-_.,~|]*[a-z0-9\-_&=#/]"
_URL_BODY = (
    rf"(?<![a-z0-9@＠$#＃\ufffe\ufeff\uffff])(?=(?:https?://)?[^{_NOT_DOMAIN}]*\.)"
    rf"(?P<scheme>https?://)?(?P<domain>(?:{_SUBDOMAIN}){{0,126}}{_NAME}{_TLD})"
    rf"(?::[0-9]+)?(?P<path>/(?:(?:{_PC}|{_PARENS})*{_PATH_END})?)?(?:{_QUERY})?"
)
# Parts of these patterns are no rule, only speed; each keeps the matches twitter-text's pattern finds:
# - the lookahead fails at once where no `.` follows within reach;
# - `_URL` starts an attempt only where a run of domain characters starts, or at a scheme (`_URL_HERE` tries the first
#   place after the last match, wherever it is): inside a run an attempt fails where the run's start failed (the
#   labels to its right are the same), so a long Japanese turn is not scanned again from each letter;
# - a domain has at most 127 labels (DNS's limit), which bounds the work on `a.a.a.a...` loops.
_URL = re.compile(rf"(?:(?<!{_DC})|(?=https?://)){_URL_BODY}", re.IGNORECASE)
_URL_HERE = re.compile(_URL_BODY, re.IGNORECASE)
# Without a scheme only ASCII domains count (`ページはkaggle.com/x` yields `kaggle.com/x`), found inside the match.
_ASCII_DOMAIN = re.compile(
    rf"(?:[a-z0-9\-\u00c0-\u00d6\u00d8-\u00f6\u00f8-\u024f\u1e00-\u1eff]+\.)+{_TLD}",
    re.IGNORECASE,
)
_TCO = re.compile(rf"https?://t\.co/([a-z0-9]+)(?:{_QUERY})?", re.IGNORECASE)

# A schemeless domain with nothing after it is code or a file name, not a link, when its TLD is a file extension of ML
# work (`model.pt`, `train.zip`, `README.md`), an attribute name of numpy/pandas/torch/the standard library (`df.info`,
# `model.fit`: measured as the TLDs among their `dir()` names), written in capitals (`ASP.NET`), a library
# (`libcudnn.so`), or a call (`df.info()`). twitter-text reads all of these as links; no conformance case has one.
_FILE_TLDS = frozenset({"py", "pt", "pl", "rs", "sh", "md", "cc", "cu", "tf", "nc", "mk", "ml", "ps", "zip", "mov"})
_CODE_TLDS = frozenset(
    {"abc", "cat", "center", "compare", "data", "dot", "fit", "help", "info", "int", "link", "map", "name", "new"}
    | {"next", "open", "place", "prod", "property", "read", "run", "save", "search", "select", "show", "storage"}
    | {"stream", "style", "windows"}
)


_EMAIL_TAIL = re.compile(r"\.[a-z0-9.+_\-]*[@＠]", re.IGNORECASE)


def _bare_is_not_url(text: str, start: int, end: int) -> bool:
    """A schemeless domain with nothing after it that is code, a file name or part of an e-mail address."""
    domain = text[start:end]
    tld = domain.rsplit(".", 1)[-1]
    return (
        tld.lower() in _FILE_TLDS
        or tld.lower() in _CODE_TLDS
        or (tld.isupper() and tld.isascii())
        or (tld.lower() == "so" and domain.lower().startswith("lib"))
        or text[end : end + 1] == "("
        or _EMAIL_TAIL.match(text, end) is not None  # `monthly.kg.editor@example.com`
    )


def _host_is_valid(domain: str) -> bool:
    """twitter-text's IDNA check: a punycode domain holds only ASCII; every label is 1..63 characters encoded."""
    if domain[:4].lower() == "xn--" and not domain.isascii():
        return False
    return all(
        0 < (len(label) if label.isascii() else 4 + len(label.encode("punycode"))) <= 63 for label in domain.split(".")
    )


def _urls(text: str) -> list[tuple[int, int]]:
    spans = []
    pos = 0
    # As in twitter-text, the character before a URL is not part of the previous match, accepted or not.
    while m := _URL_HERE.match(text, pos) or _URL.search(text, pos + 1):
        pos = m.end() + 1
        start, end = m.span()
        if m["scheme"]:
            tco = _TCO.match(text, start, end)
            # t.co slugs are short: a longer one is no t.co link.
            if _host_is_valid(m["domain"]) and end - start <= 4096 and not (tco and len(tco[1]) > 40):
                spans.append((start, tco.end() if tco else end))
        elif text[start - 1 : start] not in ("-", "_", ".", "/"):
            # Only the ASCII domains inside count, each checked on its own: twitter-text checks the whole match, so
            # a long Japanese run before `→zenn.dev/x` makes it drop the link (a deviation no conformance case sees).
            d_end = m.end("domain")
            found = [a.span() for a in _ASCII_DOMAIN.finditer(text, m.start("domain"), d_end)]
            found = [(s, e) for s, e in found if _host_is_valid(text[s:e])]
            # The last domain takes what follows it (path, port, query), so none of a URL stays in cleaned text.
            if found and found[-1][1] == d_end and end > d_end:
                found[-1] = (found[-1][0], end)
            spans += [(s, e) for s, e in found if e > d_end or not _bare_is_not_url(text, s, e)]
    return spans


# @mentions: an ASCII screen name of up to 20 characters, not after a letter, digit or `!#$%&*@` (e-mail addresses,
# `f!@kn`), nor continued by another `@`, an accented letter or `://`. An `RT` before it (`RT@a`, `rt:@a`, `RT @a:`)
# is part of the artefact, as is a list (`@a/list`) and a retweet's colon (`RT＠a：`).
_MENTION = re.compile(
    r"(?:(?<![a-zA-Z0-9_+~.-])(?P<rt>[Rr][Tt]):? ?(?=[@＠])|(?<![a-zA-Z0-9_!#$%&*@＠]))[@＠][a-zA-Z0-9_]{1,20}"
    r"(?:/[a-zA-Z][a-zA-Z0-9_-]{0,24})?(?![@＠a-zA-Z0-9_\u00c0-\u00d6\u00d8-\u00f6\u00f8-\u024f\u1e00-\u1eff]|://)"
    r"(?(rt)[:：]?|(?:[:：](?=\s|$))?)"
)

# Hashtags: a run of letters, marks, digits, `_` and a few joiners (・, 〜, ZWJ) holding at least one letter, not
# continued by `#` or `://`, after a character that cannot be in a tag: so never inside a word (`C#`, `F#`, `abc#1`).
# One deviation from twitter-text: a tag right after hiragana or kanji counts (`取れた#kaggle`, `大きな一歩#積み上げ`),
# since Japanese puts no space before a tag, and neologdn removes one that was there (`ない #実務` -> `ない#実務`).
# After katakana the reading stays Twitter's (`ハッシュタグ#日本語` is no tag): its suite has that case.
_TAG_CHAR = (
    r"[\p{L}\p{M}\p{Nd}_\u200c\u200d\ua67e\u05be\u05f3\u05f4\uff5e\u301c\u309b\u309c\u30a0\u30fb\u3003\u0f0b\u0f0c\xb7]"
)
_TAG_AFTER = rf"(?:(?<!{_TAG_CHAR}|&)|(?<=[\ufe0e\ufe0f\u3041-\u309f\u3005\u3006\u3400-\u4dbf\u4e00-\u9fff]))"
_HASHTAG = regex.compile(
    rf"{_TAG_AFTER}[#＃](?![\ufe0f\u20e3])(?={_TAG_CHAR}*?[\p{{L}}\p{{M}}]){_TAG_CHAR}++(?![#＃]|://)"
)
# Rank and episode numbers are no tags (a deviation from twitter-text, which has no case of it): digits straight
# followed by Japanese, as in `#1のチーム`, `Meetup #6の参加記`, `#3位`, `#1解法` (what neologdn makes of `#1 解法`),
# unless a date or quantity counter makes the number part of the tag's word (`#2024年の振り返り`, `#100日チャレンジ`).
_NOT_A_TAG = regex.compile(r"[#＃]\p{Nd}+(?![年月日週時分秒歳人])[\u3041-\u30ff\u3400-\u4dbf\u4e00-\u9fff]")

# Cheap pre-check: every artefact contains one of these, and most generated turns contain none.
_MAYBE_ARTEFACT = re.compile(r"[#＃@＠.]")


@functools.lru_cache(maxsize=1 << 12)
def _spans(text: str) -> tuple[tuple[int, int, str, str], ...]:
    """(start, end, kind, text) of each artefact, in order (cached: fluency strips what contamination counts)."""
    if not _MAYBE_ARTEFACT.search(text):
        return ()
    found = [(s, e, "url") for s, e in _urls(text)] if "." in text else []
    if "@" in text or "＠" in text:
        found += [(*m.span(), "mention") for m in _MENTION.finditer(text)]
    if "#" in text or "＃" in text:
        found += [(*m.span(), "hashtag") for m in _HASHTAG.finditer(text) if not _NOT_A_TAG.match(m.group())]
    # As in twitter-text, of two overlapping entities the one that starts first wins (`http://x.com/#tag` is a URL).
    spans, last_end = [], 0
    for start, end, kind in sorted(found):
        if start >= last_end:
            spans.append((start, end, kind, text[start:end]))
            last_end = end
    return tuple(spans)


def find_artefacts(text: str) -> list[dict[str, int | str]]:
    """All artefacts in one text, in order, as `{"start", "end", "kind", "text"}` (the first of two overlaps wins)."""
    return [{"start": start, "end": end, "kind": kind, "text": t} for start, end, kind, t in _spans(text)]


def strip_artefacts(text: str) -> str:
    """The text with its artefacts cut out (a cheap no-op for the usual text that has none)."""
    if not _MAYBE_ARTEFACT.search(text):
        return text
    for start, end, _, _ in reversed(_spans(text)):
        text = text[:start] + text[end:]
    return " ".join(text.split())


@rubric(higher_is_better=False, data_files=(Path(PSLFILE),))
def contamination(conversation: Conversation) -> Score:
    """Tweet artefacts per turn (hashtags, URLs, @mentions); higher = more contaminated, 0 = clean.

    The value is `count / (count + turns)`: 0 for a clean conversation, 0.5 for one artefact per turn.
    """
    spans = [
        {"turn": i, "start": start, "end": end, "kind": kind, "text": text}
        for i, turn in enumerate(conversation.turns)
        if _MAYBE_ARTEFACT.search(turn.text)
        for start, end, kind, text in _spans(turn.text)
    ]
    count = len(spans)
    kinds = {kind: sum(s["kind"] == kind for s in spans) for kind in ("hashtag", "url", "mention")}
    value = count / (count + max(len(conversation.turns), 1))
    return Score(value, {"count": count, "spans": spans, **kinds})
