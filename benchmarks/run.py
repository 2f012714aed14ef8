"""The benchmark suite: `python benchmarks/run.py [NAME ...] [--quick]` prints a table and writes the raw timings.

Each benchmark measures its ratio side by side in one process (see each module's docstring). The scoring benchmark
pins its process to one core, so it runs last and the affinity is restored after it.
"""

from __future__ import annotations

import argparse
import functools
import json
import os
import sys
import time
import warnings
from collections.abc import Callable, Sequence
from pathlib import Path
from typing import Any

HERE = Path(__file__).resolve().parent
sys.path.insert(0, str(HERE))

# peft reads a deprecated transformers alias when it wraps a model; nothing here can act on it (as in training/run.py).
warnings.filterwarnings("ignore", "`is_gradient_checkpointing` is deprecated", FutureWarning)

import bench_eval  # noqa: E402
import bench_run  # noqa: E402
import bench_scoring  # noqa: E402
import bench_train  # noqa: E402

FIELDS = ("name", "value", "unit", "target", "met", "raw")
# name -> (what it measures, the full measurement, a quick one: same code on a smaller configuration)
BENCHMARKS: dict[str, tuple[str, Callable[[], Any], Callable[[], Any]]] = {
    "eval": ("eval_round_speedup: batched eval round vs the sequential LangChain route", bench_eval.measure,
             functools.partial(bench_eval.measure, repeats=1)),
    "run": ("eval_overhead, peak_rss_mb, eval_extra_rss_mb: the default run (240 steps)", bench_run.measure,
            functools.partial(bench_run.measure, max_steps=40, eval_every=20)),
    "train": ("train_throughput_ratio: harness vs plain Trainer, 40-step runs", bench_train.measure,
              functools.partial(bench_train.measure, pairs=1)),
    "scoring": ("scoring_throughput: rubrics over 10,000 conversations on one core", bench_scoring.measure,
                functools.partial(bench_scoring.measure, n=2_000)),
}  # fmt: skip


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


def arguments(argv: Sequence[str] | None = None) -> argparse.Namespace:
    listing = "\n".join(f"  {name:<8} {what}" for name, (what, _, _) in BENCHMARKS.items())
    parser = argparse.ArgumentParser(
        prog="python benchmarks/run.py",
        description="Measure the harness' speed and memory targets, each ratio side by side in one process. "
        "The whole suite takes about 5 minutes on an idle 2-core machine.",
        epilog=f"benchmarks:\n{listing}",
        formatter_class=argparse.RawDescriptionHelpFormatter,
    )
    parser.add_argument("names", nargs="*", metavar="NAME", help="benchmarks to run (default: all), in suite order")
    parser.add_argument(
        "--quick",
        action="store_true",
        help="smaller configurations (one repetition, a 40-step run, one training pair, 2,000 conversations): a "
        "smoke check, too noisy for the README's table",
    )
    parser.add_argument("--out", type=Path, default=HERE / "results.json", help="where the raw timings go "
                        "(default: benchmarks/results.json)")  # fmt: skip
    args = parser.parse_args(argv)
    if unknown := [n for n in args.names if n not in BENCHMARKS]:
        parser.error(f"unknown benchmark {', '.join(unknown)}; choose from {', '.join(BENCHMARKS)}")
    return args


def main(argv: Sequence[str] | None = None) -> None:
    args = arguments(argv)
    chosen = [name for name in BENCHMARKS if name in args.names or not args.names]
    start = time.perf_counter()
    results = collect([BENCHMARKS[name][2 if args.quick else 1] for name in chosen])
    if args.quick:
        results = [{**r, "raw": {**r["raw"], "quick": True}} for r in results]
    args.out.write_text(json.dumps(results, indent=2, ensure_ascii=False) + "\n")
    print(table(results))
    load = os.getloadavg() if hasattr(os, "getloadavg") else ()
    print(f"\n{time.perf_counter() - start:.0f} s{' (--quick: smaller configurations)' if args.quick else ''}; "
          f"load average now {' '.join(f'{x:.2f}' for x in load)}; raw timings in {args.out}")  # fmt: skip


if __name__ == "__main__":
    main()
