"""Shared fixtures: small experiments written as real files, and the project root."""

from __future__ import annotations

import os
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parent.parent
os.environ.setdefault("WANDB_MODE", "offline")
os.environ.setdefault("WANDB_SILENT", "true")


SMALL_EXPERIMENT = """
from harness import EMBEDDED, DataSpec, Experiment, GenerationSpec, LoraSpec, ModelSpec, Scenario, TrainingSpec
from harness.cleaning import default_tweet_rules

experiment = Experiment(
    model=ModelSpec(EMBEDDED, dtype="float32"),
    lora=LoraSpec(r=8, alpha=16, dropout=0.0, target_modules=("query_key_value", "dense_h_to_4h")),
    data=DataSpec({data!r}, block_size=64),
    cleaning=default_tweet_rules(),
    scenarios=(
        Scenario("monthly-kaggle", "月刊Kaggleは役に立たない", ("Kaggleアンチ", "Kaggleファン"), turns=4),
        Scenario("shake-up", "Private LBのshake upはただの運ゲーだ", ("Kaggleアンチ", "Kaggleファン"), turns=4),
    ),
    rubrics=("relevance", "contamination", "fluency"),
    training=TrainingSpec(max_steps={max_steps}, learning_rate=2e-3, batch_size=4, logging_steps=1),
    generation=GenerationSpec(max_new_tokens=16),
    eval_every={eval_every},
)
"""


@pytest.fixture
def write_experiment(tmp_path: Path):
    """Write an experiment file (the small one by default, or any source) and return its path."""

    def write(source: str | None = None, name: str = "small", **fields: object) -> Path:
        values = {"data": str(ROOT / "data" / "kaggle_tweets.jsonl"), "max_steps": 4, "eval_every": 2, **fields}
        path = tmp_path / "experiments" / f"{name}.py"
        path.parent.mkdir(exist_ok=True)
        path.write_text(source if source is not None else SMALL_EXPERIMENT.format(**values), encoding="utf-8")
        return path

    return write
