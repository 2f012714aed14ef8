import argparse
import json
import re

import pytest

from harness.cli import score as score_cli
from harness.errors import UserError
from harness.evaluation import scoring
from rubrics.records import Conversation


def run(tmp_path, lines: list[str], *extra: str) -> tuple[int, list[dict]]:
    src, out = tmp_path / "in.jsonl", tmp_path / "out.jsonl"
    src.write_text("\n".join(lines) + "\n", encoding="utf-8")
    parser = argparse.ArgumentParser()
    score_cli.add_arguments(parser)
    code = score_cli.main(parser.parse_args([str(src), "-o", str(out), *extra]))
    return code, [json.loads(line) for line in out.read_text(encoding="utf-8").splitlines()]


TEXT = json.dumps({"id": "t1", "text": "Public LBでシェイクダウンした #kaggle https://t.co/abc"}, ensure_ascii=False)
TURNS = json.dumps(
    {
        "id": 2,
        "turns": [{"speaker": "A", "text": "週末は温泉に行った"}, {"speaker": "B", "text": "いいね、どこの温泉？"}],
    },
    ensure_ascii=False,
)


def test_scores_texts_and_conversations_in_input_order(tmp_path):
    code, rows = run(tmp_path, [TEXT, TURNS])
    assert code == 0
    assert [r["id"] for r in rows] == ["t1", 2]
    assert set(rows[0]["scores"]) >= {"relevance", "contamination", "fluency"}
    assert rows[0]["artefacts"] == 2 and rows[1]["artefacts"] == 0
    assert rows[0]["scores"]["relevance"] > rows[1]["scores"]["relevance"]
    assert [s["kind"] for s in rows[0]["evidence"]["contamination"]["spans"]] == ["hashtag", "url"]


@pytest.mark.parametrize(
    ("bad", "message"),
    [
        ("{not json", "not valid JSON"),
        ('{"text": "IDがない"}', "no 'id'"),
        ('{"id": 1, "text": "a", "turns": []}', "exactly one of 'text' or 'turns'"),
        ('{"id": 1, "turns": [{"speaker": "A"}]}', "turns[0]"),
        ('{"id": 1, "text": 3}', "'text' must be a string"),
    ],
)
def test_a_malformed_line_is_one_error_naming_its_line(tmp_path, bad, message):
    with pytest.raises(UserError, match=rf"in\.jsonl:2: .*{re.escape(message)}"):
        run(tmp_path, [TEXT, bad, TURNS])


def test_skip_bad_counts_and_skips_malformed_lines(tmp_path, capsys):
    code, rows = run(tmp_path, [TEXT, "{oops", "", TURNS], "--skip-bad")
    assert code == 0 and [r["id"] for r in rows] == ["t1", 2]
    assert "skipped 1 malformed line" in capsys.readouterr().err


def test_missing_input_is_a_user_error(tmp_path):
    parser = argparse.ArgumentParser()
    score_cli.add_arguments(parser)
    with pytest.raises(UserError, match="no such file"):
        score_cli.main(parser.parse_args([str(tmp_path / "missing.jsonl")]))


def test_lines_scored_in_batches_equal_each_conversation_scored_alone(tmp_path, monkeypatch):
    from rubrics import REGISTRY

    texts = ["Public LBでシェイクダウンした #kaggle", "", "う", "週末は温泉に行った", "CVとLBが合わない @kaggle"]
    monkeypatch.setattr(scoring, "BATCH", 2)
    _, rows = run(tmp_path, [json.dumps({"id": i, "text": t}, ensure_ascii=False) for i, t in enumerate(texts)])
    assert [r["id"] for r in rows] == list(range(len(texts)))
    for row, text in zip(rows, texts, strict=True):
        alone = {name: r(Conversation.from_text(text)) for name, r in REGISTRY.items()}
        assert row["scores"] == {name: s.value for name, s in alone.items()}
        assert row["evidence"] == {name: dict(s.evidence) for name, s in alone.items()}
