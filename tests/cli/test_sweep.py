"""Sweeps: KEY=VALUE settings on a run, a grid of runs in one group, ranked by quality in `compare`."""

from __future__ import annotations

import json
import os
import subprocess
import sys
from pathlib import Path

import pytest

from harness.cli.sweep import grid
from harness.errors import UserError
from harness.spec.load import load_experiment
from harness.spec.profiles import parse_settings, with_settings

ROOT = Path(__file__).resolve().parents[2]


def test_settings_reach_the_fields_they_name_and_are_validated_like_the_file():
    experiment = load_experiment(ROOT / "experiments" / "kaggle_debate.py").for_profile("cpu")
    changed = with_settings(experiment, parse_settings(["lora.r=16", "training.learning_rate=1e-4", "eval_every=20"]))
    assert (changed.lora.r, changed.training.learning_rate, changed.eval_every) == (16, 1e-4, 20)
    assert changed.lora.alpha == experiment.lora.alpha and changed.scenarios == experiment.scenarios
    with pytest.raises(UserError, match=r"LoraSpec\.r must be a positive integer, got -4"):
        with_settings(experiment, {"lora.r": "-4"})
    with pytest.raises(UserError, match=r"setting lora\.rank: not a field that can be set"):
        with_settings(experiment, {"lora.rank": "8"})
    with pytest.raises(UserError, match=r"setting cleaning=raw: not in Experiment.cleaning_variants \(none declared\)"):
        with_settings(experiment, {"cleaning": "raw"})
    with pytest.raises(UserError, match="settings must look like KEY=VALUE"):
        parse_settings(["lora.r"])


def test_a_named_cleaning_variant_replaces_the_rules(write_experiment):
    source = Path(write_experiment()).read_text(encoding="utf-8")
    variant = source.replace("    eval_every=", "    cleaning_variants={'none': []},\n    eval_every=")
    experiment = load_experiment(write_experiment(variant, "variant"))
    assert experiment.cleaning and with_settings(experiment, {"cleaning": "none"}).cleaning == ()


def test_the_grid_is_every_combination_in_the_order_given():
    axes = [("lora.r", ["8", "16"]), ("training.learning_rate", ["1e-4", "3e-4"])]
    assert grid(axes) == [
        {"lora.r": "8", "training.learning_rate": "1e-4"},
        {"lora.r": "8", "training.learning_rate": "3e-4"},
        {"lora.r": "16", "training.learning_rate": "1e-4"},
        {"lora.r": "16", "training.learning_rate": "3e-4"},
    ]
    with pytest.raises(UserError, match=r"lora\.r given twice"):
        grid([("lora.r", ["8"]), ("lora.r", ["16"])])


def test_online_the_grid_is_a_wandb_sweep_whose_agent_runs_harness_run(monkeypatch, write_experiment, tmp_path):
    """The W&B server is out of reach here: the sweep and agent calls are caught, and the agent's command is run
    the way the W&B agent expands it (`${args_no_hyphens}` -> KEY=VALUE words) through the real CLI parser."""
    import wandb

    from harness.cli import main, parser

    sent = {}
    monkeypatch.setenv("WANDB_MODE", "online")
    monkeypatch.setattr(wandb, "sweep", lambda config, project, entity: sent.update(config=config) or "abc123")
    monkeypatch.setattr(wandb, "agent", lambda sweep_id, project, entity: sent.update(agent=sweep_id))
    experiment = write_experiment()
    argv = [
        "sweep",
        str(experiment),
        "--grid",
        "lora.r=4,8",
        "--seeds",
        "0,1",
        "--runs-dir",
        str(tmp_path),
        "--group",
        "g",
    ]
    assert main(argv) == 1  # no run was recorded: the agent did not really run
    config = sent["config"]
    assert (config["method"], config["name"], sent["agent"]) == ("grid", "g", "abc123")
    assert config["parameters"] == {"lora.r": {"values": ["4", "8"]}, "training.seed": {"values": ["0", "1"]}}
    command = [w for w in config["command"] if w not in ("${env}", "${interpreter}", "-m", "harness")]
    expanded = [
        w for word in command for w in (["lora.r=8", "training.seed=1"] if word == "${args_no_hyphens}" else [word])
    ]
    args, extra = parser().parse_known_args(expanded)
    assert (args.command, args.group, [*args.settings, *extra]) == ("run", "g", ["lora.r=8", "training.seed=1"])


@pytest.mark.slow
def test_an_offline_two_by_two_sweep_runs_four_runs_that_compare_ranks(write_experiment, tmp_path):
    experiment = write_experiment(max_steps=2, eval_every=2)
    env = {**os.environ, "WANDB_MODE": "offline"}
    command = [sys.executable, "-m", "harness", "sweep", str(experiment), "--grid", "lora.r=4,8", "--grid",
               "training.learning_rate=1e-3,3e-3", "--runs-dir", str(tmp_path / "runs"), "--group", "g"]  # fmt: skip
    done = subprocess.run(command, cwd=ROOT, env=env, capture_output=True, text=True)
    assert done.returncode == 0, done.stderr[-3000:]
    ranked = json.loads((tmp_path / "runs" / "g.sweep.json").read_text(encoding="utf-8"))["ranking"]
    assert sorted((r["settings"]["lora.r"], r["settings"]["training.learning_rate"]) for r in ranked) == [
        ("4", "1e-3"), ("4", "3e-3"), ("8", "1e-3"), ("8", "3e-3")
    ]  # fmt: skip
    composites = [r["composite"] for r in ranked]
    assert None not in composites and composites == sorted(composites, reverse=True)
    for run in (tmp_path / "runs").glob("small-*"):
        header = json.loads((run / "runlog.jsonl").read_text(encoding="utf-8").splitlines()[0])
        assert header["group"] == "g" and header["experiment"]["lora"]["r"] == int(
            header["overrides"]["settings"]["lora.r"]
        )
    report = tmp_path / "sweep.html"
    compare = [
        sys.executable,
        "-m",
        "harness",
        "compare",
        "--group",
        "g",
        "--runs-dir",
        str(tmp_path / "runs"),
        "-o",
        str(report),
    ]
    assert subprocess.run(compare, cwd=ROOT, env=env, capture_output=True).returncode == 0
    html = report.read_text(encoding="utf-8")
    assert "Ranked by quality" in html and all(r["run"] in html for r in ranked)
