"""Loading the model an experiment names, and choosing the profile that can actually run here."""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path
from typing import Any

from harness.embedded import EMBEDDED_DIR
from harness.errors import UserError
from harness.experiment import EMBEDDED, Experiment, ModelSpec

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


def load(spec: ModelSpec, device: str) -> tuple[Any, Any]:
    """The model (train mode, on `device`) and its tokenizer set up for left-padded batched generation."""
    import torch
    from transformers import AutoModelForCausalLM, AutoTokenizer
    from transformers.utils import logging

    logging.disable_progress_bar()
    path = resolve_model_path(spec)
    dtype = getattr(torch, spec.dtype) if device == "cuda" else torch.float32
    try:
        tokenizer = AutoTokenizer.from_pretrained(path)
        model = AutoModelForCausalLM.from_pretrained(path, dtype=dtype)
    except OSError as exc:
        raise UserError(f"cannot load model {spec.name_or_path!r}: {str(exc).splitlines()[0]}") from exc
    tokenizer.padding_side = "left"
    if tokenizer.pad_token is None:
        tokenizer.pad_token = tokenizer.eos_token
    model.generation_config.pad_token_id = tokenizer.pad_token_id
    model.to(device)
    model.train()
    return model, tokenizer
