"""Cleaning rules: every rule's own examples hold, and the corpus-level counts add up."""

from __future__ import annotations

import itertools

import pytest

from harness.cleaning import apply_rules, default_tweet_rules

RULES = default_tweet_rules()


@pytest.mark.parametrize(
    ("rule", "given", "expected"),
    [(r, given, expected) for r in RULES for given, expected in r.examples],
    ids=lambda v: getattr(v, "name", None) or str(v)[:20],
)
def test_every_rule_does_what_its_examples_say(rule, given, expected) -> None:
    assert rule(given) == expected


@pytest.mark.parametrize(
    ("tweet", "cleaned"),
    [
        ("RT @kaggle_taro: 初メダル取れた🥉 #kaggle https://t.co/AbCdEf1234", "初メダル取れた"),
        ("@lgbm_taro 月刊Kaggle、毎月読んでますよ！ #月刊Kaggleは役に立たない", "月刊Kaggle、毎月読んでますよ!"),
        (
            "#Kaggle の公開Notebookをforkしただけで銅メダルは違和感ある",
            "Kaggle の公開Notebookをforkしただけで銅メダルは違和感ある",
        ),
        ("解法まとめました zenn.dev/foo/articles/abc123 ＃機械学習", "解法まとめました"),
        ("train.csv を pandas 2.2.3 で読むだけで 3 分かかる", "train.csv を pandas 2.2.3 で読むだけで 3 分かかる"),
        ("@a @b 🙏", None),
    ],
)
def test_default_rules_strip_tweet_artefacts_but_keep_the_sentence(tweet: str, cleaned: str | None) -> None:
    texts, _ = apply_rules([tweet], RULES)
    assert texts == ([] if cleaned is None else [cleaned])


def test_stats_count_every_document_in_and_out() -> None:
    tweets = ["RT @x: LBが動いた、shake upかも", "@y 短い", "CVとLBが全然相関しない #kaggle"]
    texts, stats = apply_rules(tweets, RULES)
    assert [s.name for s in stats] == [r.name for r in RULES]
    assert stats[0].docs_in == 3 and stats[-1].docs_out == len(texts) == 2
    for before, after in itertools.pairwise(stats):
        assert after.docs_in == before.docs_out
    assert sum(s.removed for s in stats) == 1
    assert stats[0].changed == 1 and stats[0].chars_removed == len("RT @x: ")
