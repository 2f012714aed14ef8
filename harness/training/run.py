"""`harness run`: load the experiment, choose the profile, fine-tune with LoRA, evaluate on schedule, record it all."""

from __future__ import annotations

import contextlib
import gc
import json
import platform
import secrets
import sys
import time
from dataclasses import dataclass
from importlib import metadata
from pathlib import Path
from typing import Any

from harness.data.corpus import Corpus
from harness.errors import UserError
from harness.records.runlog import RunLog, read_run, redact_value
from harness.spec.experiment import Experiment
from harness.spec.load import load_experiment
from harness.spec.profiles import choose_profile, with_overrides
from harness.training.model import check_context

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


@dataclass(frozen=True)
class Plan:
    """Everything a run (fresh or resumed) is built from."""

    experiment: Experiment
    experiment_file: Path
    profile: str
    reason: str
    overrides: dict[str, int | None]
    cuda: bool


def _plan(path: str | Path, profile: str, overrides: dict[str, int | None]) -> Plan:
    import torch

    declared = load_experiment(path)
    cuda = torch.cuda.is_available()
    choice = choose_profile(declared, profile, cuda)
    profiled = declared.for_profile(choice.name)
    experiment = with_overrides(profiled, overrides.get("max_steps"), overrides.get("eval_every"))
    check_context(experiment)
    if choice.name == "cpu":
        print(f"harness: {choice.reason}: using the cpu profile ({experiment.model.name_or_path} model, "
              f"{experiment.training.max_steps} steps); --profile full forces {declared.model.name_or_path}",
              file=sys.stderr, flush=True)  # fmt: skip
    return Plan(experiment, Path(path).resolve(), choice.name, choice.reason, overrides, cuda)


def _lora_config(experiment: Experiment, model: Any) -> Any:
    from peft import LoraConfig

    names = {name.rsplit(".", 1)[-1] for name, _ in model.named_modules()}
    missing = [m for m in experiment.lora.target_modules if m not in names]
    if missing:
        known = sorted(n for n in names if n and not n.isdigit())
        raise UserError(f"LoraSpec.target_modules: {missing} not in the model; its modules are {', '.join(known)}")
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
    strict: bool = False,
) -> tuple[Path, str]:
    """Run the experiment; return its run directory (run log, adapter, W&B files) and final status."""
    from harness.data.corpus import load_corpus
    from harness.training.callback import StopRequest

    plan = _plan(experiment_path, profile, {"max_steps": max_steps, "eval_every": eval_every})
    corpus = load_corpus(plan.experiment.data, plan.experiment.cleaning, plan.experiment_file)
    config = _config(plan)  # before the run directory exists: a failure here must not leave an empty one
    with StopRequest() as stop:  # from the run directory's creation on, a signal ends the run with its `end` record
        run_dir, runlog = _new_run_dir(runs_dir, plan.experiment.name)
        header = {
            "run_id": run_dir.name,
            "experiment_file": str(plan.experiment_file),
            "experiment": config,
            "profile": plan.profile,
            "profile_reason": plan.reason,
            "overrides": plan.overrides,
            "device": "cuda" if plan.cuda else "cpu",
            "versions": library_versions(),
            "argv": sys.argv,
            "data": {
                "path": str(corpus.path),
                "documents": corpus.raw_count,
                "bad_lines_skipped": len(corpus.bad_lines),
                "bad_lines": [{"line": i, "problem": p} for i, p in corpus.bad_lines[:100]],
                "after_cleaning": len(corpus.texts),
            },
        }
        runlog.write("header", **header)
        runlog.write("cleaning", rules=[s.to_dict() for s in corpus.stats])
        return run_dir, fit(plan, corpus, run_dir, runlog, header, strict=strict, stop=stop)


def _config(plan: Plan) -> dict[str, Any]:
    """The experiment's config for the header; hashing the rubrics' code and data can fail on user-defined ones."""
    try:
        return plan.experiment.to_config()
    except (OSError, TypeError) as exc:
        raise UserError(f"{plan.experiment_file}: cannot version the rubrics (their source file and data must be "
                        f"readable): {type(exc).__name__}: {exc}") from None  # fmt: skip


def _new_run_dir(runs_dir: Path, name: str, tries: int = 20) -> tuple[Path, RunLog]:
    """A new run directory under a fresh id (another on a clash with an existing one) and its open run log."""
    try:
        runs_dir.mkdir(parents=True, exist_ok=True)
        for _ in range(tries):
            run_dir = runs_dir / f"{name}-{time.strftime('%Y%m%d-%H%M%S')}-{secrets.token_hex(2)}"
            try:
                run_dir.mkdir()
            except FileExistsError:
                continue
            return run_dir, RunLog(run_dir)
    except OSError as exc:
        raise UserError(f"--runs-dir {runs_dir}: cannot write there ({exc.strerror})") from None
    raise UserError(f"--runs-dir {runs_dir}: {tries} new run ids in a row were taken (the last: {run_dir.name}); "
                    "another process is creating runs with this name at the same time, try again")  # fmt: skip


def resume(run_dir: Path, strict: bool = False) -> tuple[Path, str]:
    """Continue an interrupted or crashed run from its last checkpoint, in the same run directory and W&B run."""
    from harness.data.corpus import load_corpus
    from harness.training.callback import StopRequest

    with StopRequest() as stop:  # a signal from here on ends the session with an `end` record
        runlog = RunLog(run_dir)  # first: the lock makes this process the run's one writer, and a torn tail is cut
        try:
            if runlog.recovered:
                print(f"harness: {runlog.recovered}", file=sys.stderr, flush=True)
            try:
                previous = read_run(run_dir)
            except (OSError, ValueError) as exc:
                raise UserError(f"--resume {run_dir}: not a readable run ({exc})") from None
            if previous.status == "completed":
                raise UserError(f"--resume {run_dir}: the run already completed; start a new run instead")
            header = previous.header
            plan = _plan(header["experiment_file"], header["profile"], header["overrides"])
            # The header holds the config as written, credentials replaced: compare like with like.
            now = redact_value(json.loads(json.dumps(_config(plan), ensure_ascii=False)))
            if changed := [key for key in now if now[key] != header["experiment"].get(key)]:
                raise UserError(
                    f"--resume {run_dir}: the experiment's {', '.join(changed)} changed since the run started "
                    f"({header['experiment_file']} or the rubric code); restore them or start a new run"
                )
            corpus = load_corpus(plan.experiment.data, plan.experiment.cleaning, plan.experiment_file)
        except BaseException:
            runlog.close()
            raise
        checkpoint = latest_checkpoint(run_dir)
        step = checkpoint_step(checkpoint)
        runlog.write("resume", from_step=step, checkpoint=str(checkpoint) if checkpoint else None)
        print(f"harness: resuming {header['run_id']} from step {step}", file=sys.stderr, flush=True)
        return run_dir, fit(plan, corpus, run_dir, runlog, header, strict=strict, checkpoint=checkpoint, stop=stop)


def checkpoint_step(checkpoint: Path | None) -> int:
    """The optimizer step a Trainer checkpoint was saved at (0 for none)."""
    return int(checkpoint.name.split("-")[1]) if checkpoint else 0


def latest_checkpoint(run_dir: Path) -> Path | None:
    """The newest complete Trainer checkpoint (one whose trainer_state.json was written)."""
    done = [p for p in (run_dir / "checkpoints").glob("checkpoint-*") if (p / "trainer_state.json").exists()]
    return max(done, key=lambda p: int(p.name.split("-")[1]), default=None)


def _finish_from(checkpoint: Path, model: Any, evaluator: Any, max_steps: int, stop: Any) -> None:
    """A checkpoint at max_steps has nothing left to train (the Trainer would train one step past it when the
    checkpoint falls mid-epoch): load its adapter and hold the final round if it is not recorded yet."""
    from peft import set_peft_model_state_dict
    from safetensors.torch import load_file

    set_peft_model_state_dict(model, load_file(checkpoint / "adapter_model.safetensors"))
    if max_steps not in evaluator.done:
        evaluator.round(max_steps, should_stop=lambda: stop.requested)


def _every_round_failed(run_dir: Path) -> str | None:
    """The first error when no evaluation round of the run produced a score (a run that measured nothing did not
    complete), else None."""
    rounds = read_run(run_dir).of("eval")
    if rounds and all(r.get("error") or not r.get("means") for r in rounds):
        return next((str(r["error"]) for r in rounds if r.get("error")), "no rubric scored any conversation")
    return None


def fit(
    plan: Plan,
    corpus: Corpus,
    run_dir: Path,
    runlog: RunLog,
    header: dict[str, Any],
    strict: bool,
    checkpoint: Path | None = None,
    stop: Any = None,
) -> str:
    """Train and evaluate on schedule (the run proper): everything from here on is recorded, and the run log always
    gets its `end` record. `run`, `resume` and the gate all train through here; `stop` is the caller's StopRequest
    when signals were already being caught (a stop before training leaves nothing to train or save)."""
    import torch
    from datasets import Dataset
    from peft import get_peft_model
    from transformers import Trainer, TrainingArguments, default_data_collator
    from transformers.integrations import WandbCallback

    from harness.data.corpus import pack_blocks
    from harness.evaluation.round import Evaluator, RoundStopped
    from harness.records.tracking import Tracker, guarded_trainer_callback
    from harness.training.callback import EvalCallback, StopRequest
    from harness.training.model import load

    experiment, t = plan.experiment, plan.experiment.training
    tracker = Tracker(run_dir, header["run_id"], experiment.name, header, resume=checkpoint is not None)
    status, adapter = "failed", None
    try:
        if checkpoint is None:
            tracker.log_cleaning([s.to_dict() for s in corpus.stats])
        else:
            tracker.preload(read_run(run_dir).conversations(), [r.name for r in experiment.rubrics])
        torch.manual_seed(t.seed)
        model, tokenizer = load(experiment.model, "cuda" if plan.cuda else "cpu")
        model = get_peft_model(model, _lora_config(experiment, model))
        blocks, dropped = pack_blocks(corpus.texts, tokenizer, experiment.data.block_size)
        runlog.write("data", blocks=len(blocks), block_size=experiment.data.block_size, tail_tokens_dropped=dropped)
        args = TrainingArguments(
            output_dir=str(run_dir / "checkpoints"),
            run_name=header["run_id"],
            max_steps=t.max_steps,
            per_device_train_batch_size=t.batch_size,
            gradient_accumulation_steps=t.gradient_accumulation_steps,
            learning_rate=t.learning_rate,
            warmup_steps=t.warmup_steps,
            weight_decay=t.weight_decay,
            lr_scheduler_type=t.lr_scheduler,
            logging_steps=t.logging_steps,
            logging_nan_inf_filter=False,  # a NaN loss must reach the callback, which stops the run
            save_strategy="steps",
            save_steps=t.save_steps or experiment.eval_every,
            save_total_limit=2,
            seed=t.seed,
            data_seed=t.seed,
            bf16=plan.cuda and experiment.model.dtype == "bfloat16",
            fp16=plan.cuda and experiment.model.dtype == "float16",
            **({"gradient_checkpointing": True} if t.gradient_checkpointing else {}),
            report_to=["wandb"] if tracker.active else [],
            use_cpu=not plan.cuda,
            dataloader_num_workers=0,
            disable_tqdm=True,
        )
        evaluator = Evaluator(model, tokenizer, experiment, runlog, tracker, strict=strict)
        if checkpoint is not None:
            evaluator.done |= {s for s in read_run(run_dir).eval_steps()}
        with contextlib.nullcontext(stop) if stop is not None else StopRequest() as stop:
            trainer = Trainer(
                model=model,
                args=args,
                train_dataset=Dataset.from_dict({"input_ids": blocks, "labels": blocks}),
                data_collator=default_data_collator,
                callbacks=[EvalCallback(evaluator, experiment.eval_every, runlog, stop)],
            )
            if tracker.active:
                trainer.remove_callback(WandbCallback)
                trainer.add_callback(guarded_trainer_callback())
            gc.freeze()  # the model, data and libraries live all run: keep the collector from rescanning them
            try:
                if checkpoint_step(checkpoint) >= t.max_steps:
                    _finish_from(checkpoint, model, evaluator, t.max_steps, stop)
                elif not stop.requested:  # (a signal during W&B init or model load: nothing to train or save)
                    trainer.train(resume_from_checkpoint=str(checkpoint) if checkpoint else None)
            except RoundStopped:  # a stop inside a round before this session trained a step: the last checkpoint holds
                pass
            finally:
                gc.unfreeze()
        if stop.requested:
            status = "interrupted"
        else:
            model.save_pretrained(run_dir / "adapter")
            tokenizer.save_pretrained(run_dir / "adapter")
            adapter = run_dir / "adapter"  # only once saved: a full disk must not leave a path to a broken adapter
            status = "completed" if (failure := _every_round_failed(run_dir)) is None else "failed"
            if failure:
                print(f"harness: every evaluation round failed ({failure}); the run is marked failed",
                      file=sys.stderr, flush=True)  # fmt: skip
    except KeyboardInterrupt:
        status = "interrupted"
        raise
    finally:
        try:
            last = str(latest_checkpoint(run_dir) or "") or None
        except OSError:  # an unreadable run directory must not cost the run its `end` record
            last = None
        try:  # a full disk may refuse even this record: the lock and the W&B run are released all the same
            runlog.write("end", status=status, adapter=str(adapter) if adapter else None, wandb_dir=tracker.run_path,
                         checkpoint=last)  # fmt: skip
        finally:
            tracker.finish(exit_code=0 if status == "completed" else 1)
            runlog.close()
    return status
