"""The fine-tuning corpus: read with `datasets`, cleaned by the experiment's rules, packed into token blocks."""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path
from typing import Any

from harness.cleaning import Rule, RuleStats, apply_rules
from harness.errors import UserError
from harness.experiment import DataSpec


def resolve_data_path(spec: DataSpec, experiment_file: Path | None) -> Path:
    """Relative paths resolve from the working directory, then from the experiment's project root."""
    path = Path(spec.path)
    candidates = [path] if path.is_absolute() else [Path.cwd() / path]
    if experiment_file is not None and not path.is_absolute():
        candidates.append(experiment_file.resolve().parent.parent / path)
    for candidate in candidates:
        if candidate.is_file():
            return candidate
    raise UserError(f"DataSpec.path: data file {spec.path!r} not found (looked in {', '.join(map(str, candidates))})")


def read_texts(spec: DataSpec, path: Path) -> list[str]:
    """Every document's text; a line that cannot be read is an error naming it, never silently skipped."""
    import datasets

    datasets.disable_progress_bars()
    try:
        raw = path.read_bytes().decode("utf-8")
    except UnicodeDecodeError as exc:
        raise UserError(f"{path}: not UTF-8 (byte {exc.start}); re-save the file as UTF-8") from None
    if not raw.strip():
        raise UserError(f"{path}: the data file is empty")
    try:
        table = datasets.load_dataset("json", data_files=str(path), split="train")
    except Exception as exc:
        raise UserError(
            f"{path}: not valid JSON lines ({type(exc).__name__}); each line must be one JSON object"
        ) from None
    if spec.text_field not in table.column_names:
        raise UserError(f"{path}: no field {spec.text_field!r} (fields: {', '.join(table.column_names)}); "
                        "set DataSpec.text_field")  # fmt: skip
    texts = table[spec.text_field]
    bad = [i + 1 for i, t in enumerate(texts) if not isinstance(t, str) or not t.strip()]
    if bad:
        raise UserError(f"{path}: {len(bad)} documents have an empty or non-text {spec.text_field!r} "
                        f"(lines {', '.join(map(str, bad[:5]))}{', ...' if len(bad) > 5 else ''})")  # fmt: skip
    return list(texts)


@dataclass(frozen=True)
class Corpus:
    """The cleaned training texts and what cleaning did to them."""

    path: Path
    texts: list[str]
    stats: list[RuleStats]
    raw_count: int


def load_corpus(spec: DataSpec, rules: tuple[Rule, ...], experiment_file: Path | None) -> Corpus:
    path = resolve_data_path(spec, experiment_file)
    raw = read_texts(spec, path)
    texts, stats = apply_rules(raw, rules)
    if not texts:
        raise UserError(f"{path}: the cleaning rules removed all {len(raw)} documents; nothing is left to train on")
    return Corpus(path, texts, stats, len(raw))


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
