"""The fine-tuning corpus: read with `datasets`, cleaned by the experiment's rules, packed into token blocks."""

from __future__ import annotations

import json
import sys
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from harness.data.cleaning import Rule, RuleStats, apply_rules
from harness.errors import UserError
from harness.spec.experiment import DataSpec


def resolve_data_path(spec: DataSpec, experiment_file: Path | None) -> Path:
    """Relative paths resolve from the working directory, then from the experiment's project root."""
    path = Path(spec.path)
    candidates = [path] if path.is_absolute() else [Path.cwd() / path]
    if experiment_file is not None and not path.is_absolute():
        candidates.append(experiment_file.resolve().parent.parent / path)
    for candidate in candidates:
        if candidate.is_file():
            return candidate
    looked = dict.fromkeys(str(c.resolve()) for c in candidates)  # run from the project root, both are one place
    raise UserError(f"DataSpec.path: data file {spec.path!r} not found (looked in {', '.join(looked)})")


def _problem(line: str, spec: DataSpec) -> str | None:
    """What is wrong with one JSONL line, or None."""
    try:
        record = json.loads(line)
    except json.JSONDecodeError as exc:
        return f"not JSON ({exc.msg})"
    if not isinstance(record, dict):
        return "not a JSON object"
    if spec.text_field not in record:
        return f"no field {spec.text_field!r} (fields: {', '.join(record) or 'none'}); set DataSpec.text_field"
    text = record[spec.text_field]
    if not isinstance(text, str) or not text.strip():
        return f"{spec.text_field!r} is empty or not text"
    if len(text) > spec.max_chars:
        return f"{spec.text_field!r} holds {len(text):,} characters, over DataSpec.max_chars ({spec.max_chars:,})"
    return None


def read_texts(spec: DataSpec, path: Path) -> tuple[list[str], list[tuple[int, str]]]:
    """Every good document's text (loaded with `datasets`) and the bad lines as (line number, problem).

    Bad lines stop the run unless `DataSpec.on_bad_lines == "skip"`, which skips and counts them."""
    import datasets

    try:
        raw = path.read_bytes().decode("utf-8")
    except UnicodeDecodeError as exc:
        raise UserError(f"{path}: not UTF-8 (byte {exc.start}); re-save the file as UTF-8") from None
    lines = [(i, line) for i, line in enumerate(raw.splitlines(), 1) if line.strip()]
    if not lines:
        raise UserError(f"{path}: the data file is empty")
    bad = [(i, problem) for i, line in lines if (problem := _problem(line, spec))]
    if bad and spec.on_bad_lines == "error":
        more = f" (and {len(bad) - 1} more bad lines)" if len(bad) > 1 else ""
        raise UserError(f"{path}:{bad[0][0]}: {bad[0][1]}{more}; fix the data or set DataSpec(on_bad_lines='skip')")
    skipped = {i for i, _ in bad}
    good = [json.loads(line) for i, line in lines if i not in skipped]
    if not good:
        raise UserError(f"{path}: all {len(lines)} lines are bad (first: line {bad[0][0]}: {bad[0][1]})")
    table = datasets.Dataset.from_list([{spec.text_field: r[spec.text_field]} for r in good])
    return list(table[spec.text_field]), bad


@dataclass(frozen=True)
class Corpus:
    """The cleaned training texts and what cleaning did to them."""

    path: Path
    texts: list[str]
    stats: list[RuleStats]
    raw_count: int
    bad_lines: list[tuple[int, str]]


def load_corpus(spec: DataSpec, rules: tuple[Rule, ...], experiment_file: Path | None) -> Corpus:
    path = resolve_data_path(spec, experiment_file)
    raw, bad = read_texts(spec, path)
    if bad:
        print(f"harness: {path}: skipped {len(bad)} bad lines (first: line {bad[0][0]}: {bad[0][1]})",
              file=sys.stderr, flush=True)  # fmt: skip
    texts, stats = apply_rules(raw, rules)
    if not texts:
        raise UserError(f"{path}: the cleaning rules removed all {len(raw)} documents; nothing is left to train on")
    return Corpus(path, texts, stats, len(raw), bad)


def pack_blocks(texts: list[str], tokenizer: Any, block_size: int) -> tuple[list[list[int]], int]:
    """Documents joined by end-of-text and cut into equal blocks; returns the blocks and the dropped tail length."""
    stream: list[int] = []
    for text in texts:
        stream.extend(tokenizer(text, add_special_tokens=False)["input_ids"])
        stream.append(tokenizer.eos_token_id)
    n = len(stream) // block_size
    if n == 0:
        raise UserError(f"the cleaned corpus has {len(stream)} tokens, fewer than one block of {block_size}; "
                        "lower DataSpec.block_size or add data")  # fmt: skip
    return [stream[i * block_size : (i + 1) * block_size] for i in range(n)], len(stream) - n * block_size
