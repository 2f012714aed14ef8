"""`python -m harness score IN.jsonl [-o OUT.jsonl]`: every registered rubric over JSON lines of conversations."""

from __future__ import annotations

import codecs
import json
import sys
from collections.abc import Iterator, Sequence
from pathlib import Path
from typing import Any, BinaryIO, TextIO

from harness.errors import UserError
from rubrics.records import Conversation, Turn

MAX_TEXT_CHARS = 100_000
"""Longest text (or turn) handed to the rubrics: MeCab kills the process (SIGSEGV) on texts near a million
characters, so a longer one is a bad line, not a crash with a partial output."""
BATCH = 1000  # conversations scored at once: numpy's per-call cost is spread thin, and memory stays small
_SHAPE = 'expected {"id": ..., "text": "..."} or {"id": ..., "turns": [{"speaker": "...", "text": "..."}, ...]}'


def parse_line(line: str) -> tuple[Any, Conversation]:
    """One input line as (id, conversation); ValueError says what is wrong with it."""
    try:
        row = json.loads(line, parse_constant=_not_json, parse_float=_finite)
    except json.JSONDecodeError as e:
        raise ValueError(f"not valid JSON ({e.msg}); {_SHAPE}") from None
    if not isinstance(row, dict) or "id" not in row:
        raise ValueError(f"no 'id'; {_SHAPE}")
    if ("text" in row) == ("turns" in row):
        raise ValueError(f"needs exactly one of 'text' or 'turns'; {_SHAPE}")
    if "text" in row:
        if not isinstance(row["text"], str):
            raise ValueError("'text' must be a string")
        return row["id"], Conversation.from_text(_bounded(row["text"], "'text'"))
    turns = row["turns"]
    if not isinstance(turns, list) or not turns:
        raise ValueError('\'turns\' must be a non-empty list of {"speaker", "text"} objects')
    for i, t in enumerate(turns):
        if not isinstance(t, dict) or not isinstance(t.get("text"), str) or not isinstance(t.get("speaker", ""), str):
            raise ValueError(f"turns[{i}] must be an object with a string 'text' (and optional string 'speaker')")
    return row["id"], Conversation(
        tuple(Turn(t.get("speaker", ""), _bounded(t["text"], f"turns[{i}].text")) for i, t in enumerate(turns))
    )


def _not_json(constant: str) -> None:
    raise ValueError(f"not valid JSON ({constant} is not a JSON value); {_SHAPE}")


def _finite(text: str) -> float:
    """A JSON number as a float; one too large for a float (1e400) would be written back as Infinity, not JSON."""
    value = float(text)
    if value in (float("inf"), float("-inf")):
        raise ValueError(f"the number {text} is too large to read back as JSON")
    return value


def _bounded(text: str, field: str) -> str:
    if len(text) > MAX_TEXT_CHARS:
        raise ValueError(f"{field} has {len(text)} characters, over the {MAX_TEXT_CHARS} the scorer takes (MeCab "
                         "crashes on texts near a million); split it")  # fmt: skip
    return text


def score_many(conversations: Sequence[Conversation]) -> list[dict[str, Any]]:
    """Each conversation's scores and evidence from every registered rubric (through its batch path), in order.

    Each also carries the artefact count the cleaning tools key on.
    """
    from rubrics import REGISTRY

    results = {name: r.many(conversations) for name, r in REGISTRY.items()}
    return [
        {
            "scores": {name: scores[i].value for name, scores in results.items()},
            "artefacts": results["contamination"][i].evidence["count"],
            "evidence": {name: dict(scores[i].evidence) for name, scores in results.items()},
        }
        for i in range(len(conversations))
    ]


def read_items(path: str, skip_bad: bool) -> tuple[list[tuple[Any, Conversation]], int]:
    """Every line of `path` ('-': standard input) as (id, conversation); a bad line stops with its number, or is
    skipped and counted with `skip_bad`. Bytes are decoded line by line, so a bad byte is a bad line like any other."""
    items, skipped = [], 0
    for lineno, offset, raw in _lines(path):
        try:
            line = _decode(raw, offset)
            if not line.strip():
                continue
            items.append(parse_line(line))
        except ValueError as e:
            if not skip_bad:
                raise UserError(f"{path}:{lineno}: {e} (or pass --skip-bad)") from None
            skipped += 1
    return items, skipped


def _decode(raw: bytes, offset: int) -> str:
    """A line's text; invalid UTF-8 is named by its byte offset in the whole input."""
    try:
        return raw.decode("utf-8")
    except UnicodeDecodeError as e:
        raise ValueError(f"not UTF-8 (byte 0x{raw[e.start]:02x} at byte {offset + e.start} of the input)") from None


def _lines(path: str) -> Iterator[tuple[int, int, bytes]]:
    """(line number, byte offset of the line, its bytes) for each line of the file or of standard input."""
    if path == "-":
        yield from _numbered(sys.stdin.buffer)
        return
    try:
        with Path(path).open("rb") as f:
            yield from _numbered(f)
    except FileNotFoundError:
        raise UserError(f"{path}: no such file; give a JSON-lines file to score") from None
    except OSError as e:
        raise UserError(f"{path}: cannot read ({e.strerror})") from None


def _numbered(f: BinaryIO) -> Iterator[tuple[int, int, bytes]]:
    offset = 0
    for lineno, raw in enumerate(f, 1):
        bom = len(codecs.BOM_UTF8) if lineno == 1 and raw.startswith(codecs.BOM_UTF8) else 0  # editors on Windows
        yield lineno, offset + bom, raw[bom:]
        offset += len(raw)


def write_scored(out: TextIO, items: list[tuple[Any, Conversation]]) -> None:
    for start in range(0, len(items), BATCH):
        chunk = items[start : start + BATCH]
        for (id_, _), result in zip(chunk, score_many([c for _, c in chunk]), strict=True):
            out.write(json.dumps({"id": id_, **result}, ensure_ascii=False, allow_nan=False) + "\n")
