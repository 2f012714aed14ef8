"""Multi-process runs (torchrun, accelerate launch): which rank is the main one, and the few collectives the harness
needs. One process (no launcher) needs none of it: every function then works without torch.distributed.

Rank 0 owns the run directory, the run log and the W&B run; an evaluation round splits the scenarios across ranks,
gathers them on rank 0 in a fixed order and broadcasts the round's outcome, so every rank takes the same decisions.
"""

from __future__ import annotations

import datetime
import os
from typing import Any, TypeVar

T = TypeVar("T")
TIMEOUT_S = 60
"""How long a collective waits for a rank that stopped answering before it fails (a dead rank's peers exit)."""
UNSUPPORTED = {
    "ACCELERATE_USE_FSDP": "FSDP",
    "ACCELERATE_USE_DEEPSPEED": "DeepSpeed",
}


def world_size() -> int:
    return int(os.environ.get("WORLD_SIZE", "1"))


def rank() -> int:
    return int(os.environ.get("RANK", "0"))


def is_main() -> bool:
    return rank() == 0


def unsupported_launch() -> str | None:
    """The sharding engine this launch asks for that in-training generation cannot run under yet, if any.

    Under FSDP or DeepSpeed ZeRO-3 every forward pass gathers parameter shards from all ranks, so a debate's decode
    loop (whose number of steps differs between ranks) would deadlock; until generation gathers the full parameters
    first, such launches are refused before anything is created.
    """
    for variable, engine in UNSUPPORTED.items():
        if os.environ.get(variable, "").lower() in ("1", "true"):
            return engine
    return None


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
