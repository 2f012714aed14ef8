"""Every rubric's batch path (`Rubric.many`) gives exactly what scoring each conversation alone gives."""

import sys
from pathlib import Path

import pytest

from rubrics import REGISTRY, Rubric
from rubrics.records import Conversation, Score, Turn
from rubrics.validate import DEFAULT, load

sys.path.insert(0, str(Path(__file__).resolve().parents[2] / "benchmarks"))

from bench_scoring import conversations

EDGE = [
    Conversation(()),
    Conversation.from_text(""),
    Conversation.from_text("う"),
    Conversation.from_text("#kaggle https://t.co/x"),  # nothing left once the artefacts are cut
    Conversation((Turn("A", "   \n\t"), Turn("B", "KaggleでLBが上がった #kaggle https://t.co/x @kaggle"))),
    Conversation((Turn("A", "新しいノートパソコンで銅メダル"), Turn("B", ""), Turn("A", "壊れたサロゲート\ud800です"))),
    Conversation.from_text("そうですねそうですねそうですねそうですね"),
    Conversation.from_text("🥇" * 50 + "草" * 2000),
]


@pytest.fixture(scope="module")
def sample() -> list[Conversation]:
    validation = [c for name in ("fluency", "relevance", "contamination") for _, c in load(DEFAULT / f"{name}.jsonl")]
    return [*EDGE, *validation, *conversations(300, seed=3)]


@pytest.mark.parametrize("name", sorted(REGISTRY))
def test_batch_scores_equal_one_at_a_time_to_the_bit(name, sample):
    rubric = REGISTRY[name]
    assert any("#" in t.text or "http" in t.text for c in sample for t in c.turns)
    batch = rubric.many(sample)
    assert len(batch) == len(sample)
    for conversation, score in zip(sample, batch, strict=True):
        alone = rubric(conversation)
        assert (score.value, dict(score.evidence)) == (alone.value, dict(alone.evidence)), conversation
        assert score.value.hex() == alone.value.hex()  # == would let -0.0 pass for 0.0


@pytest.mark.parametrize("name", sorted(REGISTRY))
def test_a_conversation_scores_the_same_whatever_batch_it_is_in(name, sample):
    rubric = REGISTRY[name]
    assert rubric.many(sample[::-1]) == rubric.many(sample)[::-1]
    assert rubric.many([]) == []


def test_a_rubric_without_a_batch_path_scores_a_batch_one_at_a_time():
    def turns(conversation: Conversation) -> Score:
        return Score(min(len(conversation.turns) / 10, 1.0))

    r = Rubric("turns", turns, higher_is_better=True)
    assert [s.value for s in r.many([Conversation(()), *EDGE[4:6]])] == [0.0, 0.2, 0.3]


def test_a_second_rubric_under_a_taken_name_is_an_error():
    from rubrics import rubric

    def fluency(conversation: Conversation) -> Score:
        return Score(1.0)

    with pytest.raises(ValueError, match=r"rubric name 'fluency' is taken by rubrics\.fluency\.fluency"):
        rubric(higher_is_better=True)(fluency)
    assert REGISTRY["fluency"].fn.__module__ == "rubrics.fluency"
