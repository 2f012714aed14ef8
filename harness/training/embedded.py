"""The shipped tiny GPT-NeoX-Japanese: its character vocabulary and the pretraining that rebuilds it.

`python -m harness build-model` rebuilds it from data/general_ja.jsonl (general, non-Kaggle Japanese); the
vocabulary also covers the characters of the tweet corpus so that fine-tuning can express what it learns.
"""

from __future__ import annotations

import hashlib
import json
import math
import time
import unicodedata
from collections import Counter
from collections.abc import Iterable, Sequence
from dataclasses import asdict, dataclass
from pathlib import Path

from harness.spec.experiment import EMBEDDED_DIR

PROJECT_ROOT = Path(__file__).resolve().parents[2]
GENERAL_CORPUS = PROJECT_ROOT / "data" / "general_ja.jsonl"
TWEET_CORPUS = PROJECT_ROOT / "data" / "kaggle_tweets.jsonl"

# Tokens the GPT-NeoX-Japanese tokenizer produces itself (whitespace, content tags, fallbacks).
_TAG_TOKENS = ("<SP>", "<BR>", "<TAB>", "<URL>", "<EMAIL>", "<TEL>", "<DATE>", "<PRICE>", "<BLOCK>", "<KIGOU>")
_TAG_TOKENS += ("<U2000U2BFF>",)
_JOINERS = ("\ufe0f", "\u200d")  # emoji presentation selector and zero-width joiner: dropped before lookup


@dataclass(frozen=True)
class PretrainConfig:
    """The recipe of the embedded model; recorded next to the weights in build.json."""

    hidden_size: int = 256
    """Width of the residual stream."""
    layers: int = 4
    """Transformer blocks."""
    heads: int = 4
    """Attention heads."""
    block_size: int = 256
    """Training context in tokens."""
    batch_size: int = 16
    """Random windows per step."""
    steps: int = 500
    """Optimizer steps."""
    learning_rate: float = 2e-3
    """Peak AdamW learning rate (cosine decay after warm-up)."""
    warmup_steps: int = 60
    """Linear warm-up steps."""
    dropout: float = 0.1
    """Hidden and attention dropout during pretraining."""
    seed: int = 0
    """Seed for initialisation and window sampling."""


def read_texts(path: Path, field: str = "text") -> list[str]:
    with path.open(encoding="utf-8") as f:
        return [json.loads(line)[field] for line in f if line.strip()]


def _is_emoji(ch: str) -> bool:
    return ord(ch) >= 0x1F000 or (ord(ch) >= 0x2190 and unicodedata.category(ch) == "So")


def build_vocab(texts: Iterable[str]) -> tuple[list[str], dict[str, dict[str, str]]]:
    """A character vocabulary (most frequent first) plus the tokenizer's emoji table."""
    counts: Counter[str] = Counter()
    for text in texts:
        counts.update(text)
    for ch in map(chr, [*range(0x21, 0x7F), *range(0x3041, 0x3097), *range(0x30A1, 0x30FD), *range(0xFF01, 0xFF5F)]):
        counts.setdefault(ch, 0)
    # Whitespace and dashes are rewritten by the tokenizer; a "," line in vocab.txt cannot be read back, so the
    # comma (like any other unlisted ASCII character) is encoded by its byte token, which decodes losslessly.
    skip = set(" \u3000\n\r\t—−,") | set(_JOINERS)
    emoji = sorted((ch for ch in counts if _is_emoji(ch)), key=lambda c: (-counts[c], c))
    chars = sorted((ch for ch in counts if ch not in skip and not _is_emoji(ch)), key=lambda c: (-counts[c], c))
    emoji_tokens = {ch: f"<|emoji{i + 1}|>" for i, ch in enumerate(emoji)}
    table = {
        "emoji": {**{j: "" for j in _JOINERS}, **emoji_tokens},
        "emoji_inv": {tok: ch for ch, tok in emoji_tokens.items()},
    }
    vocab = chars + list(_TAG_TOKENS) + list(emoji_tokens.values())
    vocab += [f"<|byte{i}|>" for i in range(256)] + ["<|startoftext|>", "<|endoftext|>"]
    return vocab, table


def write_tokenizer(out_dir: Path, vocab: Sequence[str], table: dict[str, dict[str, str]]) -> None:
    out_dir.mkdir(parents=True, exist_ok=True)
    (out_dir / "vocab.txt").write_text("".join(f"{tok}\n" for tok in vocab), encoding="utf-8")
    (out_dir / "emoji.json").write_text(json.dumps(table, ensure_ascii=False, sort_keys=True), encoding="utf-8")


def _corpus_digest(paths: Sequence[Path]) -> str:
    digest = hashlib.sha256()
    for path in paths:
        digest.update(path.read_bytes())
    return digest.hexdigest()[:16]


def build(
    out_dir: Path = EMBEDDED_DIR,
    config: PretrainConfig = PretrainConfig(),
    general: Path = GENERAL_CORPUS,
    tweets: Path = TWEET_CORPUS,
    log_every: int = 100,
) -> dict[str, object]:
    """Pretrain the tiny model from scratch on the general corpus and save it with its tokenizer."""
    import torch
    from transformers import GPTNeoXJapaneseConfig, GPTNeoXJapaneseForCausalLM, GPTNeoXJapaneseTokenizer

    started = time.perf_counter()
    texts = read_texts(general)
    vocab, table = build_vocab(texts + read_texts(tweets))
    write_tokenizer(out_dir, vocab, table)
    tokenizer = GPTNeoXJapaneseTokenizer(str(out_dir / "vocab.txt"), str(out_dir / "emoji.json"))
    tokenizer.model_max_length = 2 * config.block_size
    tokenizer.save_pretrained(out_dir)

    torch.manual_seed(config.seed)
    eos = tokenizer.eos_token_id
    stream = [tok for text in texts for tok in (*tokenizer.encode(text), eos)]
    data = torch.tensor(stream, dtype=torch.long)
    model_config = GPTNeoXJapaneseConfig(
        vocab_size=len(vocab),
        hidden_size=config.hidden_size,
        num_hidden_layers=config.layers,
        num_attention_heads=config.heads,
        intermediate_multiple_size=4,
        max_position_embeddings=2 * config.block_size,
        attention_dropout=config.dropout,
        hidden_dropout=config.dropout,
        bos_token_id=tokenizer.bos_token_id,
        eos_token_id=eos,
        pad_token_id=eos,
    )
    model = GPTNeoXJapaneseForCausalLM(model_config)
    model.train()
    optimizer = torch.optim.AdamW(model.parameters(), lr=config.learning_rate, betas=(0.9, 0.98), weight_decay=0.01)

    def lr_at(step: int) -> float:
        if step < config.warmup_steps:
            return (step + 1) / config.warmup_steps
        progress = (step - config.warmup_steps) / max(1, config.steps - config.warmup_steps)
        return 0.1 + 0.9 * 0.5 * (1 + math.cos(math.pi * progress))

    scheduler = torch.optim.lr_scheduler.LambdaLR(optimizer, lr_at)
    generator = torch.Generator().manual_seed(config.seed)
    losses: list[float] = []
    for step in range(config.steps):
        starts = torch.randint(0, len(data) - config.block_size - 1, (config.batch_size,), generator=generator)
        batch = torch.stack([data[s : s + config.block_size] for s in starts.tolist()])
        loss = model(input_ids=batch, labels=batch).loss
        loss.backward()
        torch.nn.utils.clip_grad_norm_(model.parameters(), 1.0)
        optimizer.step()
        scheduler.step()
        optimizer.zero_grad(set_to_none=True)
        losses.append(loss.item())
        if log_every and (step + 1) % log_every == 0:
            recent = sum(losses[-log_every:]) / len(losses[-log_every:])
            print(
                f"step {step + 1}/{config.steps}  loss {recent:.3f}  {time.perf_counter() - started:.0f}s", flush=True
            )

    model.eval()
    model.save_pretrained(out_dir)
    report = {
        "recipe": asdict(config),
        "corpus_sha256": _corpus_digest([general, tweets]),
        "corpus_chars": sum(map(len, texts)),
        "train_tokens": len(stream),
        "vocab_size": len(vocab),
        "parameters": sum(p.numel() for p in model.parameters()),
        "final_loss": round(sum(losses[-50:]) / len(losses[-50:]), 4),
        "seconds": round(time.perf_counter() - started, 1),
    }
    (out_dir / "build.json").write_text(json.dumps(report, indent=2) + "\n", encoding="utf-8")
    return report
