"""Watches over the rubric curves: when they alert, which round adapter-best/ keeps, and how they are declared."""

from __future__ import annotations

import dataclasses
import json
from pathlib import Path

import pandas as pd
import pytest
from conftest import ROOT

from harness import load_run
from harness.cli import main
from harness.compare.report import turning
from harness.evaluation.quality import composite, first_appearances
from harness.records.runlog import read_run
from harness.records.runs import RunFrames, find_runs, summary
from harness.spec.experiment import SpecError, TrainingSpec
from harness.spec.watches import DriftWatch, FallingWatch, ThresholdWatch, default_watches
from harness.training.watch import BestAdapter, Watcher, best_metric, round_metrics


def _rounds(watcher: Watcher, rounds: list[tuple[int, dict[str, float]]]) -> list[tuple[int, str]]:
    fired = []
    for step, means in rounds:
        fired += [(a.step, a.rule) for a in watcher.observe(step, means)]
    return fired


def _means(relevance: float, contamination: float, fluency: float) -> dict[str, float]:
    return {"relevance": relevance, "contamination": contamination, "fluency": fluency}


def test_contamination_above_its_level_alerts_once_per_episode_and_the_round_is_unhealthy() -> None:
    watcher = Watcher([ThresholdWatch("contamination", level=0.05)])
    contamination = [0.0, 0.025, 0.05, 0.133, 0.2, 0.0, 0.09]
    fired = []
    healthy = []
    for i, value in enumerate(contamination):
        fired += [(a.step, a.rubric, round(a.value, 3)) for a in watcher.observe(i * 40, _means(0.5, value, 0.8))]
        healthy.append(watcher.healthy)
    assert fired == [(120, "contamination", 0.133), (240, "contamination", 0.09)], "at the level is not above it"
    assert healthy == [True, True, True, False, False, True, False]


def test_a_higher_is_better_rubric_alerts_below_its_level() -> None:
    watcher = Watcher([ThresholdWatch("fluency", level=0.6)])
    assert _rounds(watcher, [(0, _means(0.5, 0, 0.7)), (40, _means(0.5, 0, 0.55))]) == [(40, "threshold")]


def test_drift_is_the_reports_turned_down_rule_on_the_rounds_so_far() -> None:
    """A run whose composite peaks at step 80 and then falls while the loss keeps falling: the watch fires at the
    first round the report flags, and the report (over the whole run) flags the same rounds."""
    rounds = [(0, _means(0.0, 0, 0.95)), (40, _means(0.3, 0, 0.8)), (80, _means(0.9, 0, 0.9)),
              (120, _means(0.85, 0, 0.88)), (160, _means(0.6, 0.1, 0.7)), (200, _means(0.5, 0.2, 0.6))]  # fmt: skip
    losses = [(10, 5.0), (40, 4.2), (80, 3.7), (120, 3.4), (160, 3.1), (200, 2.9)]
    watcher = Watcher([DriftWatch(tolerance=0.1)])
    watcher.losses = losses
    alerts = [a for step, means in rounds for a in watcher.observe(step, means)]
    assert [(a.step, a.details["best_step"]) for a in alerts] == [(160, 80)], "fires once, when the episode starts"
    assert alerts[0].details["loss"] == 3.1 and alerts[0].details["best_loss"] == 3.7

    run = RunFrames(
        path=Path("."), header={"run_id": "r"}, status="completed", rubrics=["relevance", "contamination", "fluency"],
        metrics=pd.DataFrame([{"step": s, "loss": v} for s, v in losses]), conversations=pd.DataFrame(),
        traces=pd.DataFrame(), evals=pd.DataFrame([{"step": s, **m} for s, m in rounds]), alerts=pd.DataFrame(),
        appearances=pd.DataFrame(),
    )  # fmt: skip
    report = turning(run, tolerance=0.1)
    assert report.best_step == 80 and report.turned_down == [160, 200]


def test_drift_needs_the_loss_to_have_fallen() -> None:
    watcher = Watcher([DriftWatch(tolerance=0.05)])
    watcher.losses = [(10, 3.0), (40, 3.5), (80, 3.6)]
    assert _rounds(watcher, [(0, _means(0.5, 0, 0.9)), (40, _means(0.1, 0, 0.5)), (80, _means(0.1, 0, 0.4))]) == []


def test_a_rubric_falling_k_rounds_in_a_row_alerts_and_small_wobbles_do_not_count() -> None:
    watcher = Watcher([FallingWatch("relevance", rounds=3, min_drop=0.02)])
    relevance = [0.9, 0.8, 0.79, 0.7, 0.6, 0.5, 0.4]  # 0.80 -> 0.79 is within min_drop
    fired = _rounds(watcher, [(i * 40, _means(r, 0, 0.9)) for i, r in enumerate(relevance)])
    assert fired == [(200, "falling")]
    contamination = Watcher([FallingWatch("contamination", rounds=2, min_drop=0.0)])
    assert _rounds(contamination, [(s, _means(0.5, c, 0.9)) for s, c in ((0, 0.0), (40, 0.1), (80, 0.3))]) == [
        (80, "falling")
    ], "worse is up for a lower-is-better rubric"


def test_best_adapter_keeps_the_earliest_best_of_the_rounds_offered(tmp_path: Path) -> None:
    saved: list[int] = []

    def save(path: Path) -> None:
        path.mkdir()
        (path / "adapter_model.safetensors").write_bytes(str(len(saved)).encode())
        saved.append(len(saved))

    best = BestAdapter(tmp_path, "eval_rubric/composite", True, save)
    for step, value in ((0, 0.6), (40, 0.7), (80, 0.7), (120, float("nan")), (160, 0.65)):
        best.offer(step, {"eval_rubric/composite": value})
    assert (best.step, best.value) == (40, 0.7)
    assert (tmp_path / "adapter-best" / "best.json").read_text() == (
        '{"step": 40, "metric": "eval_rubric/composite", "value": 0.7}'
    )
    assert (tmp_path / "adapter-best" / "adapter_model.safetensors").read_bytes() == b"1"
    assert not (tmp_path / "adapter-best.partial").exists()
    lower = BestAdapter(tmp_path / "lower", "eval_rubric/contamination", False, lambda p: p.mkdir(parents=True))
    for step, value in ((0, 0.1), (40, 0.0), (80, 0.2)):
        lower.offer(step, {"eval_rubric/contamination": value})
    assert lower.step == 40


def test_round_metrics_are_the_rubric_means_and_the_reports_composite() -> None:
    means = _means(0.3, 0.1, 0.8)
    metrics = round_metrics(means)
    assert metrics == {"eval_rubric/relevance": 0.3, "eval_rubric/contamination": 0.1, "eval_rubric/fluency": 0.8,
                       "eval_rubric/composite": pytest.approx((0.3 + 0.9 + 0.8) / 3)}  # fmt: skip
    assert metrics["eval_rubric/composite"] == composite(means)
    assert best_metric(TrainingSpec(max_steps=10)) == ("eval_rubric/composite", True)
    assert best_metric(TrainingSpec(max_steps=10, metric_for_best_model="eval_rubric/contamination")) == (
        "eval_rubric/contamination",
        False,
    )


def test_first_appearance_is_per_scenario_with_kinds_and_examples() -> None:
    def evidence(*spans: tuple[str, str]) -> dict:
        return {"spans": [{"turn": 0, "start": 0, "end": len(t), "kind": k, "text": t} for k, t in spans]}

    rows = [(0, "shake-up", evidence()), (40, "shake-up", evidence(("hashtag", "#kaggle"), ("url", "t.co/ab"))),
            (80, "shake-up", evidence(("mention", "@x"))), (80, "medal-first", evidence(("hashtag", "#GM"))),
            (120, "medal-first", evidence(("url", "bit.ly/c"))), (120, "compute", None)]  # fmt: skip
    first = first_appearances(rows)
    assert {s: (a.step, a.kinds, a.examples) for s, a in first.items()} == {
        "shake-up": (40, {"hashtag": 1, "url": 1}, ("#kaggle", "t.co/ab")),
        "medal-first": (80, {"hashtag": 1}, ("#GM",)),
    }


@pytest.mark.parametrize(
    ("make", "message"),
    [
        (lambda: ThresholdWatch(level=1.5), "ThresholdWatch.level must be in [0, 1]"),
        (lambda: ThresholdWatch(level="0.1"), "ThresholdWatch.level must be float"),
        (lambda: FallingWatch(rounds=0), "FallingWatch.rounds must be at least 1"),
        (lambda: DriftWatch(tolerance=-0.1), "DriftWatch.tolerance must be in [0, 1]"),
        (lambda: TrainingSpec(max_steps=10, metric_for_best_model="loss"), "eval_rubric/composite or"),
    ],
)
def test_a_bad_watch_is_one_line_naming_the_field(make, message) -> None:
    with pytest.raises(SpecError, match=message.replace("[", r"\[").replace("]", r"\]")):
        make()


def test_an_experiment_checks_its_watches_and_metric_against_its_rubrics() -> None:
    import experiments.kaggle_debate as declared

    experiment = declared.experiment
    assert experiment.watches == default_watches(("relevance", "contamination", "fluency", "composite"))
    with pytest.raises(SpecError, match=r"FallingWatch\.rubric: 'toxicity' is not a rubric of this experiment"):
        dataclasses.replace(experiment, watches=(FallingWatch("toxicity"),))
    with pytest.raises(SpecError, match=r"training\.metric_for_best_model: 'eval_rubric/bleu' names no rubric"):
        dataclasses.replace(
            experiment, training=dataclasses.replace(experiment.training, metric_for_best_model="eval_rubric/bleu")
        )
    no_contamination = dataclasses.replace(experiment, rubrics=("relevance", "fluency"), watches=None, gate=None)
    assert not any(isinstance(w, ThresholdWatch) for w in no_contamination.watches or ())


def _records(run_dir: Path, type_: str) -> list[dict]:
    return read_run(run_dir).of(type_)


def _one_run(runs: Path) -> Path:
    (run_dir,) = runs.iterdir()
    return run_dir


@pytest.mark.slow
def test_raw_tweets_alert_on_contamination_stop_and_keep_a_best_adapter_from_before(tmp_path: Path) -> None:
    """The reference story's mistake at the cpu profile's schedule: hashtags appear, the watch fires and stops the
    run there (round 80 of 240 on 2 cores, so the test trains 80 steps)."""
    experiment = tmp_path / "experiments" / "raw_stop.py"
    experiment.parent.mkdir()
    experiment.write_text(
        "import dataclasses\n\nimport experiments.kaggle_debate_raw as raw\nfrom harness.experiment import "
        "ThresholdWatch\n\nexperiment = dataclasses.replace(raw.experiment, watches=(ThresholdWatch('contamination', "
        "0.05, stop=True),))\n",
        encoding="utf-8",
    )
    assert main(["run", str(experiment), "--runs-dir", str(tmp_path / "runs")]) == 0
    run_dir = _one_run(tmp_path / "runs")
    (alert,) = _records(run_dir, "alert")
    assert (alert["rubric"], alert["rule"], alert["stop"]) == ("contamination", "threshold", True)
    assert alert["value"] > 0.05
    (end,) = _records(run_dir, "end")
    assert end["status"] == "completed" and "threshold watch on contamination" in end["stopped_by"]
    assert max(read_run(run_dir).eval_steps()) == alert["step"], "stopped after the alerting round"
    assert max(m["step"] for m in _records(run_dir, "metrics")) == alert["step"], "no step trained after it"
    assert end["best_step"] < alert["step"]
    assert (run_dir / "adapter-best" / "adapter_model.safetensors").is_file()
    assert json.loads((run_dir / "adapter-best" / "best.json").read_text())["step"] == end["best_step"]
    firsts = _records(run_dir, "appearance")
    assert firsts and min(a["step"] for a in firsts) <= alert["step"]
    assert all(set(a["kinds"]) <= {"hashtag", "url", "mention"} and a["examples"] for a in firsts)
    frames = load_run(run_dir)
    assert frames.best_step == end["best_step"] and len(frames.alerts) == 1 and len(frames.appearances) == len(firsts)


@pytest.mark.slow
def test_cleaned_tweets_raise_no_alert_and_the_composite_is_a_trainer_metric(tmp_path: Path, capsys) -> None:
    argv = ["run", str(ROOT / "experiments" / "kaggle_debate.py"), "--runs-dir", str(tmp_path / "runs"),
            "--max-steps", "80", "--eval-every", "40"]  # fmt: skip
    assert main(argv) == 0
    run_dir = _one_run(tmp_path / "runs")
    assert _records(run_dir, "alert") == []
    composites = {
        m["step"]: m["eval_rubric/composite"] for m in _records(run_dir, "metrics") if "eval_rubric/composite" in m
    }
    assert sorted(composites) == [0, 40, 80]
    for record in _records(run_dir, "eval"):
        assert composites[record["step"]] == pytest.approx(composite(record["means"]))
    (end,) = _records(run_dir, "end")
    assert end["best_step"] == max(composites, key=lambda s: (composites[s], -s))
    assert end["best_adapter"] == str(run_dir / "adapter-best")
    err = capsys.readouterr().err
    assert "harness: eval step 40: relevance" in err and "composite" in err
    assert "{'loss'" not in err and "\r" not in err, "no raw dicts and no progress bar when not a terminal"
    (row,) = [summary(r) for r in find_runs(tmp_path / "runs")]
    assert (row["best_step"], row["alerts"]) == (end["best_step"], 0)


@pytest.mark.slow
def test_metric_for_best_model_and_early_stopping_work_on_the_composite(write_experiment, tmp_path: Path) -> None:
    from conftest import SMALL_EXPERIMENT

    source = SMALL_EXPERIMENT.format(data=str(ROOT / "data" / "kaggle_tweets.jsonl"), max_steps=12, eval_every=2)
    source = source.replace("logging_steps=1)", "logging_steps=1, metric_for_best_model='eval_rubric/composite', "
                            "load_best_model_at_end=True, early_stopping_patience=1)")  # fmt: skip
    assert main(["run", str(write_experiment(source)), "--runs-dir", str(tmp_path / "runs")]) == 0
    run_dir = _one_run(tmp_path / "runs")
    rounds = {
        m["step"]: m["eval_rubric/composite"] for m in _records(run_dir, "metrics") if "eval_rubric/composite" in m
    }
    # transformers' rule: the step-0 round (eval_on_start) is no checkpoint; patience 1 stops at the first round
    # after step 0 that is not better than the best before it (or at max_steps).
    best, expected_stop = None, 12
    for step in sorted(s for s in rounds if s > 0):
        if best is not None and not rounds[step] > best:
            expected_stop = step
            break
        best = rounds[step] if best is None else max(best, rounds[step])
    assert max(rounds) == expected_stop, rounds
    state = json.loads((run_dir / "checkpoints" / f"checkpoint-{expected_stop}" / "trainer_state.json").read_text())
    assert state["best_metric"] == pytest.approx(best)
    best_checkpoint = Path(state["best_model_checkpoint"])
    assert (run_dir / "adapter" / "adapter_model.safetensors").read_bytes() == (
        best_checkpoint / "adapter_model.safetensors"
    ).read_bytes(), "load_best_model_at_end: the final adapter is the best checkpoint's"
