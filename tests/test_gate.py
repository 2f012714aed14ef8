"""The cleaning gate: its statistics, its usage errors, and, on a reduced fine-tune, both verdict directions and the
same verdict on a rerun."""

from __future__ import annotations

import dataclasses
import json
from pathlib import Path

import pytest

from harness.cli import main
from harness.data.cleaning import LengthRange, RemoveURLs, Unhashtag, default_tweet_rules
from harness.gate import gate
from harness.gate.stats import compare_rubric, judge, markdown, paired_bootstrap
from harness.spec.experiment import GateSpec, SpecError
from harness.spec.load import load_experiment

ROOT = Path(__file__).resolve().parent.parent
EXPERIMENT = ROOT / "experiments/kaggle_debate.py"


def test_bootstrap_is_seeded_and_brackets_the_mean() -> None:
    diffs = [0.1, 0.3, -0.05, 0.2, 0.0, 0.25, 0.15, 0.1]
    lo, hi = paired_bootstrap(diffs, 2000, seed=0, confidence=0.95)
    assert (lo, hi) == paired_bootstrap(diffs, 2000, seed=0, confidence=0.95)
    assert lo < sum(diffs) / len(diffs) < hi and lo > 0
    assert paired_bootstrap([0.0] * 8, 2000, 0, 0.95) == (0.0, 0.0)


@pytest.mark.parametrize(
    ("difference", "interval", "higher_is_better", "verdict"),
    [
        (0.2, (0.1, 0.3), False, "fail"),  # contamination up, clearly
        (0.2, (-0.01, 0.4), False, "pass"),  # up, but the interval holds zero
        (0.01, (0.005, 0.02), False, "pass"),  # up, within tolerance
        (-0.2, (-0.3, -0.1), False, "pass"),  # contamination down is good
        (-0.2, (-0.3, -0.1), True, "fail"),  # relevance down, clearly
        (0.2, (0.1, 0.3), True, "pass"),
    ],
)
def test_a_rubric_fails_only_beyond_tolerance_with_the_interval_excluding_zero(
    difference: float, interval: tuple[float, float], higher_is_better: bool, verdict: str
) -> None:
    assert judge(difference, interval, 0.05, higher_is_better) == verdict


def test_identical_scores_pass_with_a_zero_interval() -> None:
    row = compare_rubric("fluency", [(0.8, 0.8)] * 16, 0.05, True, 2000, 0, 0.95)
    assert row["verdict"] == "pass" and row["interval"] == [0.0, 0.0] and row["pairs"] == 16


@pytest.mark.parametrize(
    ("args", "message"),
    [
        (["--rules", "rules.py"], "MODULE.py:NAME"),
        (["--rules", "missing.py:rules"], "no such file"),
        (["--rules", "{rules}:nothing"], "list of HojiChar filters"),
        (["--baseline", "{missing}"], "--update-baseline"),
        (["--against", "no-such-revision-xyz"], "--against no-such-revision-xyz"),
        (["--against", "HEAD", "--update-baseline"], "--against"),
    ],
)
def test_bad_arguments_exit_2_with_one_line(args: list[str], message: str, tmp_path: Path, capsys) -> None:
    rules = tmp_path / "rules.py"
    rules.write_text("rules = 3\n")
    args = [a.format(rules=rules, missing=tmp_path / "missing.json") for a in args]
    assert main(["gate", str(EXPERIMENT), *args, "--out", str(tmp_path)]) == 2
    err = capsys.readouterr().err.strip()
    assert message in err and len(err.splitlines()) == 1


def test_an_experiment_without_a_gate_is_a_usage_error(tmp_path: Path, capsys) -> None:
    file = tmp_path / "experiments" / "nogate.py"
    file.parent.mkdir()
    file.write_text(f"import dataclasses, runpy\nexperiment = dataclasses.replace(runpy.run_path({str(EXPERIMENT)!r})"
                    "['experiment'], gate=None)\n")  # fmt: skip
    assert main(["gate", str(file)]) == 2
    assert "declares no gate" in capsys.readouterr().err


def test_tolerances_must_name_the_experiments_rubrics() -> None:
    experiment = load_experiment(EXPERIMENT)
    with pytest.raises(SpecError, match="not rubrics of this experiment"):
        dataclasses.replace(experiment, gate=GateSpec(tolerances={"politeness": 0.1}))


SHIPPED = default_tweet_rules()
NO_STRIPPING = tuple(r for r in SHIPPED if not isinstance(r, RemoveURLs | Unhashtag))


def _side(experiment, rules) -> gate.Side:
    return gate._side("test", experiment, EXPERIMENT, tuple(rules))


def test_rules_that_keep_urls_and_hashtags_fail_at_the_data_level() -> None:
    experiment = load_experiment(EXPERIMENT)
    base, cand = (gate.data_level(_side(experiment, r), experiment) for r in (SHIPPED, NO_STRIPPING))
    rows = {r["metric"]: r for r in gate._data_rows(base, cand, experiment)}
    assert rows["artefact_rate"]["verdict"] == "fail" and rows["artefact_rate"]["candidate"] > 0.5
    assert {r["metric"]: r["verdict"] for r in gate._data_rows(base, base, experiment)}["artefact_rate"] == "pass"


@pytest.mark.slow
def test_raw_tweets_fail_at_the_model_level_and_the_verdict_repeats() -> None:
    """The committed baseline (shipped rules) against no cleaning at all: 2 fine-tunes of the candidate."""
    experiment = load_experiment(EXPERIMENT)
    baseline = gate.read_baseline(gate.baseline_path(EXPERIMENT))
    candidate = _side(experiment, ())
    first = gate.compare(experiment, EXPERIMENT, baseline, candidate)
    rows = {r["rubric"]: r for r in first["rubrics"]}
    assert first["verdict"] == "fail"
    assert rows["contamination"]["verdict"] == "fail" and rows["contamination"]["interval"][0] > 0
    del gate._memo[gate._sha([gate.train_key(experiment), candidate.texts])]  # train again: it must repeat exactly
    second = gate.compare(experiment, EXPERIMENT, gate.read_baseline(gate.baseline_path(EXPERIMENT)), candidate)
    assert json.dumps(second, sort_keys=True) == json.dumps(first, sort_keys=True)


@pytest.mark.slow
def test_the_shipped_rules_and_a_harmless_change_pass(tmp_path: Path) -> None:
    experiment = load_experiment(EXPERIMENT)
    out = tmp_path / "gate"
    assert main(["gate", str(EXPERIMENT), "--out", str(out)]) == 0
    result = json.loads((out / "kaggle_debate.gate.json").read_text())
    assert result["verdict"] == "pass" and all(r["difference"] == 0 for r in result["rubrics"])
    assert "| contamination |" in (out / "kaggle_debate.gate.md").read_text()
    stricter = tuple(LengthRange(min_doc_len=20) if isinstance(r, LengthRange) else r for r in SHIPPED)
    changed = _side(experiment, stricter)
    assert len(changed.texts) < len(_side(experiment, SHIPPED).texts)
    result = gate.compare(experiment, EXPERIMENT, gate.read_baseline(gate.baseline_path(EXPERIMENT)), changed)
    assert result["verdict"] == "pass", markdown(result)


def test_a_git_revision_supplies_its_own_cleaned_corpus() -> None:
    side = gate.side_at_revision("HEAD", EXPERIMENT)
    assert side.label == "git HEAD" and side.raw_count == 880 and 0 < len(side.texts) <= 880
