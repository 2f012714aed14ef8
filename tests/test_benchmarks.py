"""The benchmark suite's results have the contract's shape; run on tiny configurations, never timed."""

from __future__ import annotations

import json
import sys
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parent.parent

sys.path.insert(0, str(ROOT / "benchmarks"))

import bench_eval  # noqa: E402
import bench_run  # noqa: E402
import bench_train  # noqa: E402
import run as suite  # noqa: E402

NAMES = ["eval_round_speedup", "eval_overhead", "peak_rss_mb", "eval_extra_rss_mb", "train_throughput_ratio"]


@pytest.mark.slow
def test_the_suite_reports_every_benchmark_with_its_raw_timings(write_experiment) -> None:
    small = write_experiment(max_steps=2, eval_every=1)
    results = suite.collect(
        [
            lambda: bench_eval.measure(scenarios=2, turns=2, max_new_tokens=4, repeats=1),
            lambda: bench_run.measure(small),
            lambda: bench_train.measure(small, steps=2, pairs=1),
        ]
    )
    assert [r["name"] for r in results] == NAMES
    assert json.loads(json.dumps(results)) == results, "results.json must hold plain JSON"
    for result in results:
        assert set(result) == {"name", "value", "unit", "target", "met", "raw"}
        assert result["value"] > 0 and result["raw"]["benchmark_s"] > 0
        assert result["met"] is None if result["target"] is None else isinstance(result["met"], bool)
    by_name = {r["name"]: r for r in results}
    assert by_name["eval_round_speedup"]["raw"]["identical_under_greedy"] is True
    assert len(by_name["eval_round_speedup"]["raw"]["sequential_s"]) == 1
    overhead = by_name["eval_overhead"]["raw"]
    assert overhead["status"] == "completed" and overhead["eval_rounds"] == 3  # steps 0, 1 and 2
    assert 0 < by_name["eval_overhead"]["value"] < 1
    assert by_name["peak_rss_mb"]["value"] > by_name["eval_extra_rss_mb"]["value"]
    assert len(by_name["train_throughput_ratio"]["raw"]["ratios"]) == 1
    assert "eval_round_speedup" in suite.table(results)


def test_help_describes_the_suite_and_runs_nothing() -> None:
    import subprocess

    done = subprocess.run([sys.executable, str(ROOT / "benchmarks" / "run.py"), "--help"], capture_output=True,
                          text=True, timeout=60)  # fmt: skip
    assert done.returncode == 0 and "--quick" in done.stdout
    assert all(name in done.stdout for name in suite.BENCHMARKS)
    bad = subprocess.run([sys.executable, str(ROOT / "benchmarks" / "run.py"), "evals"], capture_output=True,
                         text=True, timeout=60)  # fmt: skip
    assert bad.returncode == 2 and "unknown benchmark evals" in bad.stderr


@pytest.mark.slow
def test_one_benchmark_can_run_alone_in_quick_mode(tmp_path: Path, capsys) -> None:
    out = tmp_path / "results.json"
    suite.main(["scoring", "--quick", "--out", str(out)])
    (result,) = json.loads(out.read_text())
    assert result["name"] == "scoring_throughput" and result["raw"]["quick"] is True and result["value"] > 0
    assert "scoring_throughput" in capsys.readouterr().out
