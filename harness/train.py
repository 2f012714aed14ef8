"""`harness run`: load the experiment, choose the profile, fine-tune with LoRA, evaluate on schedule, record it all."""

from __future__ import annotations

import dataclasses
import platform
import secrets
import sys
import time
from importlib import metadata
from pathlib import Path

from harness.errors import UserError
from harness.experiment import Experiment
from harness.load import load_experiment
from harness.runlog import RunLog

LIBRARIES = ("harness", "torch", "transformers", "peft", "accelerate", "datasets", "langchain-core",
             "langchain-huggingface", "wandb", "fugashi", "unidic-lite", "pandas", "scikit-learn")  # fmt: skip


def library_versions() -> dict[str, str]:
    versions = {"python": platform.python_version()}
    for name in LIBRARIES:
        try:
            versions[name] = metadata.version(name)
        except metadata.PackageNotFoundError:
            versions[name] = "not installed"
    return versions


def _override(experiment: Experiment, max_steps: int | None, eval_every: int | None) -> Experiment:
    """Command-line schedule overrides, validated like the file's own fields."""
    training = experiment.training
    if max_steps is not None:
        training = dataclasses.replace(training, max_steps=max_steps)
    return dataclasses.replace(
        experiment, training=training, eval_every=eval_every if eval_every is not None else experiment.eval_every
    )


def _lora_config(experiment: Experiment, model: object) -> object:
    from peft import LoraConfig

    names = {name.rsplit(".", 1)[-1] for name, _ in model.named_modules()}  # type: ignore[attr-defined]
    missing = [m for m in experiment.lora.target_modules if m not in names]
    if missing:
        linear = sorted(n for n in names if n and not n.isdigit())
        raise UserError(f"LoraSpec.target_modules: {missing} not in the model; its modules are {', '.join(linear)}")
    return LoraConfig(
        r=experiment.lora.r,
        lora_alpha=experiment.lora.alpha,
        lora_dropout=experiment.lora.dropout,
        target_modules=list(experiment.lora.target_modules),
        task_type="CAUSAL_LM",
    )


def run(
    experiment_path: str | Path,
    profile: str = "auto",
    runs_dir: Path = Path("runs"),
    max_steps: int | None = None,
    eval_every: int | None = None,
) -> Path:
    """Run the experiment and return its run directory (run log, adapter, W&B files)."""
    import torch

    from harness.model import choose_profile

    declared = load_experiment(experiment_path)
    cuda = torch.cuda.is_available()
    choice = choose_profile(declared, profile, cuda)
    experiment = _override(declared.for_profile(choice.name), max_steps, eval_every)
    if choice.name == "cpu":
        print(f"harness: {choice.reason}: using the cpu profile ({experiment.model.name_or_path} model, "
              f"{experiment.training.max_steps} steps); --profile full forces {declared.model.name_or_path}",
              file=sys.stderr, flush=True)  # fmt: skip

    from harness.data import load_corpus

    corpus = load_corpus(experiment.data, experiment.cleaning, Path(experiment_path))
    try:
        runs_dir.mkdir(parents=True, exist_ok=True)
        run_id = f"{experiment.name}-{time.strftime('%Y%m%d-%H%M%S')}-{secrets.token_hex(2)}"
        run_dir = runs_dir / run_id
        run_dir.mkdir()
        runlog = RunLog(run_dir)
    except OSError as exc:
        raise UserError(f"--runs-dir {runs_dir}: cannot write there ({exc.strerror})") from None
    return _train(experiment, choice.name, choice.reason, corpus, run_id, run_dir, runlog, cuda)


def _train(experiment, profile, reason, corpus, run_id, run_dir, runlog, cuda) -> Path:  # type: ignore[no-untyped-def]
    """The run proper: everything from here on is recorded, and the run log always gets its `end` record."""
    import torch
    from datasets import Dataset
    from peft import get_peft_model
    from transformers import Trainer, TrainingArguments, default_data_collator

    from harness.callback import EvalCallback
    from harness.data import pack_blocks
    from harness.evaluation import Evaluator
    from harness.model import load, resolve_model_path
    from harness.tracking import Tracker

    config = {
        "run_id": run_id,
        "experiment": experiment.to_config(),
        "profile": profile,
        "profile_reason": reason,
        "model_path": resolve_model_path(experiment.model),
        "device": "cuda" if cuda else "cpu",
        "versions": library_versions(),
        "argv": sys.argv,
        "data": {"path": str(corpus.path), "documents": corpus.raw_count, "after_cleaning": len(corpus.texts)},
    }
    runlog.write("header", **config)
    runlog.write("cleaning", rules=[s.to_dict() for s in corpus.stats])
    tracker = Tracker(run_dir, run_id, experiment.name, config)
    tracker.log_cleaning([s.to_dict() for s in corpus.stats])
    status, adapter = "failed", None
    try:
        torch.manual_seed(experiment.training.seed)
        model, tokenizer = load(experiment.model, "cuda" if cuda else "cpu")
        model = get_peft_model(model, _lora_config(experiment, model))
        blocks, dropped = pack_blocks(corpus.texts, tokenizer, experiment.data.block_size)
        runlog.write("data", blocks=len(blocks), block_size=experiment.data.block_size, tail_tokens_dropped=dropped)
        dataset = Dataset.from_dict({"input_ids": blocks, "labels": blocks})
        t = experiment.training
        args = TrainingArguments(
            output_dir=str(run_dir / "checkpoints"),
            run_name=run_id,
            max_steps=t.max_steps,
            per_device_train_batch_size=t.batch_size,
            gradient_accumulation_steps=t.gradient_accumulation_steps,
            learning_rate=t.learning_rate,
            warmup_steps=t.warmup_steps,
            weight_decay=t.weight_decay,
            lr_scheduler_type=t.lr_scheduler,
            logging_steps=t.logging_steps,
            save_strategy="steps" if t.save_steps else "no",
            save_steps=t.save_steps or 500,
            seed=t.seed,
            data_seed=t.seed,
            bf16=cuda and experiment.model.dtype == "bfloat16",
            fp16=cuda and experiment.model.dtype == "float16",
            **({"gradient_checkpointing": True} if t.gradient_checkpointing else {}),
            report_to=["wandb"] if tracker.active else [],
            use_cpu=not cuda,
            dataloader_num_workers=0,
            disable_tqdm=True,
        )
        evaluator = Evaluator(model, tokenizer, experiment, runlog, tracker)
        trainer = Trainer(
            model=model,
            args=args,
            train_dataset=dataset,
            data_collator=default_data_collator,
            callbacks=[EvalCallback(evaluator, experiment.eval_every, runlog)],
        )
        trainer.train()
        adapter = run_dir / "adapter"
        model.save_pretrained(adapter)
        tokenizer.save_pretrained(adapter)
        status = "completed"
    except KeyboardInterrupt:
        status = "interrupted"
        raise
    finally:
        runlog.write("end", status=status, adapter=str(adapter) if adapter else None, wandb_dir=tracker.run_path)
        runlog.close()
        tracker.finish(exit_code=0 if status == "completed" else 1)
    return run_dir
