"""`harness run`: load the experiment, choose the profile, fine-tune with LoRA, evaluate on schedule, record it all."""

from __future__ import annotations

import contextlib
import gc
import json
import platform
import sys
import warnings
from dataclasses import dataclass
from importlib import metadata
from pathlib import Path
from typing import Any

from harness import distributed
from harness.data.corpus import Corpus
from harness.errors import UserError
from harness.records.runlog import RunLog, read_run, redact_value
from harness.records.runs import latest_checkpoint
from harness.spec.experiment import Experiment, TrainingSpec
from harness.spec.load import load_experiment
from harness.spec.profiles import choose_profile, with_overrides, with_settings
from harness.training._session import (
    checkpoint_step,
    every_round_failed,
    finish_from,
    header_config,
    new_run_dir,
)
from harness.training.model import check_context, check_quantization, lora_config, lora_targets, preflight

LIBRARIES = ("harness", "torch", "transformers", "peft", "accelerate", "datasets", "langchain-core",
             "langchain-huggingface", "wandb", "weave", "fugashi", "unidic-lite", "pandas", "scikit-learn")  # fmt: skip


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
    overrides: dict[str, Any]
    cuda: bool


def schedule_arguments(t: TrainingSpec) -> dict[str, Any]:
    """The TrainingArguments of what is optimised and how (steps, batch, learning-rate schedule), shared by a run and
    the gate's fine-tunes, so the two cannot drift apart."""
    return {
        "max_steps": t.max_steps,
        "per_device_train_batch_size": t.batch_size,
        "gradient_accumulation_steps": t.gradient_accumulation_steps,
        "learning_rate": t.learning_rate,
        "warmup_steps": t.warmup_steps,
        "weight_decay": t.weight_decay,
        "lr_scheduler_type": t.lr_scheduler,
    }


def _plan(path: str | Path, profile: str, overrides: dict[str, Any]) -> Plan:
    import torch

    declared = load_experiment(path)
    cuda = torch.cuda.is_available()
    choice = choose_profile(declared, profile, cuda)
    profiled = declared.for_profile(choice.name)
    experiment, scaled = with_overrides(profiled, overrides.get("max_steps"), overrides.get("eval_every"))
    experiment = with_settings(experiment, overrides.get("settings") or {})
    check_quantization(experiment.model, cuda)
    check_context(experiment)
    if choice.name == "cpu" and distributed.is_main():
        print(f"harness: {choice.reason}: using the cpu profile ({experiment.model.name_or_path} model, "
              f"{experiment.training.max_steps} steps); --profile full forces {declared.model.name_or_path}",
              file=sys.stderr, flush=True)  # fmt: skip
    if scaled and distributed.is_main():
        print(f"harness: {scaled}", file=sys.stderr, flush=True)
    return Plan(experiment, Path(path).resolve(), choice.name, choice.reason, overrides, cuda)


class RankLost(RuntimeError):
    """Another process of a multi-process run died or stopped answering."""


class _RankSilent:
    """The run log and W&B tracker of a rank other than 0: rank 0 records the run, the others only compute."""

    active = False
    run_path = None

    def __getattr__(self, name: str) -> Any:
        return lambda *args, **kwargs: None


def _join_processes() -> str | None:
    """Under torchrun / accelerate launch, join the process group (its backend's name); None for one process."""
    if refusal := distributed.unsupported_launch():
        raise UserError(refusal)
    return distributed.init()


def run(
    experiment_path: str | Path,
    profile: str = "auto",
    runs_dir: Path = Path("runs"),
    max_steps: int | None = None,
    eval_every: int | None = None,
    strict: bool = False,
    settings: dict[str, str] | None = None,
    group: str | None = None,
) -> tuple[Path, str]:
    """Run the experiment (with `KEY=VALUE` settings, in a W&B group: see spec/profiles.py and `harness sweep`);
    return its run directory (run log, adapter, W&B files) and final status."""
    from harness.data.corpus import load_corpus
    from harness.training._signals import StopRequest

    backend = _join_processes()
    overrides = {"max_steps": max_steps, "eval_every": eval_every, "settings": settings or {}}
    plan = _plan(experiment_path, profile, overrides)
    lora_targets(plan.experiment, preflight(plan.experiment.model, plan.cuda))  # LoRA targets on the meta skeleton
    corpus = load_corpus(plan.experiment.data, plan.experiment.cleaning, plan.experiment_file)
    config = header_config(plan.experiment, plan.experiment_file)  # before the run directory: none left empty
    with StopRequest() as stop:  # from the run directory's creation on, a signal ends the run with its `end` record
        run_id, problem, runlog = None, None, _RankSilent()
        if distributed.is_main():  # rank 0 names and creates the one run directory, every other rank takes its name
            try:
                run_dir, runlog = new_run_dir(runs_dir, plan.experiment.name)
                run_id = run_dir.name
            except UserError as exc:
                problem = str(exc)
        run_id, problem = distributed.broadcast((run_id, problem))
        if problem:
            raise UserError(problem)
        run_dir = runs_dir / run_id
        if distributed.is_main():
            print(f"harness: run {run_id} in {run_dir}", file=sys.stderr, flush=True)
        header = {
            "run_id": run_id,
            "experiment_file": str(plan.experiment_file),
            "experiment": config,
            "profile": plan.profile,
            "profile_reason": plan.reason,
            "overrides": plan.overrides,
            "device": "cuda" if plan.cuda else "cpu",
            "group": group or plan.experiment.name,
            "world_size": distributed.world_size(),
            "backend": backend,
            "sharding": distributed.sharding(plan.experiment.training.fsdp),
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


def resume(run_dir: Path, strict: bool = False) -> tuple[Path, str]:
    """Continue an interrupted or crashed run from its last checkpoint, in the same run directory and W&B run."""
    from harness.data.corpus import load_corpus
    from harness.training._signals import StopRequest

    _join_processes()
    with StopRequest() as stop:  # a signal from here on ends the session with an `end` record
        # First: the lock makes rank 0 the run's one writer (a second resume is refused), and a torn tail is cut.
        runlog, problem = _RankSilent(), None
        if distributed.is_main():
            try:
                runlog = RunLog(run_dir)
            except UserError as exc:
                problem = str(exc)
        if problem := distributed.broadcast(problem):
            raise UserError(problem)
        try:
            if isinstance(runlog, RunLog) and runlog.recovered:
                print(f"harness: {runlog.recovered}", file=sys.stderr, flush=True)
            try:
                previous = read_run(run_dir)
            except (OSError, ValueError) as exc:
                raise UserError(f"--resume {run_dir}: not a readable run ({exc})") from None
            if previous.status == "completed":
                raise UserError(f"--resume {run_dir}: the run already completed; start a new run instead")
            header = previous.header
            if refusal := distributed.unresumable(header):
                raise UserError(f"--resume {run_dir}: {refusal}")
            if (started_on := header.get("world_size", 1)) != distributed.world_size():
                raise UserError(
                    f"--resume {run_dir}: the run trained on {started_on} process(es); resume it with as many (now "
                    f"{distributed.world_size()}), or its batches and schedule would change"
                )
            plan = _plan(header["experiment_file"], header["profile"], header["overrides"])
            # The header holds the config as written, credentials replaced: compare like with like.
            now = redact_value(
                json.loads(json.dumps(header_config(plan.experiment, plan.experiment_file), ensure_ascii=False))
            )
            if changed := [key for key in now if now[key] != header["experiment"].get(key)]:
                raise UserError(
                    f"--resume {run_dir}: the experiment's {', '.join(changed)} changed since the run started "
                    f"({header['experiment_file']} or the rubric code); restore them or start a new run"
                )
            lora_targets(plan.experiment, preflight(plan.experiment.model, plan.cuda))
            corpus = load_corpus(plan.experiment.data, plan.experiment.cleaning, plan.experiment_file)
        except BaseException:
            runlog.close()
            raise
        checkpoint = distributed.broadcast(latest_checkpoint(run_dir))
        step = checkpoint_step(checkpoint)
        runlog.write("resume", from_step=step, checkpoint=str(checkpoint) if checkpoint else None)
        if distributed.is_main():
            print(f"harness: resuming {header['run_id']} from step {step}", file=sys.stderr, flush=True)
        return run_dir, fit(plan, corpus, run_dir, runlog, header, strict=strict, checkpoint=checkpoint, stop=stop)


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
    from transformers import EarlyStoppingCallback, PrinterCallback, TrainingArguments, default_data_collator
    from transformers.integrations import WandbCallback

    from harness.data.corpus import pack_blocks
    from harness.evaluation.round import EvalFailed, Evaluator, RoundStopped
    from harness.records.tracking import Tracker, guarded_trainer_callback
    from harness.training._signals import Diverged, StopRequest
    from harness.training.callback import EvalCallback, RubricTrainer
    from harness.training.console import Console
    from harness.training.model import load
    from harness.training.watch import best_model_arguments, watching

    experiment, t = plan.experiment, plan.experiment.training
    tracker = (
        Tracker(run_dir, header["run_id"], header.get("group", experiment.name), header, resume=checkpoint is not None)
        if distributed.is_main()
        else _RankSilent()
    )
    if tracker.active and tracker.mode in ("offline", "online"):
        offline = f"upload later: wandb sync {run_dir}/wandb/offline-run-*"
        print(f"harness: W&B {tracker.mode} ({offline if tracker.mode == 'offline' else tracker.run.url})",
              file=sys.stderr, flush=True)  # fmt: skip
    status, adapter, reason, watch = "failed", None, None, None
    try:
        if checkpoint is None:
            tracker.log_cleaning([s.to_dict() for s in corpus.stats])
        else:
            tracker.replay(read_run(run_dir), [r.name for r in experiment.rubrics])
        torch.manual_seed(t.seed)
        model, tokenizer = load(experiment.model, "cuda" if plan.cuda else "cpu", t.gradient_checkpointing, t.fsdp)
        if experiment.generation.chat_template and not tokenizer.chat_template:
            raise UserError("GenerationSpec.chat_template: the model's tokenizer has no chat template; set it False")
        with warnings.catch_warnings():  # peft reads transformers' deprecated alias; nothing a user can act on
            warnings.filterwarnings("ignore", "`is_gradient_checkpointing` is deprecated", FutureWarning)
            model = get_peft_model(model, lora_config(experiment, model))
        trainable, total = model.get_nb_trainable_parameters()
        runlog.write("model", lora_targets=sorted(model.peft_config["default"].target_modules), parameters=total,
                     trainable_parameters=trainable, sharded_parameters=distributed.sharded(model))  # fmt: skip
        earlier = read_run(run_dir)  # a resumed run's rounds so far; a fresh run's header
        done = set(earlier.eval_steps())
        blocks, dropped = pack_blocks(corpus.texts, tokenizer, experiment.data.block_size)
        runlog.write("data", blocks=len(blocks), block_size=experiment.data.block_size, tail_tokens_dropped=dropped)
        args = TrainingArguments(
            output_dir=str(run_dir / "checkpoints"),
            run_name=header["run_id"],
            **schedule_arguments(t),
            logging_steps=t.logging_steps,
            logging_nan_inf_filter=False,  # a NaN loss must reach the callback, which stops the run
            save_strategy="steps",
            save_steps=t.save_steps or experiment.eval_every,
            save_total_limit=2,
            eval_strategy="steps",  # the round is the Trainer's evaluation (RubricTrainer.evaluate)
            eval_steps=experiment.eval_every,
            eval_on_start=0 not in done,  # a resume redoes no completed round
            **best_model_arguments(t),
            save_only_model=t.fsdp and distributed.world_size() > 1,  # transformers keeps no optimizer state there
            seed=t.seed,
            data_seed=t.seed,
            bf16=plan.cuda and experiment.model.dtype == "bfloat16",
            fp16=plan.cuda and experiment.model.dtype == "float16",
            **({"gradient_checkpointing": True} if t.gradient_checkpointing else {}),
            report_to=["wandb"] if tracker.active else [],
            use_cpu=not plan.cuda,
            dataloader_num_workers=0,
            disable_tqdm=True,
            ddp_timeout=distributed.TIMEOUT_S,
            ddp_find_unused_parameters=False,  # every LoRA weight takes part in every step
        )
        evaluator, console = Evaluator(model, tokenizer, experiment, runlog, tracker, strict=strict), Console()
        evaluator.echo = console.write
        evaluator.done |= done  # a resume redoes no completed round, even one before the first checkpoint
        evaluator.appeared |= {a["scenario"] for a in earlier.of("appearance")}
        watch = watching(experiment, run_dir, runlog, tracker, (model, tokenizer), console.write, earlier)
        stopping = [EarlyStoppingCallback(t.early_stopping_patience, t.early_stopping_threshold)]
        with contextlib.nullcontext(stop) if stop is not None else StopRequest() as stop:
            trainer = RubricTrainer(
                model=model,
                args=args,
                train_dataset=Dataset.from_dict({"input_ids": blocks, "labels": blocks}),
                eval_dataset=list(experiment.scenarios),  # what a round evaluates (the Trainer wants one to evaluate)
                data_collator=default_data_collator,
                callbacks=[EvalCallback(evaluator, runlog, stop), console, watch,
                           *(stopping if t.early_stopping_patience else [])],
                evaluator=evaluator,
                stop=stop,
            )  # fmt: skip
            trainer.remove_callback(PrinterCallback)  # raw dicts; the Console shows the run instead
            if tracker.active:
                trainer.remove_callback(WandbCallback)
                trainer.add_callback(guarded_trainer_callback())
            gc.freeze()  # the model, data and libraries live all run: keep the collector from rescanning them
            try:
                if checkpoint_step(checkpoint) >= t.max_steps:
                    finish_from(checkpoint, model, evaluator, t.max_steps, stop)
                elif not stop.requested:  # (a signal during W&B init or model load: nothing to train or save)
                    trainer.train(resume_from_checkpoint=str(checkpoint) if checkpoint else None)
            except RoundStopped:  # a stop inside a round before this session trained a step: the last checkpoint holds
                pass
            except RuntimeError as exc:
                if distributed.lost_peer(exc):
                    raise RankLost(f"rank {distributed.rank()} lost contact with another rank ({exc})") from exc
                raise
            finally:
                gc.unfreeze()
        if stop.requested:
            status = "interrupted"
        else:
            model.save_pretrained(run_dir / "adapter", is_main_process=distributed.is_main())  # FSDP gathers shards
            if distributed.is_main():
                tokenizer.save_pretrained(run_dir / "adapter")
            adapter = run_dir / "adapter"  # only once saved: a full disk must not leave a path to a broken adapter
            status = "completed" if (failure := every_round_failed(run_dir)) is None else "failed"
            if failure and distributed.is_main():
                print(f"harness: every evaluation round failed ({failure}); the run is marked failed",
                      file=sys.stderr, flush=True)  # fmt: skip
    except KeyboardInterrupt:
        status = "interrupted"
        raise
    except Exception as exc:
        reason = str(exc).splitlines()[0] if str(exc) else type(exc).__name__
        reason = reason if isinstance(exc, UserError | Diverged | EvalFailed) else f"{type(exc).__name__}: {reason}"
        raise
    finally:
        try:
            last = str(latest_checkpoint(run_dir) or "") or None
        except OSError:  # an unreadable run directory must not cost the run its `end` record
            last = None
        try:  # a full disk may refuse even this record: the lock and the W&B run are released all the same
            runlog.write("end", status=status, adapter=str(adapter) if adapter else None, wandb_dir=tracker.run_path,
                         checkpoint=last, reason=reason, **(watch.summary() if watch else {}))  # fmt: skip
        finally:
            tracker.finish(exit_code=0 if status == "completed" else 1)
            runlog.close()
    return status
