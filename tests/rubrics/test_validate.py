"""The issue's acceptance thresholds, measured on the shipped validation set (data/validation)."""

import json

import pytest

from rubrics.build import CORRUPTIONS
from rubrics.validate import DEFAULT, agreement, load, real_sentences, real_text_agreement


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


def test_real_sentences_are_read_from_text_tsv_and_conllu(tmp_path):
    (tmp_path / "a.txt").write_text("朝は晴れていた。\n\n昼から雨になった。\n", encoding="utf-8")
    (tmp_path / "b.tsv").write_text("news\t駅前に新しい店ができた。\n", encoding="utf-8")
    (tmp_path / "c.conllu").write_text("# sent_id = 1\n# text = 今日は休みです。\n1\t今日\n", encoding="utf-8")
    assert real_sentences(tmp_path / "a.txt") == ["朝は晴れていた。", "昼から雨になった。"]
    assert real_sentences(tmp_path / "b.tsv") == ["駅前に新しい店ができた。"]
    assert real_sentences(tmp_path / "c.conllu") == ["今日は休みです。"]


def test_real_text_measure_reports_every_corruption_kind(tmp_path):
    path = tmp_path / "s.txt"
    path.write_text(
        "\n".join(row["text"] for row, _ in load(DEFAULT / "fluency.jsonl") if row["kind"] == "formal"),
        encoding="utf-8",
    )
    result = real_text_agreement([path])
    assert set(result["kinds"]) == set(CORRUPTIONS)
    assert result["below_half"] <= 0.1 and result["auc"] >= 0.9
