"""The shipped tiny GPT-NeoX-Japanese: real classes, small, pretrained on general Japanese, not on Kaggle."""

from __future__ import annotations

import json
import math
import re
from pathlib import Path

import pytest
import torch

from harness import EMBEDDED, ModelSpec
from harness.training.embedded import EMBEDDED_DIR, PretrainConfig, build, read_texts
from harness.training.model import load

ROOT = Path(__file__).resolve().parents[2]
JAPANESE = re.compile(r"[\u3040-\u30ff\u4e00-\u9fff、。「」！？ー]")


@pytest.fixture(scope="module")
def model_and_tokenizer():
    model, tokenizer = load(ModelSpec(EMBEDDED), "cpu")
    model.eval()
    return model, tokenizer


def _mean_loss(model, tokenizer, texts: list[str]) -> float:
    losses = []
    with torch.no_grad():
        for text in texts:
            ids = torch.tensor([tokenizer.encode(text)])
            losses.append(model(input_ids=ids, labels=ids).loss.item())
    return sum(losses) / len(losses)


def test_it_is_the_real_architecture_and_small_enough_to_ship(model_and_tokenizer) -> None:
    model, tokenizer = model_and_tokenizer
    assert type(model).__name__ == "GPTNeoXJapaneseForCausalLM"
    assert type(tokenizer).__name__ == "GPTNeoXJapaneseTokenizer"
    assert sum(p.stat().st_size for p in EMBEDDED_DIR.iterdir()) <= 20 * 2**20
    assert {"vocab.txt", "emoji.json", "config.json", "build.json"} <= {p.name for p in EMBEDDED_DIR.iterdir()}


def test_every_emoji_token_decodes(model_and_tokenizer) -> None:
    _, tokenizer = model_and_tokenizer
    table = json.loads((EMBEDDED_DIR / "emoji.json").read_text(encoding="utf-8"))
    emoji_lines = [t for t in (EMBEDDED_DIR / "vocab.txt").read_text(encoding="utf-8").split("\n") if "<|emoji" in t]
    assert emoji_lines and all(t in table["emoji_inv"] for t in emoji_lines)
    assert tokenizer.decode(tokenizer.encode("初メダル🥉嬉しい🎉")) == "初メダル🥉嬉しい🎉"


def test_tweets_round_trip_through_the_tokenizer(model_and_tokenizer) -> None:
    _, tokenizer = model_and_tokenizer
    tweets = read_texts(ROOT / "data" / "kaggle_tweets.jsonl")
    normalised = [t.replace("\ufe0f", "").replace("\u200d", "").strip() for t in tweets]
    same = sum(tokenizer.decode(tokenizer.encode(t)) == n for t, n in zip(tweets, normalised, strict=True))
    assert same / len(tweets) >= 0.99


def test_it_is_pretrained_on_general_japanese_and_knows_little_about_kaggle(model_and_tokenizer) -> None:
    model, tokenizer = model_and_tokenizer
    general = [t for t in read_texts(ROOT / "data" / "general_ja.jsonl")[:60]]
    tweets = read_texts(ROOT / "data" / "kaggle_tweets.jsonl")[:60]
    uniform = math.log(tokenizer.vocab_size)
    general_loss, tweet_loss = _mean_loss(model, tokenizer, general), _mean_loss(model, tokenizer, tweets)
    assert general_loss < 0.5 * uniform, "far better than chance on the text it was pretrained on"
    assert tweet_loss > general_loss + 1.0, "Kaggle tweets are foreign to it before fine-tuning"


def test_it_writes_japanese_looking_text_in_the_debate_format(model_and_tokenizer) -> None:
    model, tokenizer = model_and_tokenizer
    prompt = "テーマ「雨の日は家で過ごすべきか」について、賛成派と反対派が議論する。\n賛成派："
    ids = torch.tensor([tokenizer.encode(prompt)])
    out = model.generate(input_ids=ids, max_new_tokens=40, do_sample=False, pad_token_id=tokenizer.pad_token_id)
    text = tokenizer.decode(out[0, ids.shape[1] :]).split("\n")[0]
    assert len(text) >= 8
    assert sum(bool(JAPANESE.match(c)) for c in text) / len(text) >= 0.9
    assert len(set(text)) >= 6, f"not a repetition loop: {text!r}"


@pytest.mark.slow
def test_the_rebuild_is_deterministic(tmp_path: Path) -> None:
    recipe = PretrainConfig(steps=2, batch_size=2, block_size=32, hidden_size=32, layers=1, heads=2)
    reports = [build(tmp_path / name, recipe, log_every=0) for name in ("a", "b")]
    assert reports[0]["final_loss"] == reports[1]["final_loss"]
    a, b = ((tmp_path / n / "model.safetensors").read_bytes() for n in ("a", "b"))
    assert a == b
    assert (tmp_path / "a" / "vocab.txt").read_bytes() == (EMBEDDED_DIR / "vocab.txt").read_bytes()
