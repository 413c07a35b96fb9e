"""torchrun / DDP plumbing shared by every trainer (the device itself is chosen by ``mednext_fw.devices``).

A process started by ``torchrun`` (``WORLD_SIZE`` > 1 in the environment) joins the process group:
NCCL when it trains on CUDA, gloo otherwise. Without those variables everything here is a no-op.
"""
from __future__ import annotations

import os
from dataclasses import dataclass

import torch
import torch.distributed as dist

from mednext_fw.devices import select_device
from mednext_fw.errors import UsageError


@dataclass
class DistContext:
    rank: int = 0
    local_rank: int = 0
    world_size: int = 1
    initialised_here: bool = False

    @property
    def enabled(self) -> bool:
        return self.world_size > 1

    @property
    def is_main(self) -> bool:
        return self.rank == 0

    def barrier(self) -> None:
        if self.enabled:
            dist.barrier()

    def all_reduce_sum(self, tensor: torch.Tensor) -> torch.Tensor:
        if self.enabled:
            dist.all_reduce(tensor, op=dist.ReduceOp.SUM)
        return tensor

    def all_gather_int(self, value: int) -> list[int]:
        if not self.enabled:
            return [value]
        out: list[object] = [None] * self.world_size
        dist.all_gather_object(out, int(value))
        return [int(v) for v in out]

    def broadcast_object(self, obj):
        if not self.enabled:
            return obj
        box = [obj]
        dist.broadcast_object_list(box, src=0)
        return box[0]

    def shutdown(self) -> None:
        if self.initialised_here and dist.is_initialized():
            dist.destroy_process_group()


def init_distributed(device_preference: str = "auto") -> tuple[DistContext, torch.device]:
    world = int(os.environ.get("WORLD_SIZE", "1"))
    rank = int(os.environ.get("RANK", "0"))
    local_rank = int(os.environ.get("LOCAL_RANK", "0"))
    device = select_device(device_preference, local_rank)
    ctx = DistContext(rank=rank, local_rank=local_rank, world_size=world)
    if world > 1 and not dist.is_initialized():
        dist.init_process_group(backend="nccl" if device.type == "cuda" else "gloo")
        ctx.initialised_here = True
    return ctx, device


def shard(items: list, rank: int, world_size: int) -> list:
    """Round-robin share of ``items`` for ``rank`` (every item goes to exactly one rank)."""
    return list(items[rank::world_size])


def split_batch_size(global_batch: int, rank: int, world_size: int) -> int:
    if global_batch < world_size:
        raise UsageError(f"batch size {global_batch} is smaller than the number of processes {world_size}")
    base, rest = divmod(global_batch, world_size)
    return base + (1 if rank < rest else 0)


def rank_oversample(global_batch: int, oversample: float, rank: int, world_size: int) -> float:
    """This rank's share of foreground-forced samples so that the *global* batch keeps nnU-Net's ratio.

    Globally the last ``global_batch - round(global_batch * (1 - oversample))`` samples are forced; each
    rank owns a contiguous slice of the global batch and forces exactly the forced samples in it.
    """
    sizes = [split_batch_size(global_batch, r, world_size) for r in range(world_size)]
    start = sum(sizes[:rank])
    first_forced = round(global_batch * (1 - oversample))
    forced = sum(1 for j in range(start, start + sizes[rank]) if j >= first_forced)
    return forced / sizes[rank]
