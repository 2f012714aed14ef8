"""The cleaning gate: paired data checks on real rule edits, the per-seed test, the probes, usage errors, and (slow)
the committed baseline deciding unchanged rules without training and a fine-tune repeating bit for bit."""

from __future__ import annotations

import dataclasses
import importlib.util
import json
import math
from pathlib import Path

import pytest

from harness.cli import main
from harness.data.cleaning import apply_rules, default_tweet_rules
from harness.gate import gate, paired, probes
from harness.gate.finetune import fine_tune, ordered_blocks
from harness.gate.stats import compare_rubric, decided, judge, judge_seeds, markdown, paired_bootstrap, probe_rows
from harness.spec.experiment import GateSpec, SpecError
from harness.spec.load import load_experiment

ROOT = Path(__file__).resolve().parents[2]
EXPERIMENT = ROOT / "experiments/kaggle_debate.py"
CATALOGUE = ROOT / "benchmarks/gate_catalogue"


def _catalogue(stem: str) -> tuple[str, tuple]:
    spec = importlib.util.spec_from_file_location(f"catalogue_{stem}", CATALOGUE / f"{stem}.py")
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module.EXPECTED, tuple(module.rules)


@pytest.fixture(scope="module")
def corpus() -> tuple[list[str], list[str | None]]:
    experiment = load_experiment(EXPERIMENT)
    raw = gate.raw_texts(experiment, EXPERIMENT)
    return raw, paired.clean_each(raw, experiment.cleaning)


def test_per_document_cleaning_keeps_what_the_engine_keeps(corpus) -> None:
    raw, cleaned = corpus
    assert [t for t in cleaned if t is not None] == apply_rules(raw, default_tweet_rules())[0]
    assert len(cleaned) == len(raw) == 880


@pytest.mark.parametrize(
    ("base", "cand", "check", "expected"),
    [
        # an "anonymise brands" edit: the tweet keeps its shape but no longer says what it is about
        (["Kaggleはじめました。まずはTitanicから"], ["はじめました。まずはから"], "topic_lost", 1.0),
        (["公開Notebookをforkしただけでメダルを取るのはずるい"], ["公開Notebookをforkしただけでメダルを取るのはずるい"],
         "topic_lost", 0.0),
        # NFKD: voiced kana split into base + combining mark
        (["締切直前のチームマージはずるいと思う"], ["締切直前のチームマーシ\u3099はす\u3099るいと思う"],
         "fluency_lost", 1.0),
        (["CVを信じて最終サブを選んだ", "shake upで金圏から落ちた"], ["CVを信じて最終サブを選んだ", None],
         "document_loss", 0.5),
        (["CVを信じて最終サブを選んだ"], ["CVを信じて"], "chars_removed", 1 - 6 / 14),
        (["LB上げた"], ["LB上げた #Kaggle"], "artefact_rate", 1.0),
        (["銀メダル嬉しい", "LB上げた"], ["銀メダル🥈嬉しい", "LB上げた"], "emoji_rate", 0.5),
    ],
)  # fmt: skip
def test_a_paired_check_measures_what_the_candidate_did_to_each_document(base, cand, check, expected) -> None:
    assert paired.measure(base, cand)["checks"][check] == pytest.approx(expected)


@pytest.mark.parametrize("stem", sorted(p.stem for p in CATALOGUE.glob("*.py")))
def test_the_data_checks_decide_the_catalogue_without_a_false_fail(stem: str, corpus) -> None:
    """Every harmful edit of the catalogue fails on data alone and no harmless edit does (README: "Cleaning and the
    gate" has the values; the probes are the second line, for what the data checks cannot see)."""
    raw, cleaned = corpus
    expected, rules = _catalogue(stem)
    tolerances = GateSpec(tolerances={}).data_tolerances
    rows = paired.rows(paired.measure(cleaned, paired.clean_each(raw, rules)), tolerances)
    failed = [r["check"] for r in rows if r["verdict"] == "fail"]
    assert bool(failed) == (expected == "fail"), failed


@pytest.mark.parametrize(
    ("harms", "final", "verdict"),
    [
        ([0.30, 0.31], False, "fail"),  # the whole interval above the tolerance: no third seed needed
        ([0.001, 0.002], False, "pass"),  # the whole interval below it
        ([0.0, 0.3], False, "open"),  # two seeds that disagree: train another
        ([0.0, 0.3, 0.25, 0.28], True, "pass"),  # the last seed: the mean is over, but the interval holds zero
        ([0.2, 0.25, 0.22, 0.18], True, "fail"),
        ([-0.3, -0.31], False, "pass"),  # better is never a fail
    ],
)
def test_the_per_seed_test_stops_when_clear_and_needs_the_interval_off_zero(harms, final, verdict) -> None:
    assert judge_seeds(harms, 0.1, 0.95, final) == verdict


def test_probe_rows_orient_harm_by_direction_and_report_untoleranced_probes() -> None:
    base = [{"bits_per_char": 5.0, "topic_margin": 0.1}] * 2
    cand = [{"bits_per_char": 5.5, "topic_margin": 0.2}, {"bits_per_char": 5.52, "topic_margin": 0.2}]
    directions = {"bits_per_char": False, "topic_margin": True}
    rows = {r["probe"]: r for r in probe_rows(base, cand, {"bits_per_char": 0.1}, directions, 0.95, final=False)}
    assert rows["bits_per_char"]["harms"] == pytest.approx([0.5, 0.52]) and rows["bits_per_char"]["verdict"] == "fail"
    assert rows["topic_margin"]["harm"] == pytest.approx(-0.1) and rows["topic_margin"]["verdict"] == "info"
    assert decided(rows.values())


def test_bootstrap_rows_of_the_generation_rubrics_still_judge_as_before() -> None:
    lo, hi = paired_bootstrap([0.1, 0.3, -0.05, 0.2, 0.0, 0.25, 0.15, 0.1], 2000, seed=0, confidence=0.95)
    assert 0 < lo < hi
    assert judge(0.2, (0.1, 0.3), 0.05, higher_is_better=False) == "fail"
    assert judge(0.2, (-0.01, 0.4), 0.05, higher_is_better=False) == "pass"
    assert compare_rubric("fluency", [(0.8, 0.8)] * 8, 0.05, True, 2000, 0, 0.95)["verdict"] == "pass"


def test_documents_both_sides_keep_stay_in_the_same_relative_order() -> None:
    class Chars:
        eos_token_id = 0

        def __call__(self, text: str, add_special_tokens: bool = False) -> dict[str, list[int]]:
            return {"input_ids": [ord(c) for c in text]}

    docs = [(f"k{i}", f"文書{i}") for i in range(30)]
    dropped = [d for d in docs if d[0] not in ("k3", "k17")]
    order = [b for block in ordered_blocks(docs, Chars(), 4, seed=0, blocks_needed=20) for b in block]
    fewer = [b for block in ordered_blocks(dropped, Chars(), 4, seed=0, blocks_needed=20) for b in block]
    text, text_fewer = "".join(map(chr, order)), "".join(map(chr, fewer))
    assert text.replace("文書3\0", "").replace("文書17\0", "")[:40] == text_fewer[:40]
    other_seed = ordered_blocks(docs, Chars(), 4, seed=1, blocks_needed=20)
    assert other_seed != ordered_blocks(docs, Chars(), 4, seed=0, blocks_needed=20)


def test_the_probe_sets_are_versioned_and_not_in_the_training_data() -> None:
    probe_set = probes.probe_set()
    texts = [t for d in probe_set.debates for t in d["turns"]] + [p["clean"] for p in probe_set.pairs]
    tweets = [json.loads(line)["text"] for line in (ROOT / "data/kaggle_tweets.jsonl").read_text().splitlines()]
    grams = {t[i : i + 16] for t in tweets for i in range(len(t) - 15)}
    assert not [t for t in texts if any(t[i : i + 16] in grams for i in range(len(t) - 15))]
    assert len(probe_set.version) == 16 and len(texts) == 84 and len(probe_set.terms) > 20
    assert all(p["artefacted"] != p["clean"] and p["clean"] in p["artefacted"] for p in probe_set.pairs)


@pytest.mark.parametrize(
    ("write", "message"),
    [
        ("[1, 2]", "not a gate baseline file of version 2"),
        ('{"version": 1, "texts": []}', "not a gate baseline file of version 2 (found 1)"),
        ('{"version": 2, "rules": []}', "(cleaned, train_key, raw_sha, results of the wrong shape)"),
        (
            '{"version": 2, "rules": [], "cleaned": [], "train_key": "k", "raw_sha": "s", "results": {"0": {"probes": '
            '{"bits_per_char": "5.1"}}}}',
            "(cleaned, results of the wrong shape)",
        ),
        ("{not json", "not a gate baseline file"),
    ],
)
def test_a_baseline_file_of_the_wrong_shape_is_one_line_exit_2(write: str, message: str, tmp_path: Path,
                                                               capsys) -> None:  # fmt: skip
    bad = tmp_path / "bad.json"
    bad.write_text(write)
    assert main(["gate", str(EXPERIMENT), "--baseline", str(bad), "--out", str(tmp_path)]) == 2
    err = capsys.readouterr().err.strip()
    assert message in err and "--update-baseline" in err and len(err.splitlines()) == 1


@pytest.mark.parametrize(
    ("source", "message"),
    [
        ("rules = 3\n", "list of HojiChar filters"),
        ("raise RuntimeError('typo in my rules')\n", "RuntimeError: typo in my rules"),
        ("from hojichar import Filter\nclass Boom(Filter):\n    def apply(self, d):\n        raise KeyError('x')\n"
         "rules = [Boom()]\n", "cleaning rule Boom: KeyError"),
    ],
)  # fmt: skip
def test_a_rules_module_that_is_wrong_or_raises_is_one_line_exit_2(source: str, message: str, tmp_path: Path,
                                                                   capsys) -> None:  # fmt: skip
    rules = tmp_path / "rules.py"
    rules.write_text(source)
    assert main(["gate", str(EXPERIMENT), "--rules", f"{rules}:rules", "--out", str(tmp_path)]) == 2
    err = capsys.readouterr().err.strip()
    assert message in err and len(err.splitlines()) == 1


@pytest.mark.parametrize(
    ("args", "message"),
    [
        (["--rules", "rules.py"], "MODULE.py:NAME"),
        (["--rules", "missing.py:rules"], "no such file"),
        (["--against", "no-such-revision-xyz"], "--against no-such-revision-xyz"),
        (["--against", "HEAD", "--update-baseline"], "--against"),
    ],
)
def test_bad_arguments_exit_2_with_one_line(args: list[str], message: str, tmp_path: Path, capsys) -> None:
    assert main(["gate", str(EXPERIMENT), *args, "--out", str(tmp_path)]) == 2
    err = capsys.readouterr().err.strip()
    assert message in err and len(err.splitlines()) == 1


def test_unknown_gate_measures_and_bad_seed_counts_are_spec_errors(tmp_path: Path, capsys) -> None:
    experiment = load_experiment(EXPERIMENT)
    with pytest.raises(SpecError, match="not rubrics of this experiment"):
        dataclasses.replace(experiment, gate=GateSpec(tolerances={"politeness": 0.1}))
    with pytest.raises(SpecError, match="min_seeds <= seeds"):
        GateSpec(tolerances={}, seeds=2, min_seeds=3)
    file = tmp_path / "experiments" / "typo.py"
    file.parent.mkdir()
    file.write_text(f"import dataclasses, runpy\nfrom harness.experiment import GateSpec\nexperiment = dataclasses"
                    f".replace(runpy.run_path({str(EXPERIMENT)!r})['experiment'], gate=GateSpec(tolerances={{}}, "
                    "probe_tolerances={'bits_per_chr': 0.1}))\n")  # fmt: skip
    assert main(["gate", str(file)]) == 2
    assert "GateSpec.probe_tolerances: ['bits_per_chr'] are not gate measures" in capsys.readouterr().err


def test_the_training_key_hashes_whole_packages_and_the_probe_set() -> None:
    files = gate._code_files()
    for package in ("spec", "data", "training", "evaluation", "gate"):
        on_disk = {str(p.relative_to(ROOT / "harness")) for p in (ROOT / "harness" / package).rglob("*.py")}
        assert on_disk and on_disk <= set(files), package
    assert files["probes"] == probes.probe_set().version


def test_data_loss_fails_without_training_and_says_so(tmp_path: Path) -> None:
    out = tmp_path / "gate"
    argv = ["gate", str(EXPERIMENT), "--rules", f"{CATALOGUE / 'spam_filter.py'}:rules", "--out", str(out)]
    assert main(argv) == 1
    result = json.loads((out / "kaggle_debate.gate.json").read_text())
    checks = {r["check"]: r for r in result["data"]}
    assert checks["document_loss"]["verdict"] == "fail" and checks["document_loss"]["value"] > 0.5
    assert result["seeds"] == 0 and result["probes"] == [] and "not run" in result["model_level"]
    assert "| document_loss |" in (out / "kaggle_debate.gate.md").read_text()


def test_compare_renders_the_deciding_data_checks_and_probes_of_a_gate_result(tmp_path: Path) -> None:
    from harness.compare.report import _gate_section

    out = tmp_path / "gate"
    main(["gate", str(EXPERIMENT), "--rules", f"{CATALOGUE / 'spam_filter.py'}:rules", "--out", str(out)])
    html = _gate_section(json.loads((out / "kaggle_debate.gate.json").read_text()))
    assert "<td>data: document_loss</td>" in html and "verdict fail'>fail</span>" in html


def test_the_committed_baseline_decides_unchanged_rules_without_training(tmp_path: Path) -> None:
    """CI's usual case: the shipped rules against their blessed baseline read two stored seeds, train nothing."""
    out = tmp_path / "gate"
    assert main(["gate", str(EXPERIMENT), "--out", str(out)]) == 0
    result = json.loads((out / "kaggle_debate.gate.json").read_text())
    assert result["verdict"] == "pass" and result["model_level"].startswith("identical training data")
    assert all(h == 0 for r in result["probes"] for h in r["harms"]) and result["seeds"] == 2
    assert result["train_key"] == gate.train_key(load_experiment(EXPERIMENT)), "re-bless: --update-baseline"
    assert "| bits_per_char |" in markdown(result)


@pytest.mark.slow
def test_a_fine_tune_and_its_probes_repeat_bit_for_bit() -> None:
    experiment = gate.gate_experiment(load_experiment(EXPERIMENT))
    training = dataclasses.replace(experiment.training, max_steps=3, warmup_steps=1)
    experiment = dataclasses.replace(experiment, training=training, eval_every=3)
    documents = gate.side("shipped", gate.raw_texts(experiment, EXPERIMENT), experiment.cleaning).documents()
    first, second = (fine_tune(experiment, documents, seed=0, debates=False) for _ in range(2))
    assert first["probes"] == second["probes"] and all(math.isfinite(v) for v in first["probes"].values())
    other = fine_tune(experiment, documents[:-40], seed=0, debates=False)
    assert other["probes"] != first["probes"]


def test_a_git_revision_supplies_its_own_raw_and_cleaned_corpus() -> None:
    side = gate.side_at_revision("HEAD", EXPERIMENT)
    assert side.label == "git HEAD" and len(side.raw) == len(side.cleaned) == 880
    assert 0 < len(side.documents()) <= 880
