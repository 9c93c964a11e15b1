"""torch.distributed for one-shot trainers: joining the process group, and keeping what the
search decides identical on every rank.

Under ``torchrun`` (``WORLD_SIZE`` > 1) a trainer joins the process group itself unless the
user's script already did (backend ``nccl`` with CUDA, else ``gloo``). Model weights are trained
through DistributedDataParallel; architecture parameters and controllers are not model
parameters, so their gradients (or rewards) are averaged across ranks here, and sampled paths are
broadcast from rank 0, so every rank holds the same architecture state and exports the same
architecture.

A group the trainer created is also left cleanly when the process exits (``atexit``): a barrier,
so that no rank tears its connections down while another is still in a collective, then
``destroy_process_group`` while the interpreter is fully alive. Without it gloo's worker threads
and pending work outlived the interpreter's finalisation and rank 1 sometimes aborted ("terminate
called without an active exception", exit code -6 to torchrun). A group the user's script
created is the script's to destroy and is left alone. After an uncaught exception there is no
barrier (the other ranks may never reach it), only the local teardown.
"""

from __future__ import annotations

import atexit
import datetime
import logging
import os
import sys
from collections.abc import Iterable
from dataclasses import dataclass
from typing import Any

import torch
import torch.distributed as dist

from nascli.errors import UsageError

__all__ = ["Distributed", "join_process_group", "leave_process_group"]

log = logging.getLogger(__name__)

# How long the exit barrier waits for the other ranks before giving up on them.
EXIT_BARRIER_TIMEOUT = datetime.timedelta(seconds=300)
_created_group = False  # this process's default group was created here (and not yet left)


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
        _create_process_group("nccl" if torch.cuda.is_available() else "gloo")
    world = dist.get_world_size()
    if world <= 1 and not requested:
        return Distributed(False)
    return Distributed(True, dist.get_rank(), world, int(os.environ.get("LOCAL_RANK", "0")))


def _create_process_group(backend: str) -> None:
    global _created_group
    dist.init_process_group(backend)
    if not _created_group:
        atexit.register(leave_process_group)
    _created_group = True


def leave_process_group() -> None:
    """Leave the process group nascli created (barrier, then destroy); a no-op when nascli did
    not create it or it is gone. Registered with ``atexit`` when the group is created; safe to
    call earlier, on every rank, once collectives are over."""
    global _created_group
    if not _created_group:
        return
    _created_group = False
    if not dist.is_initialized():
        return
    failed = getattr(sys, "last_value", None) is not None  # an uncaught exception is ending us
    try:
        if not failed:
            if dist.get_backend() == "gloo":
                dist.monitored_barrier(timeout=EXIT_BARRIER_TIMEOUT)
            else:
                dist.barrier()
    except Exception as exc:  # a rank died or hangs: still tear down what is ours
        log.warning("leaving the process group: the exit barrier failed: %s", exc)
    try:
        dist.destroy_process_group()
    except Exception as exc:
        log.warning("leaving the process group: %s", exc)
