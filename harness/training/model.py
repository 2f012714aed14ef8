"""Loading the model an experiment names, set up for training and batched generation."""

from __future__ import annotations

from typing import Any

from harness.errors import UserError
from harness.spec.experiment import ModelSpec
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
