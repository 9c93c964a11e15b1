"""Callbacks of one-shot trainers. The trainer calls ``build(trainer)`` once, then
``on_epoch_begin/end(epoch)`` around each epoch and ``on_batch_begin/end(epoch, step)`` around
each weight-training batch (NNI v1.9 never called the batch hooks). ``state_dict`` /
``load_state_dict`` go into the trainer's checkpoint, so schedulers resume where they were."""

from __future__ import annotations

import os
from pathlib import Path
from typing import Any

__all__ = ["Callback", "LRSchedulerCallback", "ArchitectureCheckpoint", "ModelCheckpoint"]


class Callback:
    def build(self, trainer: Any) -> None:
        self.trainer = trainer

    def on_epoch_begin(self, epoch: int) -> None:
        pass

    def on_epoch_end(self, epoch: int) -> None:
        pass

    def on_batch_begin(self, epoch: int, step: int) -> None:
        pass

    def on_batch_end(self, epoch: int, step: int) -> None:
        pass

    def state_dict(self) -> dict[str, Any]:
        return {}

    def load_state_dict(self, state: dict[str, Any]) -> None:
        pass


class LRSchedulerCallback(Callback):
    """``scheduler.step()`` at each epoch end (``mode="epoch"``) or batch end (``"batch"``)."""

    def __init__(self, scheduler: Any, mode: str = "epoch"):
        if mode not in ("epoch", "batch"):
            raise ValueError(f"mode must be 'epoch' or 'batch', got {mode!r}")
        self.scheduler = scheduler
        self.mode = mode

    def on_epoch_end(self, epoch: int) -> None:
        if self.mode == "epoch":
            self.scheduler.step()

    def on_batch_end(self, epoch: int, step: int) -> None:
        if self.mode == "batch":
            self.scheduler.step()

    def state_dict(self) -> dict[str, Any]:
        return {"scheduler": self.scheduler.state_dict()}

    def load_state_dict(self, state: dict[str, Any]) -> None:
        self.scheduler.load_state_dict(state["scheduler"])


class ArchitectureCheckpoint(Callback):
    """Writes ``export()`` to ``<checkpoint_dir>/epoch_<n>.json`` after each epoch."""

    def __init__(self, checkpoint_dir: str | os.PathLike[str]):
        self.checkpoint_dir = Path(checkpoint_dir)

    def on_epoch_end(self, epoch: int) -> None:
        self.checkpoint_dir.mkdir(parents=True, exist_ok=True)
        self.trainer.export(file=self.checkpoint_dir / f"epoch_{epoch}.json")


class ModelCheckpoint(Callback):
    """Saves the whole trainer state (weights, architecture parameters, controller, optimizers,
    schedulers, random states, epoch) to ``<checkpoint_dir>/epoch_<n>.pt`` and ``last.pt``
    after each epoch; ``trainer.load_checkpoint(dir / "last.pt")`` resumes. Under
    torch.distributed every rank calls it and rank 0 writes."""

    def __init__(self, checkpoint_dir: str | os.PathLike[str], keep_every_epoch: bool = False):
        self.checkpoint_dir = Path(checkpoint_dir)
        self.keep_every_epoch = keep_every_epoch

    def on_epoch_end(self, epoch: int) -> None:
        path = self.trainer.save_checkpoint(self.checkpoint_dir / "last.pt")
        if self.keep_every_epoch and getattr(self.trainer, "rank", 0) == 0:
            (self.checkpoint_dir / f"epoch_{epoch}.pt").write_bytes(path.read_bytes())
