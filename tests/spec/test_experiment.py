"""Experiment settings: wrong fields are refused with one line naming the field; shipped files load."""

from __future__ import annotations

import dataclasses
from pathlib import Path

import pytest

from harness import DataSpec, GenerationSpec, LoraSpec, ModelSpec, Scenario, TrainingSpec
from harness.errors import UserError
from harness.spec.experiment import SpecError
from harness.spec.load import load_experiment

ROOT = Path(__file__).resolve().parents[2]

BAD_FIELDS = [
    (lambda: ModelSpec("abeja/gpt-neox-japanese-2.7b", dtype="bf16"), "ModelSpec.dtype"),
    (lambda: ModelSpec(""), "ModelSpec.name_or_path"),
    (lambda: LoraSpec(r=0), "LoraSpec.r"),
    (lambda: LoraSpec(r="8"), "LoraSpec.r must be int"),
    (lambda: LoraSpec(dropout=1.0), "LoraSpec.dropout"),
    (lambda: LoraSpec(target_modules="query_key_value"), "LoraSpec.target_modules must be tuple"),
    (lambda: DataSpec("data/tweets.csv"), "DataSpec.path"),
    (lambda: Scenario("月刊", "月刊Kaggleは役に立たない"), "Scenario.name"),
    (lambda: Scenario("solo", "月刊Kaggleは役に立たない", ("Kaggleアンチ",)), "speakers"),
    (lambda: Scenario("same", "月刊Kaggleは役に立たない", ("ファン", "ファン")), "speakers"),
    (lambda: Scenario("zero", "月刊Kaggleは役に立たない", turns=0), "turns"),
    (lambda: GenerationSpec(max_new_tokens=0), "GenerationSpec.max_new_tokens"),
    (lambda: GenerationSpec(top_p=1.5), "GenerationSpec.top_p"),
    (lambda: TrainingSpec(max_steps=0), "TrainingSpec.max_steps"),
    (lambda: TrainingSpec(max_steps=10, learning_rate=-1.0), "TrainingSpec.learning_rate"),
    (lambda: TrainingSpec(max_steps=10, batch_size=2.5), "TrainingSpec.batch_size must be int"),
]


@pytest.mark.parametrize(("build", "named"), BAD_FIELDS)
def test_a_wrong_field_is_refused_with_its_name(build, named: str) -> None:
    with pytest.raises(SpecError, match=named.replace(".", r"\.")):
        build()


def _experiment_source(write_experiment, **replace: str) -> str:
    source = write_experiment().read_text(encoding="utf-8")
    for old, new in replace.items():
        assert old in source
        source = source.replace(old, new)
    return source


@pytest.mark.parametrize(
    ("old", "new", "message"),
    [
        ("eval_every=2", "eval_every=0", r"small\.py:\d+: Experiment\.eval_every must be in 1\.\.training\.max_steps"),
        ("eval_every=2", "eval_every=50", r"Experiment\.eval_every must be in 1\.\.training\.max_steps \(4\)"),
        ('"fluency")', '"fluncy")', r"unknown rubric 'fluncy'; known: contamination, fluency, relevance"),
        ("turns=4)", "turns=0)", r"small\.py:\d+: Scenario 'monthly-kaggle': turns must be at least 1"),
        ("max_new_tokens=16", "max_new_tokens=16, beams=2", r"TypeError: .*unexpected keyword argument 'beams'"),
    ],
)
def test_a_bad_experiment_file_names_file_line_and_field(write_experiment, old, new, message) -> None:
    path = write_experiment(_experiment_source(write_experiment, **{old: new}))
    with pytest.raises(UserError, match=message):
        load_experiment(path)


@pytest.mark.parametrize(
    ("source", "message"),
    [
        ("experiment = Experiment(\n", r"bad\.py:1: syntax error"),
        ("x = 1\n", r"defines no Experiment"),
        (None, r"defines 2 Experiments \(experiment, other\)"),
    ],
)
def test_a_file_must_define_exactly_one_experiment(write_experiment, source, message) -> None:
    if source is None:
        source = write_experiment().read_text(encoding="utf-8") + "\nother = experiment\n"
        source = source.replace("other = experiment", "import dataclasses\nother = dataclasses.replace(experiment)")
    path = write_experiment(source, name="bad")
    with pytest.raises(UserError, match=message):
        load_experiment(path)


def test_missing_experiment_file_is_a_user_error(tmp_path: Path) -> None:
    with pytest.raises(UserError, match=r"no such experiment file"):
        load_experiment(tmp_path / "nope.py")


@pytest.mark.parametrize("path", sorted((ROOT / "experiments").glob("*.py")), ids=lambda p: p.name)
def test_every_shipped_experiment_loads_under_every_profile(path: Path) -> None:
    experiment = load_experiment(path)
    assert experiment.name == path.stem
    assert experiment.eval_steps()[0] == 0 and experiment.eval_steps()[-1] == experiment.training.max_steps
    if experiment.cpu is not None:
        cpu = experiment.for_profile("cpu")
        assert cpu.model == experiment.cpu.model and cpu.training == experiment.cpu.training
        assert cpu.scenarios == experiment.scenarios


def test_kaggle_debate_declares_the_reference_model_and_six_real_debates() -> None:
    experiment = load_experiment(ROOT / "experiments" / "kaggle_debate.py")
    assert experiment.model.name_or_path == "abeja/gpt-neox-japanese-2.7b"
    assert experiment.model.dtype == "bfloat16"
    assert len(experiment.scenarios) >= 6
    for scenario in experiment.scenarios:
        assert scenario.speakers == ("Kaggleアンチ", "Kaggleファン")
        assert scenario.turns >= 4
    topics = " ".join(s.topic for s in experiment.scenarios)
    for argument in ("月刊Kaggleは役に立たない", "メダル至上主義", "公開Notebook", "shake up", "実務"):
        assert argument in topics
    assert {r.name for r in experiment.rubrics} == {"relevance", "contamination", "fluency"}


def test_eval_steps_include_zero_every_n_and_the_end() -> None:
    experiment = load_experiment(ROOT / "experiments" / "kaggle_debate.py")
    short = dataclasses.replace(experiment, training=TrainingSpec(max_steps=10), eval_every=4)
    assert short.eval_steps() == (0, 4, 8, 10)
