"""End to end: a very short real run (embedded model, LoRA, Trainer, LCEL debates, rubrics, offline W&B)."""

from __future__ import annotations

import json
from pathlib import Path

import pytest
import wandb_file

from harness.cli import main
from harness.records.runlog import read_run

pytestmark = pytest.mark.slow


@pytest.fixture(scope="module")
def short_run(tmp_path_factory) -> Path:
    from conftest import ROOT, SMALL_EXPERIMENT

    root = tmp_path_factory.mktemp("e2e")
    (root / "experiments").mkdir()
    experiment = root / "experiments" / "short.py"
    source = SMALL_EXPERIMENT.format(data=str(ROOT / "data" / "kaggle_tweets.jsonl"), max_steps=5, eval_every=2)
    experiment.write_text(source, encoding="utf-8")
    assert main(["run", str(experiment), "--runs-dir", str(root / "runs")]) == 0
    (run_dir,) = (root / "runs").iterdir()
    return run_dir


def test_the_run_log_holds_every_scheduled_round_with_scored_conversations(short_run: Path) -> None:
    run = read_run(short_run)
    assert run.status == "completed"
    assert run.header["profile"] == "full" and run.header["experiment"]["name"] == "short"
    assert run.header["versions"]["transformers"] and run.header["experiment"]["rubrics"]["fluency"]
    assert run.eval_steps() == [0, 2, 4, 5]
    conversations = run.conversations()
    assert len(conversations) == 4 * 2
    for c in conversations:
        assert c["speakers"] == ["Kaggleアンチ", "Kaggleファン"] and len(c["turns"]) == 4
        assert set(c["scores"]) == {"relevance", "contamination", "fluency"}
        assert all(0.0 <= v <= 1.0 for v in c["scores"].values())
        assert c["transcript"].startswith("Kaggleアンチ：")
    assert {t["component"] for t in run.of("trace")} == {"turn", "llm"}
    assert len(run.of("trace")) == 4 * 2 * 4 * 2
    losses = [m for m in run.of("metrics") if "loss" in m]
    assert [m["step"] for m in losses] == [1, 2, 3, 4, 5]
    assert (short_run / "adapter" / "adapter_model.safetensors").exists()


def _table_rows(wandb_run: Path, key: str) -> tuple[list[str], list[list]]:
    """Columns and rows of every file the run stored for an incremental table, in the order they were logged."""
    files = sorted((wandb_run / "files" / "media" / "table").glob(f"{key}_*.table.json"),
                   key=lambda p: int(p.name.split("_")[-2]))  # fmt: skip
    tables = [json.loads(f.read_text(encoding="utf-8")) for f in files]
    return tables[0]["columns"], [row for t in tables for row in t["data"]]


def test_the_offline_wandb_run_holds_curves_and_each_conversation_and_trace_once(short_run: Path) -> None:
    (wandb_run,) = (short_run / "wandb").glob("offline-run-*")
    rows = wandb_file.history(next(wandb_run.glob("*.wandb")))
    steps_with = lambda key: [r["train/global_step"] for r in rows if key in r]  # noqa: E731
    assert steps_with("train/loss") == [1, 2, 3, 4, 5]
    for name in ("relevance", "contamination", "fluency"):
        assert steps_with(f"rubric/{name}") == [0, 2, 4, 5]
        assert steps_with(f"rubric/{name}/monthly-kaggle") == [0, 2, 4, 5]
    assert steps_with("conversations/_type") == steps_with("traces/_type") == [0, 2, 4, 5]
    assert all(r["conversations/log_mode"] == "INCREMENTAL" for r in rows if "conversations/_type" in r)

    columns, conversations = _table_rows(wandb_run, "conversations")
    assert columns[:4] == ["step", "scenario", "speakers", "transcript"]
    assert {"relevance", "contamination", "fluency", "contamination_evidence"} <= set(columns)
    run = read_run(short_run)
    assert len(conversations) == len(run.conversations()) == 8, "each conversation stored once"
    assert sorted((r[0], r[1]) for r in conversations) == sorted(
        (c["step"], c["scenario"]) for c in run.conversations()
    )

    columns, traces = _table_rows(wandb_run, "traces")
    assert columns == ["step", "scenario", "turn", "component", "input", "output", "start_s", "latency_s",
                       "tokens_in", "tokens_out", "error"]  # fmt: skip
    assert len(traces) == len(run.of("trace")) == 64, "each chain call stored once"
    llm = [dict(zip(columns, r, strict=True)) for r in traces if r[3] == "llm"]
    assert len(llm) == 4 * 2 * 4, "one row per LLM call: 4 rounds x 2 scenarios x 4 turns"
    assert all(r["latency_s"] > 0 and r["tokens_in"] > 0 and 1 <= r["tokens_out"] <= 16 and not r["error"] for r in llm)
    assert all(r["input"].endswith("：") for r in llm), "an LLM row's input is its prompt"
    config = wandb_file.config(next(wandb_run.glob("*.wandb")))
    assert config["profile"] == "full" and config["experiment"]["lora"]["r"] == 8
