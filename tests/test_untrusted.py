"""Untrusted generated text: scoring never crashes on it, whatever it holds."""

from __future__ import annotations

import pytest

from rubrics import REGISTRY
from rubrics.records import Conversation, Turn

NASTY = [
    "<script>alert('LB')</script> #kaggle",
    "\u202eshake up\u202c はRTLマーク付き",
    "制御文字\x00\x07\x1b[31m入り",
    "壊れたサロゲート\ud800です",
    "草" * 100_000,
    "",
    "   \n\n\t",
    "🥇" * 500 + "https://t.co/" + "a" * 5000,
    "#" * 1000 + "@" * 1000,
]


@pytest.mark.parametrize("text", NASTY, ids=range(len(NASTY)))
def test_every_rubric_scores_any_text_within_bounds(text: str) -> None:
    conversation = Conversation((Turn("Kaggleアンチ", text), Turn("Kaggleファン", "月刊Kaggleは毎月読んでます。")))
    for rubric in REGISTRY.values():
        score = rubric(conversation)
        assert 0.0 <= score.value <= 1.0, rubric.name
