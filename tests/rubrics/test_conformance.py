"""The conformance measure reads a file shaped like twitter-text's extract.yml (cases written here, not copied)."""

from pathlib import Path

from rubrics.conformance import main, measure

SUITE = """\
tests:
  mentions:
    - {description: "after RT", text: "RT@kaggle_jp 見た", expected: ["kaggle_jp"]}
    - {description: "e-mail", text: "taro@example.com", expected: []}
  urls:
    - {description: "query", text: "見て https://example.com/a?b=c", expected: ["https://example.com/a?b=c"]}
    - {description: "wrongly expected cut", text: "見て https://example.com/a?b=c", expected: ["https://example.com/a"]}
  hashtags:
    - {description: "after space", text: "参加 #kaggle", expected: ["kaggle"]}
  hashtags_from_astral:
    - {description: "astral letter", text: "#𠮷野家", expected: ["𠮷野家"]}
"""


def test_counts_exact_cases_per_section_and_names_the_misses(tmp_path: Path, capsys) -> None:
    path = tmp_path / "extract.yml"
    path.write_text(SUITE, encoding="utf-8")
    result = measure(path)
    assert {s: (r["exact"], r["total"]) for s, r in result.items()} == {
        "mentions": (2, 2),
        "urls": (1, 2),
        "hashtags": (1, 1),
        "hashtags_from_astral": (1, 1),
    }
    assert result["urls"]["misses"][0][2] == ["https://example.com/a?b=c"]
    assert main([str(path)]) == 0
    assert "urls                      1 / 2" in capsys.readouterr().out


def test_a_missing_file_is_one_line_and_exit_2(tmp_path: Path, capsys) -> None:
    assert main([str(tmp_path / "extract.yml")]) == 2
    assert "extract.yml" in capsys.readouterr().err


def test_a_file_of_another_shape_is_one_line_and_exit_2(tmp_path: Path, capsys) -> None:
    path = tmp_path / "validate.yml"
    path.write_text("tests:\n  tweets: []\n", encoding="utf-8")
    assert main([str(path)]) == 2
    err = capsys.readouterr().err
    assert err.count("\n") == 1 and "not twitter-text's extract.yml" in err
