"""Cleaning rules: every rule's own examples hold, the corpus-level counts add up, and the shipped set cleans the
real corpus of every artefact the contamination rubric can see."""

from __future__ import annotations

import dataclasses
import itertools
import json
from pathlib import Path

import pytest
from hojichar import Compose

from harness.cli import main
from harness.data.cleaning import RemoveURLs, Unhashtag, apply_rules, clean_one, default_tweet_rules, stats_table
from harness.spec.load import load_experiment
from rubrics.contamination import find_artefacts

RULES = default_tweet_rules()
ROOT = Path(__file__).resolve().parents[2]


@pytest.mark.parametrize(
    ("rule", "given", "expected"),
    [(r, given, expected) for r in RULES for given, expected in getattr(r, "examples", ())],
    ids=lambda v: type(v).__name__ if hasattr(v, "apply") else str(v)[:20],
)
def test_every_rule_does_what_its_examples_say(rule, given, expected) -> None:
    assert clean_one(given, rule) == expected


@pytest.mark.parametrize(
    ("rule", "given", "kept"),
    [(r, given, kept) for r in RULES for given, kept in getattr(r, "corpus_examples", ())],
    ids=lambda v: type(v).__name__ if hasattr(v, "apply") else str(v)[:20],
)
def test_corpus_rules_do_what_their_examples_say(rule, given, kept) -> None:
    assert tuple(apply_rules(given, [rule])[0]) == kept


def test_every_shipped_rule_carries_examples() -> None:
    assert all(getattr(r, "examples", ()) or getattr(r, "corpus_examples", ()) for r in RULES)


@pytest.mark.parametrize(
    ("tweet", "cleaned"),
    [
        ("RT @kaggle_taro: 初メダル取れた🥉 嬉しい #kaggle https://t.co/AbCdEf1234", "初メダル取れた嬉しい"),
        ("@lgbm_taro 月刊Kaggle、毎月読んでますよ！ #月刊Kaggleは役に立たない", "月刊Kaggle、毎月読んでますよ!"),
        (
            "#Kaggle の公開Notebookをforkしただけで銅メダルは違和感ある",
            "Kaggleの公開Notebookをforkしただけで銅メダルは違和感ある",
        ),
        ("解法まとめました zenn.dev/foo/articles/abc123 ＃機械学習", None),
        ("train.csv を pandas 2.2.3 で読むだけで 3 分かかる", "train.csvをpandas 2.2.3で読むだけで3分かかる"),
        ("@a @b 🙏", None),
        (
            "LGBMのパラメータ解説動画→ https://www.youtube.com/watch?v=LOxOAuDHzaw&t=95s 後半が本題 #kaggle",
            "LGBMのパラメータ解説動画→後半が本題",
        ),
        (
            "Meetup #6の参加記を書きました https://zenn.dev/u/articles/a?utm_source=twitter",
            "Meetup #6の参加記を書きました",
        ),
        ("Great solution writeup, thanks!", None),
    ],
)
def test_default_rules_strip_tweet_artefacts_but_keep_the_sentence(tweet: str, cleaned: str | None) -> None:
    texts, _ = apply_rules([tweet], RULES)
    assert texts == ([] if cleaned is None else [cleaned])


def test_stats_count_every_document_in_and_out() -> None:
    tweets = ["RT @x: LBが動いた、shake upかも", "@y 短い", "CVとLBが全然相関しない #kaggle", "CVとLBが全然相関しない"]
    texts, stats = apply_rules(tweets, RULES)
    assert [s.name for s in stats] == [type(r).__name__ for r in RULES]
    assert stats[0].docs_in == 4 and stats[-1].docs_out == len(texts) == 2
    for before, after in itertools.pairwise(stats):
        assert after.docs_in == before.docs_out
    by_name = {s.name: s for s in stats}
    assert by_name["LengthRange"].removed == 1 and by_name["NearDuplicates"].removed == 1
    assert stats[0].changed == 1 and stats[0].chars_removed == len("RT @x: ")


def test_stateful_rules_start_fresh_on_every_corpus() -> None:
    tweets = ["CVとLBが全然相関しない", "CVとLBが全然相関しない"]
    assert apply_rules(tweets, RULES)[0] == apply_rules(tweets, RULES)[0] == ["CVとLBが全然相関しない"]


def test_shipped_rules_leave_no_artefact_in_the_corpus() -> None:
    raw = [json.loads(line)["text"] for line in (ROOT / "data/kaggle_tweets.jsonl").read_text().splitlines()]
    texts, _ = apply_rules(raw, RULES)
    assert sum(bool(find_artefacts(t)) for t in raw) > 300
    assert [a["text"] for t in texts for a in find_artefacts(t)] == []
    # Nothing of a URL stays: before URLs were whole, `?v=…` and `?utm_source=…` tails were left in the training text.
    assert any("?v=" in t or "utm_" in t for t in raw)
    assert not any("?v=" in t or "utm_" in t or "http" in t for t in texts)
    assert len(texts) > 0.95 * len(raw)


def test_an_experiment_takes_a_compose_or_a_list_and_records_rule_names() -> None:
    experiment = load_experiment(ROOT / "experiments/kaggle_debate.py")
    composed = dataclasses.replace(experiment, cleaning=Compose([RemoveURLs(), Unhashtag()]))
    listed = dataclasses.replace(experiment, cleaning=[RemoveURLs(), Unhashtag()])
    assert isinstance(composed.cleaning, tuple) and isinstance(listed.cleaning, tuple)
    assert composed.to_config()["cleaning"] == listed.to_config()["cleaning"] == ["RemoveURLs", "Unhashtag"]


def test_clean_command_writes_the_corpus_and_prints_the_rule_table(tmp_path: Path, capsys) -> None:
    out = tmp_path / "clean.jsonl"
    assert main(["clean", str(ROOT / "experiments/kaggle_debate.py"), "-o", str(out)]) == 0
    printed = capsys.readouterr().out
    assert all(type(r).__name__ in printed for r in RULES) and "docs in" in printed
    texts = [json.loads(line)["text"] for line in out.read_text().splitlines()]
    assert 800 < len(texts) < 880 and all("http" not in t and "t.co/" not in t for t in texts)


def test_the_clean_table_shows_the_span_each_rule_removed() -> None:
    """A cut example must not stop just before the URL: the removed span is marked, unchanged text shortened."""
    tweets = [json.loads(line)["text"] for line in (ROOT / "data" / "kaggle_tweets.jsonl").open(encoding="utf-8")]
    with_url = [t for t in tweets if any(s["kind"] == "url" for s in find_artefacts(t)) and len(t) > 80]
    _, stats = apply_rules(with_url[:1], [RemoveURLs()])
    (line,) = [line for line in stats_table(stats).splitlines() if line.startswith("  RemoveURLs: ")]
    (url,) = [with_url[0][s["start"] : s["end"]] for s in find_artefacts(with_url[0]) if s["kind"] == "url"]
    assert f"[-{url}-]" in line and "…" in line and len(line) < len(with_url[0]) + 20
