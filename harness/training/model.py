"""Loading the model an experiment names, set up for training and batched generation."""

from __future__ import annotations

from typing import Any

from harness.errors import UserError
from harness.spec.experiment import Experiment, ModelSpec
from harness.spec.profiles import resolve_model_path


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


def check_context(experiment: Experiment) -> None:
    """Refuse, before any run directory exists, a scenario whose longest turn cannot fit the model's context window:
    every round would fail (or talk noise) while the run looked fine. A model not on disk yet is checked at load."""
    from transformers import AutoConfig, AutoTokenizer

    from harness.evaluation.debate import most_tokens

    path = resolve_model_path(experiment.model)
    try:
        config = AutoConfig.from_pretrained(path)
        tokenizer = AutoTokenizer.from_pretrained(path)
    except (OSError, ValueError):
        return
    keys = ("max_position_embeddings", "n_positions", "max_sequence_length", "seq_length")
    context = next((v for k in keys if isinstance(v := getattr(config, k, None), int)), None)
    if context is None:
        return
    max_new = experiment.generation.max_new_tokens
    for scenario in experiment.scenarios:
        if (need := most_tokens(scenario, max_new, tokenizer)) > context:
            raise UserError(
                f"Scenario {scenario.name!r}: its last turn can need {need} tokens (the prompt with {scenario.turns} "
                f"turns of up to GenerationSpec.max_new_tokens={max_new}) but {experiment.model.name_or_path} reads "
                f"at most {context}; use fewer turns, a shorter topic or a smaller max_new_tokens"
            )
