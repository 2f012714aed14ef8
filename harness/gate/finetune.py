"""The gate's short fine-tune of one seed: randomness shared between the two sides, then probes (and debates)."""

from __future__ import annotations

import contextlib
import hashlib
import os
from collections.abc import Iterator, Sequence
from pathlib import Path
from typing import Any

from harness.spec.experiment import Experiment

THREADS = 1
"""Torch threads of the gate's fine-tune: bit-identical results need a fixed count; one thread is not slowed ~10x
when another process holds the second core."""


def ordered_blocks(documents: Sequence[tuple[str, str]], tokenizer: Any, block_size: int, seed: int,
                   blocks_needed: int) -> list[list[int]]:  # fmt: skip
    """Token blocks of (key, text) documents, each epoch in the order of a stable hash of (seed, epoch, key).

    The key is the raw document, so a document both rule sets keep sits at the same place relative to the others
    on both sides: a candidate that drops or edits a few documents changes a few blocks, not the whole order (as a
    shuffled sampler would).
    """
    encoded = {key: tokenizer(text, add_special_tokens=False)["input_ids"] + [tokenizer.eos_token_id]
               for key, text in documents}  # fmt: skip
    if not encoded:
        raise ValueError("no documents to train on")
    stream: list[int] = []
    epoch = 0
    while len(stream) < blocks_needed * block_size:
        order = sorted(encoded, key=lambda k: hashlib.sha256(f"{seed}\0{epoch}\0{k}".encode()).digest())
        for key in order:
            stream += encoded[key]
        epoch += 1
    return [stream[i * block_size : (i + 1) * block_size] for i in range(blocks_needed)]


@contextlib.contextmanager
def quiet_training() -> Iterator[None]:
    """No W&B run and a fixed thread count while the gate trains; both restored afterwards."""
    import torch

    mode, threads = os.environ.get("WANDB_MODE"), torch.get_num_threads()
    os.environ["WANDB_MODE"] = "disabled"
    torch.set_num_threads(THREADS)
    try:
        yield
    finally:
        torch.set_num_threads(threads)
        if mode is None:
            os.environ.pop("WANDB_MODE", None)
        else:
            os.environ["WANDB_MODE"] = mode


def fine_tune(experiment: Experiment, documents: Sequence[tuple[str, str]], seed: int, debates: bool,
              cache: Path | None = None) -> dict[str, Any]:  # fmt: skip
    """Train LoRA on `documents` under `experiment`'s (cpu, gate-cut) schedule with `seed`; probe; maybe debate.

    Same seed, same LoRA initialisation and dropout masks on both sides (the batches have the same shapes); the
    data order is `ordered_blocks`'. With `cache`, the adapter is saved there (and loaded instead of trained when
    present): calibration re-reads fine-tunes with new probes without training again.
    Returns {"probes": {...}, "conversations": [...] or None, "trained_s": seconds or None when loaded}.
    """
    import tempfile
    import time

    import torch
    from datasets import Dataset
    from peft import get_peft_model, get_peft_model_state_dict, set_peft_model_state_dict
    from safetensors.torch import load_file, save_file
    from transformers import Trainer, TrainingArguments, default_data_collator

    from harness.gate import probes
    from harness.training.model import load, lora_config
    from harness.training.run import schedule_arguments

    t = experiment.training
    started = time.perf_counter()
    with quiet_training(), tempfile.TemporaryDirectory(prefix="harness-gate-") as tmp:
        torch.manual_seed(seed)
        model, tokenizer = load(experiment.model, "cpu")
        model = get_peft_model(model, lora_config(experiment, model))
        if cache is not None and cache.exists():
            set_peft_model_state_dict(model, load_file(cache))
            trained_s = None
        else:
            blocks = ordered_blocks(documents, tokenizer, experiment.data.block_size, seed, t.max_steps * t.batch_size)
            args = TrainingArguments(
                output_dir=tmp,
                **schedule_arguments(t),
                save_strategy="no",
                seed=seed,
                data_seed=seed,
                use_cpu=True,
                dataloader_num_workers=0,
                disable_tqdm=True,
                report_to=[],
                train_sampling_strategy="sequential",
            )
            data = Dataset.from_dict({"input_ids": blocks, "labels": blocks})
            Trainer(model=model, args=args, train_dataset=data, data_collator=default_data_collator).train()
            trained_s = round(time.perf_counter() - started, 1)
            if cache is not None:
                cache.parent.mkdir(parents=True, exist_ok=True)
                save_file({k: v.contiguous() for k, v in get_peft_model_state_dict(model).items()}, cache)
        result: dict[str, Any] = {"probes": probes.score(model, tokenizer), "conversations": None,
                                  "trained_s": trained_s}  # fmt: skip
        if debates:
            result["conversations"] = _debate(model, tokenizer, experiment, seed)
    return result


def _debate(model: Any, tokenizer: Any, experiment: Experiment, seed: int) -> list[dict[str, Any]]:
    """Every scenario's debate by the fine-tuned model (the generation rubrics' secondary check)."""
    import torch

    from harness.evaluation.debate import build_chain, generation_threads, hold_debates

    model.eval()
    with torch.no_grad(), generation_threads(model):
        torch.manual_seed(experiment.generation.seed + seed)
        conversations, _ = hold_debates(build_chain(model, tokenizer, experiment.generation), experiment.scenarios)
    return [{"scenario": c.scenario, "topic": c.topic, "turns": [{"speaker": t.speaker, "text": t.text}
             for t in c.turns]} for c in conversations]  # fmt: skip
