"""torchrun / DDP plumbing and device selection, shared by every trainer.

A process started by ``torchrun`` (``WORLD_SIZE`` > 1 in the environment) joins the process group:
NCCL when it trains on CUDA, gloo otherwise. Without those variables everything here is a no-op.
"""
from __future__ import annotations

import os
from dataclasses import dataclass

import torch
import torch.distributed as dist

from mednext_fw.errors import UsageError, UserError


class DeviceError(UserError, ValueError):
    pass


def select_device(preference: str = "auto", local_rank: int = 0) -> torch.device:
    preference = preference.lower()
    if preference == "auto":
        if torch.cuda.is_available():
            preference = "cuda"
        elif getattr(torch.backends, "mps", None) is not None and torch.backends.mps.is_available():
            preference = "mps"
        else:
            preference = "cpu"
    if preference == "cuda":
        if not torch.cuda.is_available():
            raise DeviceError("--device cuda was requested but no CUDA GPU is visible to torch")
        index = local_rank % torch.cuda.device_count()
        torch.cuda.set_device(index)
        return torch.device("cuda", index)
    if preference == "mps":
        if getattr(torch.backends, "mps", None) is None or not torch.backends.mps.is_available():
            raise DeviceError("--device mps was requested but MPS is not available")
        return torch.device("mps")
    if preference == "cpu":
        return torch.device("cpu")
    raise DeviceError(f"unknown device '{preference}' (choose auto, cpu, cuda or mps)")


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
