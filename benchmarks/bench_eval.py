"""Eval-round speed-up: the harness' batched debates vs the sequential reference, side by side in one process.

Both sides run the same LCEL chain logic (prompt | live model | first line) over the cpu profile's embedded model
with its LoRA layers attached, with the same generation settings and the same thread setting as an eval round. The
reference is the stock route: LangChain's HuggingFacePipeline over `model.generate`, one scenario at a time, one
speaker at a time, re-reading the transcript every turn. The harness batches each turn across scenarios, reuses the
keys and values of earlier turns and drops a row from the batch when its turn ends (harness/evaluation/generation.py).
Repetitions alternate the two sides so that a neighbour's load hits both; the figure is the median of the
per-repetition ratios.
"""

from __future__ import annotations

import dataclasses
import statistics
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
EXPERIMENT = ROOT / "experiments" / "kaggle_debate.py"
TARGET = 4.0


def measure(scenarios: int | None = None, turns: int | None = None, max_new_tokens: int | None = None,
            repeats: int = 3) -> dict:  # fmt: skip
    import torch
    from peft import get_peft_model

    from harness.evaluation.debate import build_chain, build_reference_chain, generation_threads, hold_debates
    from harness.spec.load import load_experiment
    from harness.training.model import load, lora_config

    experiment = load_experiment(EXPERIMENT).for_profile("cpu")
    chosen = experiment.scenarios[:scenarios]
    if turns is not None:
        chosen = tuple(dataclasses.replace(s, turns=turns) for s in chosen)
    generation = experiment.generation
    if max_new_tokens is not None:
        generation = dataclasses.replace(generation, max_new_tokens=max_new_tokens)
    torch.manual_seed(experiment.training.seed)
    model, tokenizer = load(experiment.model, "cpu")
    model = get_peft_model(model, lora_config(experiment, model))
    model.eval()
    batched_chain = build_chain(model, tokenizer, generation)
    single_chain = build_reference_chain(model, tokenizer, generation)

    batched_s, sequential_s, identical = [], [], True
    with torch.no_grad(), generation_threads(model):
        hold_debates(batched_chain, chosen[:1])  # warm-up: first-call allocations and lazy imports
        for _ in range(repeats):
            start = time.perf_counter()
            batched, _ = hold_debates(batched_chain, chosen)
            batched_s.append(time.perf_counter() - start)
            start = time.perf_counter()
            sequential = [hold_debates(single_chain, (s,))[0][0] for s in chosen]
            sequential_s.append(time.perf_counter() - start)
            identical &= batched == sequential
    ratios = [s / b for s, b in zip(sequential_s, batched_s, strict=True)]
    value = statistics.median(ratios)
    return {
        "name": "eval_round_speedup",
        "value": value,
        "unit": "x",
        "target": TARGET,
        "met": value >= TARGET and identical,
        "raw": {
            "scenarios": len(chosen),
            "turns": sum(s.turns for s in chosen),
            "max_new_tokens": generation.max_new_tokens,
            "intra_op_threads": _threads_in_round(model),
            "identical_under_greedy": identical,
            "batched_s": batched_s,
            "sequential_s": sequential_s,
            "ratios": ratios,
        },
    }


def _threads_in_round(model: object) -> int:
    import torch

    from harness.evaluation.debate import generation_threads

    with generation_threads(model):
        return torch.get_num_threads()


if __name__ == "__main__":
    result = measure()
    raw = result["raw"]
    print(f"eval_round_speedup: {result['value']:.1f}x (target {TARGET}x, met={result['met']}), outputs identical "
          f"under greedy: {raw['identical_under_greedy']}")  # fmt: skip
    print(f"  batched {raw['batched_s']} s, sequential {raw['sequential_s']} s")
