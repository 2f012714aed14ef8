"""Loading the model an experiment names, set up for training and batched generation, and checking it first."""

from __future__ import annotations

import sys
from pathlib import Path
from typing import Any

from harness.errors import UserError
from harness.spec.experiment import EMBEDDED, LoraSpec, ModelSpec
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


def check_lora_targets(lora: LoraSpec, model: Any) -> None:
    """LoRA targets must name modules the model has; say which it has otherwise."""
    names = {name.rsplit(".", 1)[-1] for name, _ in model.named_modules()}
    missing = [m for m in lora.target_modules if m not in names]
    if missing:
        known = sorted(n for n in names if n and not n.isdigit())
        raise UserError(f"LoraSpec.target_modules: {missing} not in the model; its modules are {', '.join(known)}")


def preflight(spec: ModelSpec, lora: LoraSpec, cuda: bool) -> None:
    """Everything about the model that can be checked before a run directory exists, without loading weights:
    the hub is reachable when the weights must be downloaded, the model fits the device, the LoRA targets exist."""
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
        print(f"harness: {spec.name_or_path} is not on this machine: it will be downloaded from {constants.ENDPOINT}",
              file=sys.stderr, flush=True)  # fmt: skip
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
    check_lora_targets(lora, skeleton)
    if not weights_available(spec):
        stored = getattr(config, "dtype", None) or getattr(config, "torch_dtype", None)
        size = parameters * (2 if str(stored).endswith(("float16", "bfloat16")) else 4) / 1e9
        print(f"harness: {spec.name_or_path}: {parameters / 1e9:.1f}B parameters, about {size:.1f} GB to download "
              f"into {constants.HF_HUB_CACHE} (once: later runs use the cache)", file=sys.stderr,
              flush=True)  # fmt: skip
    if not cuda and spec.name_or_path != EMBEDDED:
        print(f"harness: no CUDA device: training {spec.name_or_path} ({parameters / 1e6:,.0f}M parameters) on CPU "
              "in float32", file=sys.stderr, flush=True)  # fmt: skip


def load(spec: ModelSpec, device: str) -> tuple[Any, Any]:
    """The model (train mode, on `device`) and its tokenizer set up for left-padded batched generation."""
    import torch
    from transformers import AutoModelForCausalLM, AutoTokenizer
    from transformers.utils import logging

    logging.disable_progress_bar()
    path = resolve_model_path(spec)
    dtype = getattr(torch, spec.dtype) if device == "cuda" else torch.float32
    local = weights_available(spec)  # then no update check: offline, the hub client would retry for half a minute
    try:
        tokenizer = AutoTokenizer.from_pretrained(path, local_files_only=local)
        model = AutoModelForCausalLM.from_pretrained(path, dtype=dtype, local_files_only=local)
    except OSError as exc:
        raise UserError(f"cannot load model {spec.name_or_path!r}: {str(exc).splitlines()[0]}") from exc
    tokenizer.padding_side = "left"
    if tokenizer.pad_token is None:
        tokenizer.pad_token = tokenizer.eos_token
    model.generation_config.pad_token_id = tokenizer.pad_token_id
    model.to(device)
    model.train()
    return model, tokenizer
