"""Process-group setup for ``torchrun`` (one or many machines) and the few collectives the
trainer needs.

``torchrun --nproc_per_node N -m core train ...`` sets RANK, WORLD_SIZE, LOCAL_RANK,
MASTER_ADDR and MASTER_PORT; :func:`init_distributed` reads them, picks NCCL on CUDA and
gloo otherwise, and pins each process to its local GPU. Without those variables it is a
single process and every helper here is a no-op.
"""

from __future__ import annotations

import os
from dataclasses import dataclass

import torch
import torch.distributed as dist

from core.device import resolve_device
from core.errors import TrainingError


@dataclass(frozen=True)
class DistContext:
    rank: int = 0  # this process among all of them
    world_size: int = 1  # number of processes
    local_rank: int = 0  # this process on its machine (its GPU index)
    backend: str | None = None  # "nccl", "gloo" or None (single process)

    @property
    def is_main(self) -> bool:
        """Rank 0: the only process that writes checkpoints and logs."""
        return self.rank == 0

    @property
    def enabled(self) -> bool:
        return self.world_size > 1


def launched_by_torchrun() -> bool:
    return int(os.environ.get("WORLD_SIZE", "1")) > 1


def init_distributed(device_name: str | None = None) -> tuple[DistContext, torch.device]:
    """(context, device) for this process; joins the process group when launched by torchrun."""
    if not launched_by_torchrun():
        return DistContext(), resolve_device(device_name)
    rank = int(os.environ["RANK"])
    world = int(os.environ["WORLD_SIZE"])
    local = int(os.environ.get("LOCAL_RANK", "0"))
    device = resolve_device(device_name)
    if device.type == "cuda":
        if local >= torch.cuda.device_count():
            raise TrainingError(
                f"LOCAL_RANK {local} but only {torch.cuda.device_count()} GPU(s) on this machine"
            )
        device = torch.device("cuda", local)
        torch.cuda.set_device(device)
        backend = "nccl"
    elif device.type == "mps":
        raise TrainingError("distributed training is not supported on MPS; use --device cpu")
    else:
        backend = "gloo"
    if not dist.is_initialized():
        dist.init_process_group(backend=backend, rank=rank, world_size=world)
    return DistContext(rank=rank, world_size=world, local_rank=local, backend=backend), device


def all_reduce_sum(tensor: torch.Tensor, ctx: DistContext) -> torch.Tensor:
    """Sum over ranks, in place (identity in a single process)."""
    if ctx.enabled:
        dist.all_reduce(tensor, op=dist.ReduceOp.SUM)
    return tensor


def all_gather_objects(obj, ctx: DistContext) -> list:
    if not ctx.enabled:
        return [obj]
    out = [None] * ctx.world_size
    dist.all_gather_object(out, obj)
    return out


def broadcast_object(obj, ctx: DistContext, src: int = 0):
    if not ctx.enabled:
        return obj
    box = [obj]
    dist.broadcast_object_list(box, src=src)
    return box[0]


def barrier(ctx: DistContext) -> None:
    if ctx.enabled:
        dist.barrier()


def shutdown(ctx: DistContext) -> None:
    if ctx.enabled and dist.is_initialized():
        dist.destroy_process_group()
