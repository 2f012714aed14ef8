"""Tweet artefacts (hashtags, URLs, @mentions) in generated turns, found by Twitter's own text rules."""

from __future__ import annotations

import functools
import re

from rubrics._registry import rubric
from rubrics.records import Conversation, Score

# Top-level domains a schemeless link may end in without a path. Country codes need a path (`t.co/x`, `bit.ly/x`)
# or `www.`, as in twitter-text, so file names like `model.py` or `train.csv` stay plain text.
_GENERIC_TLDS = (
    "com|net|org|info|biz|io|ai|dev|app|blog|tech|page|site|xyz|online|edu|gov|me|tv|cc|ly|jp|co\\.jp|ne\\.jp|"
    "or\\.jp|ac\\.jp|go\\.jp|co\\.uk|ac\\.uk"
)
_COUNTRY_TLD = "[a-z]{2}"
_LABEL = r"[a-z0-9](?:[a-z0-9-]{0,61}[a-z0-9])?"
_PATH = r"(?:[/?#][a-z0-9!*';:=+,.$/%#\[\]\-_~|&@()]*)"
# A URL may not continue a word, an e-mail address, a mention or a hashtag.
_URL_BOUNDARY = r"(?<![a-z0-9@＠$#＃._-])"
_URL = re.compile(
    rf"{_URL_BOUNDARY}(?:"
    rf"https?://[a-z0-9.-]+(?::\d+)?{_PATH}?"
    rf"|www\.(?:{_LABEL}\.)+{_LABEL}(?::\d+)?{_PATH}?"
    rf"|(?:{_LABEL}\.)+(?:{_GENERIC_TLDS})(?![a-z0-9-])(?!\()(?:{_PATH})?"
    rf"|(?:{_LABEL}\.)+{_COUNTRY_TLD}(?![a-z0-9-]){_PATH.replace('[/?#]', '/')}"
    r")",
    re.IGNORECASE,
)
_URL_TRAILING = ".,;:!?'\")]"

# `RT @user:` counts as the one mention it names; an @ right after a Latin letter or digit is an e-mail address.
_MENTION = re.compile(r"(?:\bRT ?)?(?<![A-Za-z0-9_!#$%&*@＠])[@＠][A-Za-z0-9_]{1,20}(?![@＠A-Za-z0-9_])(?::(?=\s|$))?")

# Hashtag body characters as in twitter-text: letters, marks, digits, `_` and a few CJK joiners (・, ー is a letter).
_TAG_CHAR = r"[^\W]|[\u30fb\u301c\uff5e\u309b\u309c\u30a0\u3003\u200c\u200d]"
# Not after a Latin letter or digit (`C#`, `F#`, `abc#1`), `&` (entities) or another hash; digits alone are no tag.
_HASHTAG = re.compile(
    rf"(?<![A-Za-z0-9_&#＃Ａ-Ｚａ-ｚ０-９])[#＃](?![\ufe0f\u20e3])(?=(?:{_TAG_CHAR})*?[^\W\d_])(?:{_TAG_CHAR})+",
)
# Cheap pre-check: every artefact contains one of these, and most generated turns contain none.
_MAYBE_ARTEFACT = re.compile(r"[#＃@＠.:]")


@functools.lru_cache(maxsize=1 << 12)
def _spans(text: str) -> tuple[tuple[int, int, str, str], ...]:
    """(start, end, kind, text) of each artefact, in order (cached: fluency strips what contamination counts)."""
    if not _MAYBE_ARTEFACT.search(text):
        return ()
    spans = []
    # Each pattern needs one of a few characters: a text without them is not scanned for it (half the time saved).
    for m in _URL.finditer(text) if "." in text or ":" in text else ():
        url = m.group().rstrip(_URL_TRAILING)
        if url.count("(") < url.count(")"):
            url = url[: url.rfind(")")]
        spans.append((m.start(), m.start() + len(url), "url", url))
    for kind, pattern, marks in (("mention", _MENTION, "@＠"), ("hashtag", _HASHTAG, "#＃")):
        for m in pattern.finditer(text) if marks[0] in text or marks[1] in text else ():
            if not any(s < m.end() and m.start() < e for s, e, _, _ in spans):
                spans.append((m.start(), m.end(), kind, m.group()))
    return tuple(sorted(spans, key=lambda span: span[0]))


def find_artefacts(text: str) -> list[dict[str, int | str]]:
    """All artefacts in one text, in order, as `{"start", "end", "kind", "text"}` (URLs win overlaps)."""
    return [{"start": start, "end": end, "kind": kind, "text": t} for start, end, kind, t in _spans(text)]


def strip_artefacts(text: str) -> str:
    """The text with its artefacts cut out (a cheap no-op for the usual text that has none)."""
    if not _MAYBE_ARTEFACT.search(text):
        return text
    for start, end, _, _ in reversed(_spans(text)):
        text = text[:start] + text[end:]
    return " ".join(text.split())


@rubric(higher_is_better=False)
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
