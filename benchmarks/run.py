"""The benchmark suite: `python benchmarks/run.py` prints a table and writes benchmarks/results.json.

Each benchmark measures its ratio side by side in one process (see each module's docstring). The scoring benchmark
pins its process to one core, so it runs last and the affinity is restored after it.
"""

from __future__ import annotations

import json
import os
import sys
import time
from collections.abc import Callable, Sequence
from pathlib import Path
from typing import Any

HERE = Path(__file__).resolve().parent
sys.path.insert(0, str(HERE))

import bench_eval  # noqa: E402
import bench_run  # noqa: E402
import bench_scoring  # noqa: E402
import bench_train  # noqa: E402

FIELDS = ("name", "value", "unit", "target", "met", "raw")
SUITE: tuple[Callable[[], Any], ...] = (bench_eval.measure, bench_run.measure, bench_train.measure,
                                        bench_scoring.measure)  # fmt: skip


def collect(benchmarks: Sequence[Callable[[], Any]]) -> list[dict[str, Any]]:
    """Every benchmark's results in order (a benchmark returns one result or a list), each with its wall seconds."""
    results = []
    for benchmark in benchmarks:
        affinity = os.sched_getaffinity(0) if hasattr(os, "sched_getaffinity") else None
        start = time.perf_counter()
        try:
            out = benchmark()
        finally:
            if affinity is not None:
                os.sched_setaffinity(0, affinity)
        seconds = time.perf_counter() - start
        for result in out if isinstance(out, list) else [out]:
            missing = [f for f in FIELDS if f not in result]
            if missing:
                raise ValueError(f"{benchmark.__module__}: result without {missing}")
            results.append({**result, "raw": {**result["raw"], "benchmark_s": round(seconds, 1)}})
    return results


def table(results: Sequence[dict[str, Any]]) -> str:
    rows = [("benchmark", "value", "target", "met")]
    for r in results:
        value = f"{r['value']:,.3f} {r['unit']}"
        target = "-" if r["target"] is None else f"{'<=' if r['name'] == 'eval_overhead' else '>='} {r['target']:,}"
        rows.append((r["name"], value, target, "-" if r["met"] is None else ("yes" if r["met"] else "NO")))
    widths = [max(len(row[i]) for row in rows) for i in range(4)]
    return "\n".join("  ".join(cell.ljust(w) for cell, w in zip(row, widths, strict=True)) for row in rows)


def main() -> None:
    start = time.perf_counter()
    results = collect(SUITE)
    (HERE / "results.json").write_text(json.dumps(results, indent=2, ensure_ascii=False) + "\n")
    print(table(results))
    load = os.getloadavg() if hasattr(os, "getloadavg") else ()
    print(f"\n{time.perf_counter() - start:.0f} s; load average now {' '.join(f'{x:.2f}' for x in load)}; "
          f"raw timings in {HERE / 'results.json'}")  # fmt: skip


if __name__ == "__main__":
    main()
