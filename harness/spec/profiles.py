"""Profiles, in one place: which profile a run uses and why, what `--max-steps`/`--eval-every` change, and the
gate's short schedule. Every schedule a run or the gate trains on is derived here from the declared experiment."""

from __future__ import annotations

import ast
import dataclasses
from collections.abc import Mapping
from dataclasses import dataclass
from pathlib import Path

from harness.errors import UserError
from harness.spec.experiment import EMBEDDED, EMBEDDED_DIR, Experiment, GateSpec, ModelSpec

_WEIGHT_FILES = (
    "model.safetensors",
    "model.safetensors.index.json",
    "pytorch_model.bin",
    "pytorch_model.bin.index.json",
)


def resolve_model_path(spec: ModelSpec) -> str:
    """`embedded` becomes the shipped directory; hub ids and local paths pass through."""
    return str(EMBEDDED_DIR) if spec.name_or_path == EMBEDDED else spec.name_or_path


def weights_available(spec: ModelSpec) -> bool:
    """True when the model's weights are on this machine (a local directory or the HF cache): no download."""
    path = Path(resolve_model_path(spec))
    if path.is_dir():
        return any((path / name).exists() for name in _WEIGHT_FILES)
    from huggingface_hub import try_to_load_from_cache

    return any(isinstance(try_to_load_from_cache(spec.name_or_path, name), str) for name in _WEIGHT_FILES)


@dataclass(frozen=True)
class ProfileChoice:
    """The profile a run uses and why."""

    name: str
    reason: str


def choose_profile(experiment: Experiment, requested: str, cuda: bool) -> ProfileChoice:
    """`auto` runs the declared model where CUDA and its weights are present, else the experiment's cpu profile."""
    if requested != "auto":
        return ProfileChoice(requested, f"--profile {requested}")
    if experiment.model.name_or_path == EMBEDDED:
        return ProfileChoice("full", "the experiment declares the embedded model")
    missing = []
    if not cuda:
        missing.append("no CUDA device")
    if not weights_available(experiment.model):
        missing.append(f"weights of {experiment.model.name_or_path} not found locally")
    if not missing:
        return ProfileChoice("full", f"CUDA and local weights for {experiment.model.name_or_path}")
    if experiment.cpu is None:
        return ProfileChoice("full", f"{'; '.join(missing)}, but the experiment declares no cpu profile")
    return ProfileChoice("cpu", "; ".join(missing))


def with_overrides(experiment: Experiment, max_steps: int | None, eval_every: int | None) -> tuple[Experiment, str]:
    """The experiment with the command line's schedule overrides (None keeps the profile's), and a note when a
    shorter --max-steps scaled the evaluation interval down to keep the profile's number of rounds."""
    note, steps = "", max_steps or experiment.training.max_steps
    if eval_every is not None and eval_every > steps:
        where = f"--max-steps {steps}" if max_steps else f"the profile's max_steps ({steps})"
        raise UserError(f"--eval-every {eval_every} is more than {where}; give --eval-every {max(1, steps // 4)} "
                        f"(any value up to {steps})")  # fmt: skip
    if max_steps is not None and eval_every is None and experiment.eval_every > max_steps:
        rounds = experiment.training.max_steps // experiment.eval_every
        eval_every = -(-max_steps // rounds)
        note = (
            f"--max-steps {max_steps} is shorter than eval_every ({experiment.eval_every}): evaluating every "
            f"{eval_every} steps instead, the profile's {rounds} rounds scaled down; --eval-every N chooses"
        )
    # Both overrides in one replace: validation sees the new max_steps together with the new eval_every.
    training = experiment.training
    if max_steps is not None:
        training = dataclasses.replace(training, max_steps=max_steps)
    return dataclasses.replace(experiment, training=training, eval_every=eval_every or experiment.eval_every), note


def parse_settings(items: list[str]) -> dict[str, str]:
    """`KEY=VALUE` words (from the command line or a W&B sweep agent) as a dict, in order."""
    if bad := [i for i in items if "=" not in i or not i.partition("=")[0]]:
        raise UserError(f"settings must look like KEY=VALUE (e.g. lora.r=16), got {', '.join(map(repr, bad))}")
    return dict(i.split("=", 1) for i in items)


def _value(text: str) -> object:
    try:
        return ast.literal_eval(text)
    except (ValueError, SyntaxError):
        return text  # a bare word is a string


def with_settings(experiment: Experiment, settings: Mapping[str, str]) -> Experiment:
    """The experiment with `KEY=VALUE` settings applied: a field of a section (`lora.r=16`,
    `training.learning_rate=1e-4`, `generation.max_new_tokens=32`), a top-level field (`eval_every=20`), or
    `cleaning=NAME`, one of `Experiment.cleaning_variants`. Every value is validated like the experiment file's."""
    for key, text in settings.items():
        if key == "cleaning":
            if text not in experiment.cleaning_variants:
                known = ", ".join(sorted(experiment.cleaning_variants)) or "none declared"
                raise UserError(f"setting cleaning={text}: not in Experiment.cleaning_variants ({known})")
            experiment = dataclasses.replace(experiment, cleaning=experiment.cleaning_variants[text])
            continue
        section, _, name = key.rpartition(".")
        owner = getattr(experiment, section, None) if section else experiment
        fields = {f.name for f in dataclasses.fields(owner)} if dataclasses.is_dataclass(owner) else set()
        if "." in section or name not in fields or name in ("name", "cleaning_variants", "scenarios", "rubrics"):
            raise UserError(f"setting {key}: not a field that can be set (e.g. lora.r, training.learning_rate, "
                            "training.seed, generation.max_new_tokens, eval_every, cleaning)")  # fmt: skip
        changed = dataclasses.replace(owner, **{name: _value(text)})
        experiment = dataclasses.replace(experiment, **{section: changed}) if section else changed
    return experiment


def gate_spec(experiment: Experiment) -> GateSpec:
    if experiment.gate is None:
        raise UserError(f"experiment {experiment.name!r} declares no gate (Experiment.gate = GateSpec(...))")
    return experiment.gate


def gate_experiment(experiment: Experiment) -> Experiment:
    """The cpu profile with the gate's short schedule (the gate sets each fine-tune's seed and evaluates at the end)."""
    gate, cpu = gate_spec(experiment), experiment.for_profile("cpu")
    training = dataclasses.replace(cpu.training, max_steps=gate.max_steps, seed=gate.seed, save_steps=gate.max_steps,
                                   warmup_steps=min(cpu.training.warmup_steps, gate.max_steps))  # fmt: skip
    return dataclasses.replace(cpu, training=training, eval_every=gate.max_steps)
