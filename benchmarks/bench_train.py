"""Training throughput: the harness' training vs a plain HF Trainer, same model, data and arguments, in one process.

The harness side is `harness.training.run.run` (cpu profile) with evaluation disabled (the eval round is a no-op that
only marks its step done): Trainer + EvalCallback + the W&B callback (offline unless WANDB_MODE says otherwise) +
run-log writes. The plain side is `Trainer(model, args, train_dataset, default_data_collator)` with the very
`TrainingArguments` the harness built (own output folder, no reporting), the same seed, LoRA and packed blocks.
Only `Trainer.train` is timed. Runs alternate A B B A ... so drift and a neighbour's load hit both sides; the figure
is the median of the per-pair ratios (plain seconds / harness seconds, i.e. harness throughput / plain throughput).
"""

from __future__ import annotations

import dataclasses
import os
import statistics
import tempfile
import time
from pathlib import Path
from typing import Any

ROOT = Path(__file__).resolve().parent.parent
EXPERIMENT = ROOT / "experiments" / "kaggle_debate.py"
TARGET = 0.97


def _timed(trainer: Any, seconds: list[float]) -> None:
    start = time.perf_counter()
    trainer.train()
    seconds.append(time.perf_counter() - start)


def measure(experiment_file: Path = EXPERIMENT, steps: int = 40, pairs: int = 3) -> dict:
    """`steps` per run (at least the profile's eval_every, which `harness run` checks first); `pairs` of runs."""
    import torch
    from datasets import Dataset
    from peft import get_peft_model
    from transformers import Trainer, default_data_collator

    from harness.data.corpus import load_corpus, pack_blocks
    from harness.evaluation.round import Evaluator
    from harness.spec.load import load_experiment
    from harness.spec.profiles import choose_profile
    from harness.training.model import load, lora_config
    from harness.training.run import run

    os.environ.setdefault("WANDB_MODE", "offline")
    declared = load_experiment(experiment_file)
    experiment = declared.for_profile(choose_profile(declared, "auto", torch.cuda.is_available()).name)
    corpus = load_corpus(experiment.data, experiment.cleaning, experiment_file)
    harness_s: list[float] = []
    plain_s: list[float] = []
    captured: dict[str, Any] = {}
    train, evaluate = Trainer.train, Evaluator.round

    def no_eval(self: Evaluator, step: int, **kwargs: Any) -> dict[str, float]:
        self.done.add(step)
        return {}

    def harness_train(self: Trainer, *args: Any, **kwargs: Any) -> Any:
        captured["args"] = self.args
        start = time.perf_counter()
        try:
            return train(self, *args, **kwargs)
        finally:
            harness_s.append(time.perf_counter() - start)

    def harness_once(runs_dir: Path) -> None:
        Trainer.train, Evaluator.round = harness_train, no_eval  # type: ignore[method-assign]
        try:
            run(experiment_file, runs_dir=runs_dir, max_steps=steps, eval_every=steps)
        finally:
            Trainer.train, Evaluator.round = train, evaluate  # type: ignore[method-assign]

    def plain_once(output_dir: Path, seconds: list[float], max_steps: int = steps) -> None:
        torch.manual_seed(experiment.training.seed)
        model, tokenizer = load(experiment.model, "cpu")
        model = get_peft_model(model, lora_config(experiment, model))
        blocks, _ = pack_blocks(corpus.texts, tokenizer, experiment.data.block_size)
        args = dataclasses.replace(
            captured["args"], output_dir=str(output_dir), run_name=None, report_to=[], max_steps=max_steps,
            eval_strategy="no", eval_on_start=False,  # the harness side's evaluation is a no-op round; no eval here
        )  # fmt: skip
        dataset = Dataset.from_dict({"input_ids": blocks, "labels": blocks})
        _timed(Trainer(model=model, args=args, train_dataset=dataset, data_collator=default_data_collator), seconds)

    with tempfile.TemporaryDirectory() as tmp:
        harness_once(Path(tmp) / "warm-up")  # first-run costs: lazy imports, W&B start-up, allocator
        plain_once(Path(tmp) / "warm-up-plain", [], max_steps=2)
        harness_s.clear()
        for pair in range(pairs):
            order = ("harness", "plain") if pair % 2 == 0 else ("plain", "harness")
            for side in order:
                folder = Path(tmp) / f"{side}-{pair}"
                if side == "harness":
                    harness_once(folder)
                else:
                    plain_once(folder, plain_s)
    ratios = [p / h for p, h in zip(plain_s, harness_s, strict=True)]
    value = statistics.median(ratios)
    args = captured["args"]
    tokens = steps * args.per_device_train_batch_size * args.gradient_accumulation_steps * experiment.data.block_size
    return {
        "name": "train_throughput_ratio",
        "value": value,
        "unit": "x",
        "target": TARGET,
        "met": value >= TARGET,
        "raw": {
            "steps": steps,
            "tokens_per_run": tokens,
            "harness_s": harness_s,
            "plain_s": plain_s,
            "ratios": ratios,
            "harness_tokens_per_s": tokens / statistics.median(harness_s),
            "plain_tokens_per_s": tokens / statistics.median(plain_s),
        },
    }


if __name__ == "__main__":
    result = measure()
    print(f"train_throughput_ratio: {result['value']:.3f} (target {TARGET}, met={result['met']})  {result['raw']}")
