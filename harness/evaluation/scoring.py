"""`python -m harness score IN.jsonl [-o OUT.jsonl]`: every registered rubric over JSON lines of conversations."""

from __future__ import annotations

import json
import sys
from collections.abc import Iterator, Sequence
from pathlib import Path
from typing import Any, TextIO

from harness.errors import UserError
from rubrics.records import Conversation, Turn

BATCH = 1000  # conversations scored at once: numpy's per-call cost is spread thin, and memory stays small
_SHAPE = 'expected {"id": ..., "text": "..."} or {"id": ..., "turns": [{"speaker": "...", "text": "..."}, ...]}'


def parse_line(line: str) -> tuple[Any, Conversation]:
    """One input line as (id, conversation); ValueError says what is wrong with it."""
    try:
        row = json.loads(line)
    except json.JSONDecodeError as e:
        raise ValueError(f"not valid JSON ({e.msg}); {_SHAPE}") from None
    if not isinstance(row, dict) or "id" not in row:
        raise ValueError(f"no 'id'; {_SHAPE}")
    if ("text" in row) == ("turns" in row):
        raise ValueError(f"needs exactly one of 'text' or 'turns'; {_SHAPE}")
    if "text" in row:
        if not isinstance(row["text"], str):
            raise ValueError("'text' must be a string")
        return row["id"], Conversation.from_text(row["text"])
    turns = row["turns"]
    if not isinstance(turns, list) or not turns:
        raise ValueError('\'turns\' must be a non-empty list of {"speaker", "text"} objects')
    for i, t in enumerate(turns):
        if not isinstance(t, dict) or not isinstance(t.get("text"), str) or not isinstance(t.get("speaker", ""), str):
            raise ValueError(f"turns[{i}] must be an object with a string 'text' (and optional string 'speaker')")
    return row["id"], Conversation(tuple(Turn(t.get("speaker", ""), t["text"]) for t in turns))


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
    items, skipped = [], 0
    for lineno, line in _lines(path):
        if not line.strip():
            continue
        try:
            items.append(parse_line(line))
        except ValueError as e:
            if not skip_bad:
                raise UserError(f"{path}:{lineno}: {e} (or pass --skip-bad)") from None
            skipped += 1
    return items, skipped


def _lines(path: str) -> Iterator[tuple[int, str]]:
    if path == "-":
        yield from enumerate(sys.stdin, 1)
        return
    try:
        with Path(path).open(encoding="utf-8") as f:
            yield from enumerate(f, 1)
    except FileNotFoundError:
        raise UserError(f"{path}: no such file; give a JSON-lines file to score") from None
    except OSError as e:
        raise UserError(f"{path}: cannot read ({e.strerror})") from None
    except UnicodeDecodeError as e:
        raise UserError(f"{path}: not UTF-8 text ({e.reason} at byte {e.start})") from None


def write_scored(out: TextIO, items: list[tuple[Any, Conversation]]) -> None:
    for start in range(0, len(items), BATCH):
        chunk = items[start : start + BATCH]
        for (id_, _), result in zip(chunk, score_many([c for _, c in chunk]), strict=True):
            out.write(json.dumps({"id": id_, **result}, ensure_ascii=False) + "\n")
