"""torch.distributed for one-shot trainers: joining the process group, and keeping what the
search decides identical on every rank.

Under ``torchrun`` (``WORLD_SIZE`` > 1) a trainer joins the process group itself unless the
user's script already did (backend ``nccl`` with CUDA, else ``gloo``). Model weights are trained
through DistributedDataParallel; architecture parameters and controllers are not model
parameters, so their gradients (or rewards) are averaged across ranks here, and sampled paths are
broadcast from rank 0, so every rank holds the same architecture state and exports the same
architecture.
"""

from __future__ import annotations

import os
from collections.abc import Iterable
from dataclasses import dataclass
from typing import Any

import torch
import torch.distributed as dist

from nascli.errors import UsageError

__all__ = ["Distributed", "join_process_group"]


@dataclass(frozen=True)
class Distributed:
    """This process's place in the job (world size 1 when not distributed)."""

    enabled: bool
    rank: int = 0
    world_size: int = 1
    local_rank: int = 0

    @property
    def main(self) -> bool:
        return self.rank == 0

    def average_gradients(self, params: Iterable[torch.Tensor]) -> None:
        """Average ``.grad`` of ``params`` over ranks (no-op when not distributed)."""
        if not self.enabled:
            return
        for p in params:
            if p.grad is None:
                p.grad = torch.zeros_like(p)
            dist.all_reduce(p.grad)
            p.grad.div_(self.world_size)

    def average(self, value: float) -> float:
        if not self.enabled:
            return value
        t = torch.tensor([value], dtype=torch.float64)
        if dist.get_backend() == "nccl":
            t = t.cuda()
        dist.all_reduce(t)
        return float(t.item()) / self.world_size

    def broadcast(self, obj: Any) -> Any:
        """Rank 0's ``obj`` on every rank."""
        if not self.enabled:
            return obj
        box = [obj]
        dist.broadcast_object_list(box, src=0)
        return box[0]

    def broadcast_buffers(self, model: torch.nn.Module) -> None:
        """Rank 0's buffers (BatchNorm statistics, which each rank updated on its own shard)
        on every rank."""
        if self.enabled:
            for buffer in model.buffers():
                dist.broadcast(buffer, src=0)

    def barrier(self) -> None:
        if self.enabled:
            dist.barrier()


def join_process_group(requested: bool | None) -> Distributed:
    """``requested``: None = distributed when launched by torchrun (or a group exists), True =
    must be distributed, False = never."""
    if requested is False or not dist.is_available():
        return Distributed(False)
    if not dist.is_initialized():
        if int(os.environ.get("WORLD_SIZE", "1")) <= 1:
            if requested:
                raise UsageError(
                    "distributed=True needs a torch.distributed job: launch with torchrun "
                    "(it sets WORLD_SIZE, RANK, MASTER_ADDR, MASTER_PORT) or call "
                    "torch.distributed.init_process_group first"
                )
            return Distributed(False)
        dist.init_process_group("nccl" if torch.cuda.is_available() else "gloo")
    world = dist.get_world_size()
    if world <= 1 and not requested:
        return Distributed(False)
    return Distributed(True, dist.get_rank(), world, int(os.environ.get("LOCAL_RANK", "0")))
