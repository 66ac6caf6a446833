"""Distributed data parallel: one process per device, started by `torchrun` (which sets RANK,
LOCAL_RANK and WORLD_SIZE). gloo on CPU, nccl on CUDA. Every rank computes; sums are reduced
so every rank holds the same metrics; only rank 0 writes files or prints.
"""

from __future__ import annotations

import os
from dataclasses import dataclass
from typing import Any

import torch
import torch.distributed as dist

from timm_compound.errors import CompoundError


@dataclass
class World:
    """This process's place among the training processes (a single process is a world of one)."""

    rank: int = 0
    world_size: int = 1
    local_rank: int = 0
    device: torch.device = torch.device("cpu")
    owns_group: bool = False

    @property
    def primary(self) -> bool:
        return self.rank == 0

    @property
    def distributed(self) -> bool:
        return self.world_size > 1

    def sum(self, values: list[float]) -> list[float]:
        """Element-wise sum of `values` over all ranks (float64, so counts stay exact)."""
        if not self.distributed:
            return list(values)
        tensor = torch.tensor(values, dtype=torch.float64, device=self.device)
        dist.all_reduce(tensor, op=dist.ReduceOp.SUM)
        return tensor.tolist()

    def sum_tensor(self, tensor: torch.Tensor) -> torch.Tensor:
        if self.distributed:
            tensor = tensor.to(self.device)
            dist.all_reduce(tensor, op=dist.ReduceOp.SUM)
        return tensor

    def from_primary(self, value: Any) -> Any:
        """Rank 0's `value` on every rank (a decision, or an error found by the only rank that writes)."""
        if not self.distributed:
            return value
        box = [value]
        dist.broadcast_object_list(box, src=0)
        return box[0]

    def gather(self, value: Any) -> list[Any]:
        """Every rank's `value`, in rank order, on every rank."""
        if not self.distributed:
            return [value]
        values: list[Any] = [None] * self.world_size
        dist.all_gather_object(values, value)
        return values

    def barrier(self) -> None:
        if self.distributed:
            dist.barrier()

    def close(self) -> None:
        if self.owns_group and dist.is_initialized():
            dist.destroy_process_group()


def resolve_device(device: str | torch.device | None) -> torch.device:
    """None -> cuda when available, else cpu; 'cuda' without a GPU is an error, not a silent CPU run."""
    if device is None:
        return torch.device("cuda" if torch.cuda.is_available() else "cpu")
    try:
        chosen = torch.device(device)
    except (RuntimeError, TypeError):
        raise CompoundError(f"device must be 'cpu', 'cuda' or 'cuda:N', got {device!r}") from None
    if chosen.type == "cuda" and not torch.cuda.is_available():
        raise CompoundError(f"device {device!r} asked for, but torch sees no CUDA GPU")
    if chosen.type not in ("cpu", "cuda"):
        raise CompoundError(f"device must be 'cpu', 'cuda' or 'cuda:N', got {device!r}")
    return chosen


def setup(device: torch.device) -> World:
    """Join (or start) the process group torchrun describes; a world of one otherwise."""
    size = int(os.environ.get("WORLD_SIZE", "1"))
    if not dist.is_initialized() and size <= 1:
        return World(device=device)
    local_rank = int(os.environ.get("LOCAL_RANK", "0"))
    if device.type == "cuda":
        device = torch.device("cuda", local_rank)
        torch.cuda.set_device(device)
    owns = False
    if not dist.is_initialized():
        dist.init_process_group(backend="nccl" if device.type == "cuda" else "gloo")
        owns = True
    return World(dist.get_rank(), dist.get_world_size(), local_rank, device, owns)
