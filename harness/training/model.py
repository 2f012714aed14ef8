"""Loading the model an experiment names, set up for training and batched generation, and checking it first."""

from __future__ import annotations

import sys
from pathlib import Path
from typing import Any

from harness import distributed
from harness.errors import UserError
from harness.spec.experiment import EMBEDDED, Experiment, ModelSpec
from harness.spec.profiles import resolve_model_path, weights_available

# Training a model this large on CPU (float32, a few cores) takes days per run and tens of GB: refused, not tried.
CPU_PARAMETER_LIMIT = 1_000_000_000
# One HEAD request, no retries: without a network the hub client would otherwise retry for half a minute.
HUB_TIMEOUT_S = 10


def _hub_config(name: str) -> Any:
    """The config of a hub model not yet on this machine, after one quick check that the hub can be reached."""
    from huggingface_hub import constants, get_hf_file_metadata, hf_hub_url
    from transformers import AutoConfig

    try:
        get_hf_file_metadata(hf_hub_url(name, "config.json"), timeout=HUB_TIMEOUT_S, retry_on_errors=False)
        return AutoConfig.from_pretrained(name)
    except Exception as exc:  # network, DNS, 404, gated repo: all mean the weights cannot be had now
        reason = str(exc).splitlines()[0] if str(exc) else type(exc).__name__
        raise UserError(f"cannot get model {name!r} from {constants.ENDPOINT} ({reason}); check the network and "
                        "the model id, or use --profile cpu") from None  # fmt: skip


def preflight(spec: ModelSpec, cuda: bool) -> Any:
    """Everything about the model that can be checked before a run directory exists, without loading weights: the
    hub is reachable when the weights must be downloaded, and the model fits the device. Returns the model's
    skeleton (meta device, no memory) for checks of its modules, e.g. the LoRA targets."""
    import torch
    from huggingface_hub import constants
    from transformers import AutoConfig, AutoModelForCausalLM

    path = resolve_model_path(spec)
    if weights_available(spec):
        config = AutoConfig.from_pretrained(path, local_files_only=True)
    elif Path(path).exists():
        raise UserError(f"ModelSpec.name_or_path: {path} holds no model weights (model.safetensors or "
                        "pytorch_model.bin); point it at a saved model or a hub id")  # fmt: skip
    elif constants.HF_HUB_OFFLINE:
        raise UserError(f"model {spec.name_or_path!r} is not on this machine and HF_HUB_OFFLINE is set; download it "
                        "where there is a network (hf download MODEL) or use --profile cpu")  # fmt: skip
    else:
        if distributed.is_main():
            print(f"harness: {spec.name_or_path} is not on this machine: it will be downloaded from "
                  f"{constants.ENDPOINT}", file=sys.stderr, flush=True)  # fmt: skip
        config = _hub_config(spec.name_or_path)
    try:
        with torch.device("meta"):
            skeleton = AutoModelForCausalLM.from_config(config)
    except ValueError as exc:
        raise UserError(f"model {spec.name_or_path!r} is not a causal LM transformers can train "
                        f"({str(exc).splitlines()[0]})") from None  # fmt: skip
    parameters = sum(p.numel() for p in skeleton.parameters())
    if not cuda and parameters > CPU_PARAMETER_LIMIT:
        raise UserError(
            f"{spec.name_or_path} has {parameters / 1e9:.1f}B parameters and there is no CUDA device: training it on "
            f"CPU in float32 needs over {parameters * 4 / 2**30:.0f} GiB and days per run; use a CUDA machine or "
            "--profile cpu"
        )
    if not weights_available(spec) and distributed.is_main():
        stored = getattr(config, "dtype", None) or getattr(config, "torch_dtype", None)
        size = parameters * (2 if str(stored).endswith(("float16", "bfloat16")) else 4) / 1e9
        print(f"harness: {spec.name_or_path}: {parameters / 1e9:.1f}B parameters, about {size:.1f} GB to download "
              f"into {constants.HF_HUB_CACHE} (once: later runs use the cache)", file=sys.stderr,
              flush=True)  # fmt: skip
    if not cuda and spec.name_or_path != EMBEDDED and distributed.is_main():
        print(f"harness: no CUDA device: training {spec.name_or_path} ({parameters / 1e6:,.0f}M parameters) on CPU "
              "in float32", file=sys.stderr, flush=True)  # fmt: skip
    return skeleton


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
    local = weights_available(spec)  # then no update check: offline, the hub client would retry for half a minute
    try:
        tokenizer = AutoTokenizer.from_pretrained(path, local_files_only=local)
        model = AutoModelForCausalLM.from_pretrained(path, dtype=dtype, local_files_only=local, **quantized, **sharded)
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

    if not weights_available(experiment.model):  # no network here: preflight says how the model will be had
        return
    path = resolve_model_path(experiment.model)
    try:
        config = AutoConfig.from_pretrained(path, local_files_only=True)
        tokenizer = AutoTokenizer.from_pretrained(path, local_files_only=True)
    except (OSError, ValueError, TypeError):  # (a tokenizer whose files are not all cached yet)
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


# Architectures peft has no LoRA default for, adapted like their nearest relative in peft's table.
_EXTRA_LORA_DEFAULTS = {"gpt_neox_japanese": ["query_key_value"]}


def lora_targets(experiment: Experiment, model: Any) -> list[str]:
    """The module names LoRA adapts: the experiment's, or peft's default for the model's architecture."""
    from peft.utils.constants import TRANSFORMERS_MODELS_TO_LORA_TARGET_MODULES_MAPPING as DEFAULTS

    names = {name.rsplit(".", 1)[-1] for name, _ in model.named_modules()}
    known = ", ".join(sorted(n for n in names if n and not n.isdigit()))
    if not experiment.lora.target_modules:
        model_type = model.config.model_type
        targets = DEFAULTS.get(model_type) or _EXTRA_LORA_DEFAULTS.get(model_type)
        if not targets:
            raise UserError(f"LoraSpec.target_modules: peft has no default for {model_type!r} models; name the "
                            f"modules to adapt (its modules are {known})")  # fmt: skip
        return list(targets)
    missing = [m for m in experiment.lora.target_modules if m not in names]
    if missing:
        raise UserError(f"LoraSpec.target_modules: {missing} not in the model; its modules are {known}")
    return list(experiment.lora.target_modules)


def lora_config(experiment: Experiment, model: Any) -> Any:
    from peft import LoraConfig

    return LoraConfig(
        r=experiment.lora.r,
        lora_alpha=experiment.lora.alpha,
        lora_dropout=experiment.lora.dropout,
        target_modules=lora_targets(experiment, model),
        task_type="CAUSAL_LM",
    )
