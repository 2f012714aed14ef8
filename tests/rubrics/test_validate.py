"""The issue's acceptance thresholds, measured on the shipped validation set (data/validation)."""

import json

import pytest

from rubrics.build import CORRUPTIONS
from rubrics.validate import DEFAULT, agreement, load


@pytest.fixture(scope="module")
def result() -> dict:
    return agreement(DEFAULT)


def test_the_set_is_large_enough_and_covers_every_hard_case():
    kinds = {name: {row["kind"] for row, _ in load(DEFAULT / f"{name}.jsonl")} for name in ("fluency", "relevance")}
    assert sum(len(load(DEFAULT / f"{n}.jsonl")) for n in ("fluency", "relevance", "contamination")) >= 300
    assert set(CORRUPTIONS) | {"jargon", "proper", "numbers"} <= kinds["fluency"]
    assert {"shake", "submit", "medal", "grandmaster", "fork", "team", "katakana"} <= kinds["relevance"]
    assert {"hard_medal", "hard_contest", "hard_notebook", "hard_ranking"} <= kinds["relevance"]


def test_fluency_separates_natural_from_corrupted(result):
    assert result["fluency"]["auc"] >= 0.95


@pytest.mark.parametrize("kind", sorted(CORRUPTIONS))
def test_fluency_separates_every_corruption_kind(result, kind):
    assert result["fluency"]["kinds"][kind] >= (0.80 if kind == "truncation" else 0.90)


def test_relevance_ranks_kaggle_above_ml_above_unrelated(result):
    r = result["relevance"]
    assert r["auc"] >= 0.95
    assert r["mean"]["other"] < r["mean"]["ml"] < r["mean"]["kaggle"]


def test_relevance_is_not_fooled_by_shared_surface_words(result):
    hard = {k: v for k, v in result["relevance"]["kinds"].items() if k.startswith("other:hard_")}
    assert hard and min(hard.values()) >= 0.90


def test_relevance_keeps_unrelated_talk_below_half_with_numbers_and_medals(result):
    kinds = {row["kind"] for row, _ in load(DEFAULT / "relevance.jsonl")}
    assert {"hard_music", "hard_school", "hard_score", "hard_quiz"} <= kinds
    assert result["relevance"]["other_below_half"] >= 22 / 24  # the target for medal/rank/contest sentences


def test_contamination_counts_exactly_without_false_positives(result):
    c = result["contamination"]
    assert c["exact"] >= 0.97
    assert c["false_positives"] == 0


def test_every_measure_is_json(result):
    assert json.loads(json.dumps(result))["contamination"]["n"] == result["contamination"]["n"]
