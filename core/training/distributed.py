"""Process-group setup for ``torchrun`` (one or many machines) and the few collectives the
trainer needs.

``torchrun --nproc_per_node N -m core train ...`` sets RANK, WORLD_SIZE, LOCAL_RANK,
MASTER_ADDR and MASTER_PORT; :func:`init_distributed` reads them, picks NCCL on CUDA and
gloo otherwise, and pins each process to its local GPU (``device_id``, which also binds the
NCCL communicator to it at once). Without those variables it is a single process and every
helper here is a no-op.

Set-up waits: rank 0 alone trains the tokenizer and tokenizes the corpus while the others
wait in :func:`barrier`, which can take far longer than NCCL's 10-minute collective timeout on
a large corpus. So barriers run on a separate CPU (gloo) group with a long timeout
(:data:`SETUP_TIMEOUT`, ``BERTSCOPE_SETUP_TIMEOUT_MIN`` to change it), never on NCCL.
"""

from __future__ import annotations

import os
from dataclasses import dataclass
from datetime import timedelta

import torch
import torch.distributed as dist

from core.device import resolve_device
from core.errors import InputError, TrainingError

# How long a rank waits in a set-up barrier for rank 0 (tokenizer training, tokenization).
SETUP_TIMEOUT = timedelta(minutes=int(os.environ.get("BERTSCOPE_SETUP_TIMEOUT_MIN", "360")))
_setup_group = None  # the gloo group barriers run on


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
    if device.type == "cuda" and device.index is not None:
        raise InputError(
            f"--device {device_name} cannot be used under torchrun: each process takes the GPU "
            "of its LOCAL_RANK; use --device cuda (choose GPUs with CUDA_VISIBLE_DEVICES)"
        )
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
    global _setup_group
    if not dist.is_initialized():
        dist.init_process_group(
            backend=backend,
            rank=rank,
            world_size=world,
            device_id=device if device.type == "cuda" else None,
        )
        _setup_group = dist.new_group(backend="gloo", timeout=SETUP_TIMEOUT)
    return DistContext(rank=rank, world_size=world, local_rank=local, backend=backend), device


def all_reduce_sum(tensor: torch.Tensor, ctx: DistContext) -> torch.Tensor:
    """Sum over ranks, in place (identity in a single process)."""
    if ctx.enabled:
        dist.all_reduce(tensor, op=dist.ReduceOp.SUM)
    return tensor


def comm_device(ctx: DistContext, device: torch.device) -> torch.device:
    """Where a tensor for a collective must live: the GPU under NCCL, else the CPU."""
    return device if ctx.backend == "nccl" else torch.device("cpu")


def all_reduce_host(values: list[float], ctx: DistContext, device: torch.device) -> list[float]:
    """Sum host numbers over ranks in float64 (through the GPU under NCCL); in a single
    process the numbers themselves, no tensor made."""
    if not ctx.enabled:
        return list(values)
    moved = torch.tensor(values, dtype=torch.float64, device=comm_device(ctx, device))
    dist.all_reduce(moved, op=dist.ReduceOp.SUM)
    return moved.tolist()


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
    """Wait for every rank, on the long-timeout CPU group (see the module docstring)."""
    if ctx.enabled:
        dist.barrier(group=_setup_group)


def shutdown(ctx: DistContext) -> None:
    global _setup_group
    if ctx.enabled and dist.is_initialized():
        dist.destroy_process_group()
    _setup_group = None
