"""Multi-process runs (torchrun, accelerate launch): which rank is the main one, and the few collectives the harness
needs. One process (no launcher) needs none of it: every function then works without torch.distributed.

Rank 0 owns the run directory, the run log and the W&B run; an evaluation round splits the scenarios across ranks,
gathers them on rank 0 in a fixed order and broadcasts the round's outcome, so every rank takes the same decisions.
"""

from __future__ import annotations

import datetime
import os
from collections.abc import Iterator
from contextlib import contextmanager
from typing import Any, TypeVar

T = TypeVar("T")
TIMEOUT_S = 60
"""How long a collective waits for a rank that stopped answering before it fails (a dead rank's peers exit)."""


def world_size() -> int:
    return int(os.environ.get("WORLD_SIZE", "1"))


def rank() -> int:
    return int(os.environ.get("RANK", "0"))


def is_main() -> bool:
    return rank() == 0


def unsupported_launch() -> str | None:
    """Why this launch's sharding engine cannot run the harness (one line), or None.

    Evaluation rounds generate on every rank inside `full_parameters`, which gathers FSDP2's shards (`fully_shard`).
    accelerate turns FSDP on only on GPUs (its AcceleratorState keeps DistributedType.MULTI_CPU on CPU), so there
    `--use_fsdp` would silently train plain DDP. FSDP1 (`FullyShardedDataParallel`) needs an accelerator in torch 2.13
    and its wrappers hide the model from the evaluator; DeepSpeed ZeRO-3 would need its own gather
    (`deepspeed.zero.GatheredParameters`). Neither is built.
    """
    if _flag("ACCELERATE_USE_DEEPSPEED"):
        return ("DeepSpeed is not supported: evaluation rounds cannot gather ZeRO-3's shards; shard with FSDP2 "
                "(TrainingSpec(fsdp=True)) or launch plain DDP")  # fmt: skip
    if not _flag("ACCELERATE_USE_FSDP"):
        return None
    import torch

    if not torch.cuda.is_available():
        return ("accelerate launch --use_fsdp: accelerate shards only on GPUs (here it would train plain DDP); set "
                "TrainingSpec(fsdp=True) for transformers' own FSDP2, or launch without --use_fsdp")  # fmt: skip
    if os.environ.get("FSDP_VERSION", "1") != "2":
        return ("accelerate launch --use_fsdp: only FSDP2 is supported (evaluation gathers fully_shard's shards); add "
                "--fsdp_version 2, or set TrainingSpec(fsdp=True)")  # fmt: skip
    return None


def _flag(variable: str) -> bool:
    return os.environ.get(variable, "").lower() in ("1", "true")


def sharding(fsdp_spec: bool) -> str | None:
    """Which engine shards this run's parameters, for the run log's header: "fsdp2" (TrainingSpec(fsdp=True):
    transformers' own fully_shard at load), "accelerate-fsdp2" (accelerate launch --use_fsdp), None (not sharded)."""
    if world_size() > 1 and fsdp_spec:
        return "fsdp2"
    if _flag("ACCELERATE_USE_FSDP"):
        return "accelerate-fsdp2"
    return None


def sharded(model: Any) -> int:
    """How many of `model`'s parameters are split across ranks (DTensors, as FSDP2 leaves them between forwards)."""
    from torch.distributed.tensor import DTensor

    return sum(isinstance(p, DTensor) for p in model.parameters())


def unresumable(header: dict[str, Any]) -> str | None:
    """Why a run with this run-log header cannot be resumed by this engine, or None."""
    if header.get("sharding") == "fsdp2":
        return ("the run sharded its model at load (TrainingSpec(fsdp=True)) and transformers keeps no optimizer "
                "state in such a run's checkpoints; start a new run")  # fmt: skip
    return None


@contextmanager
def full_parameters(model: Any) -> Iterator[None]:
    """Within this block every rank holds the full parameters of a sharded `model` and a forward pass makes no
    collective call, so ranks may run different numbers of forwards (a debate's decode loop ends rows early).

    For FSDP2 (`fully_shard`) every FSDP module is all-gathered once and kept gathered (its reshard-after-forward
    switched off); afterwards it is resharded and its setting restored. A model without FSDP modules is left as it
    is. Entering is a collective (every rank enters together); the full model must fit on each device meanwhile, as
    under TRL's `unwrap_model_for_generation` with ZeRO-3. Lock-step decoding (transformers' `synced_gpus`) would
    avoid that memory, at one collective per layer per token; not built.
    """
    from torch.distributed.fsdp import FSDPModule

    modules = [m for m in model.modules() if isinstance(m, FSDPModule)]
    if not modules:
        yield
        return
    # A group of modules sharded together (transformers' and accelerate's final norm + head) appears once per module.
    groups = list({id(g): g for m in modules for g in m._get_fsdp_state()._fsdp_param_groups}.values())
    saved = [group.post_forward_mesh_info for group in groups]  # None: keep the gathered parameters after forward
    for group in groups:
        group.post_forward_mesh_info = None
    try:
        for module in modules:  # module order: the same all-gathers on every rank
            module.unshard()
        yield
    finally:
        for group, info in zip(groups, saved, strict=True):
            group.post_forward_mesh_info = info
        for module in modules:
            module.reshard()


def init() -> str | None:
    """Join the launcher's process group (gloo on CPU, nccl on CUDA); the backend's name, or None for one process."""
    if world_size() == 1:
        return None
    import torch
    import torch.distributed as dist

    if not dist.is_initialized():
        cuda = torch.cuda.is_available()
        if cuda:
            torch.cuda.set_device(int(os.environ.get("LOCAL_RANK", "0")))
        dist.init_process_group("nccl" if cuda else "gloo", timeout=datetime.timedelta(seconds=TIMEOUT_S))
    return str(dist.get_backend())


def broadcast(value: T) -> T:
    """Rank 0's `value` on every rank."""
    if world_size() == 1:
        return value
    import torch.distributed as dist

    box = [value]
    dist.broadcast_object_list(box, src=0)
    return box[0]


def gather(value: Any) -> list[Any] | None:
    """Every rank's `value`, in rank order, on rank 0 (None on the other ranks)."""
    if world_size() == 1:
        return [value]
    import torch.distributed as dist

    out: list[Any] | None = [None] * world_size() if is_main() else None
    dist.gather_object(value, out, dst=0)
    return out


def any_rank(flag: bool) -> bool:
    """True on every rank when `flag` is true on any rank (a stop request on one rank stops them all)."""
    if world_size() == 1:
        return flag
    import torch
    import torch.distributed as dist

    tensor = torch.tensor([int(flag)], device="cuda" if dist.get_backend() == "nccl" else "cpu")
    dist.all_reduce(tensor, op=dist.ReduceOp.MAX)
    return bool(tensor.item())


def lost_peer(exc: BaseException) -> bool:
    """Whether `exc` says another rank died or stopped answering (gloo raises plain RuntimeErrors for it)."""
    import torch.distributed as dist

    text = str(exc)
    return world_size() > 1 and (
        isinstance(exc, dist.DistError) or any(s in text for s in ("Connection closed by peer", "gloo", "NCCL"))
    )


def shard(n: int) -> list[int]:
    """The indices of this rank's share of `n` items, every rank the same count: a short rank's last index is -1, a
    pad (at most one per rank), so all ranks make the same number of generation calls of the same size."""
    per_rank = -(-n // world_size())
    return [i if i < n else -1 for i in range(rank(), per_rank * world_size(), world_size())]
