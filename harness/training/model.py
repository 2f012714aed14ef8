"""Loading the model an experiment names, set up for training and batched generation."""

from __future__ import annotations

from typing import Any

from harness import distributed
from harness.errors import UserError
from harness.spec.experiment import Experiment, ModelSpec
from harness.spec.profiles import resolve_model_path


def check_quantization(spec: ModelSpec, cuda: bool) -> None:
    """QLoRA needs CUDA and bitsandbytes: say so in one line before anything is created."""
    if spec.quantization is None:
        return
    if not cuda:
        raise UserError(f"ModelSpec.quantization={spec.quantization!r} loads through bitsandbytes, which needs CUDA; "
                        "this machine has none (drop quantization, or run the cpu profile: --profile cpu)")  # fmt: skip
    try:
        import bitsandbytes  # noqa: F401
    except ImportError:
        raise UserError(
            f"ModelSpec.quantization={spec.quantization!r} needs bitsandbytes: pip install bitsandbytes"
        ) from None


def _quantized(spec: ModelSpec, dtype: Any) -> dict[str, Any]:
    """from_pretrained arguments of a QLoRA base model: 4-bit NF4 with double quantization, or 8-bit."""
    import os

    from transformers import BitsAndBytesConfig

    if spec.quantization == "4bit":
        config = BitsAndBytesConfig(load_in_4bit=True, bnb_4bit_quant_type="nf4", bnb_4bit_use_double_quant=True,
                                    bnb_4bit_compute_dtype=dtype)  # fmt: skip
    else:
        config = BitsAndBytesConfig(load_in_8bit=True)
    return {"quantization_config": config, "device_map": {"": int(os.environ.get("LOCAL_RANK", "0"))}}


def _sharded() -> dict[str, Any]:
    """from_pretrained arguments that shard the base weights over every process (transformers applies FSDP2's
    fully_shard per decoder layer and to the whole model; gloo on CPU, nccl on CUDA). The LoRA weights added later
    stay whole on every rank; the Trainer broadcasts them from rank 0 and averages their gradients."""
    from transformers.distributed import DistributedConfig

    return {"distributed_config": DistributedConfig(fsdp_size=distributed.world_size())}


def load(spec: ModelSpec, device: str, gradient_checkpointing: bool = False, fsdp: bool = False) -> tuple[Any, Any]:
    """The model (train mode, on `device`) and its tokenizer set up for left-padded batched generation; with `fsdp`
    and several processes, the base weights sharded across them by transformers (FSDP2 `fully_shard`)."""
    import torch
    from transformers import AutoModelForCausalLM, AutoTokenizer
    from transformers.utils import logging

    logging.disable_progress_bar()
    check_quantization(spec, device == "cuda")
    path = resolve_model_path(spec)
    dtype = getattr(torch, spec.dtype) if device == "cuda" else torch.float32
    quantized = _quantized(spec, dtype) if spec.quantization else {}
    sharded = _sharded() if fsdp and distributed.world_size() > 1 else {}
    try:
        tokenizer = AutoTokenizer.from_pretrained(path)
        model = AutoModelForCausalLM.from_pretrained(path, dtype=dtype, **quantized, **sharded)
    except OSError as exc:
        raise UserError(f"cannot load model {spec.name_or_path!r}: {str(exc).splitlines()[0]}") from exc
    if quantized:  # k-bit weights stay frozen; norms in float32 and input grads on, as peft's QLoRA recipe does
        from peft import prepare_model_for_kbit_training

        model = prepare_model_for_kbit_training(model, use_gradient_checkpointing=gradient_checkpointing)
    tokenizer.padding_side = "left"
    if tokenizer.pad_token is None:
        tokenizer.pad_token = tokenizer.eos_token
    model.generation_config.pad_token_id = tokenizer.pad_token_id
    if not quantized and not sharded:  # bitsandbytes or FSDP placed the weights already
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
    if context is None or (experiment.generation.chat_template and not tokenizer.chat_template):
        return  # (a missing chat template is refused, with its own line, when the model loads)
    max_new = experiment.generation.max_new_tokens
    for scenario in experiment.scenarios:
        if (need := most_tokens(scenario, experiment.generation, tokenizer)) > context:
            raise UserError(
                f"Scenario {scenario.name!r}: its last turn can need {need} tokens (the prompt with {scenario.turns} "
                f"turns of up to GenerationSpec.max_new_tokens={max_new}) but {experiment.model.name_or_path} reads "
                f"at most {context}; use fewer turns, a shorter topic or a smaller max_new_tokens"
            )
