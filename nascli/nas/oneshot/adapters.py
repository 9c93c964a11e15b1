"""Adapters behind NNI v1.9 trainer arguments that change what a loop iterates or computes,
kept out of the algorithms:

- ``StepsLoader(loader, steps)``: a loader of exactly ``steps`` batches per pass, cycling the
  underlying one (ENAS's ``child_steps``);
- ``AuxLoss(loss, aux_weight)``: a model that returns ``(logits, aux_logits)`` (an auxiliary
  head, in training) is scored ``loss(logits) + aux_weight * loss(aux_logits)`` (ENAS's
  ``aux_weight``); a plain output is scored ``loss(output)``;
- ``on_logits(fn)``: ``fn(output, target)`` called with the logits of such a tuple output;
- ``LoaderData(train_loader, valid_loader)``: the user's loaders as a trainer's data (v1.9's
  SPOS and ProxylessNAS trainers took loaders, not datasets).
"""

from __future__ import annotations

from collections.abc import Callable, Iterable, Iterator
from typing import Any

from nascli.errors import UsageError

__all__ = ["StepsLoader", "AuxLoss", "on_logits", "LoaderData"]


class StepsLoader:
    """``steps`` batches of ``loader`` per iteration, starting a new pass of ``loader`` when one
    ends. ``sampler`` is the underlying loader's (so epoch-seeded samplers still get their
    epoch)."""

    def __init__(self, loader: Iterable[Any], steps: int):
        if not isinstance(steps, int) or steps < 1:
            raise ValueError(f"steps must be a positive integer, got {steps!r}")
        self.loader = loader
        self.steps = steps

    @property
    def sampler(self) -> Any:
        return getattr(self.loader, "sampler", None)

    def __len__(self) -> int:
        return self.steps

    def __iter__(self) -> Iterator[Any]:
        done = 0
        while done < self.steps:
            empty = True
            for batch in self.loader:
                empty = False
                yield batch
                done += 1
                if done == self.steps:
                    return
            if empty:
                return


class AuxLoss:
    def __init__(self, loss: Callable[[Any, Any], Any], aux_weight: float):
        self.loss = loss
        self.aux_weight = aux_weight

    def __call__(self, output: Any, target: Any) -> Any:
        if isinstance(output, (tuple, list)):
            logits, aux = output[0], output[1] if len(output) > 1 else None
            value = self.loss(logits, target)
            if aux is not None and self.aux_weight:
                value = value + self.aux_weight * self.loss(aux, target)
            return value
        return self.loss(output, target)


def on_logits(fn: Callable[[Any, Any], Any]) -> Callable[[Any, Any], Any]:
    def call(output: Any, target: Any) -> Any:
        return fn(output[0] if isinstance(output, (tuple, list)) else output, target)

    return call


class LoaderData:
    """A trainer's data given as the user's loaders (v1.9's ``train_loader`` / ``valid_loader``)
    instead of datasets: weight steps iterate ``train_loader``; architecture steps, scoring and
    validation iterate ``valid_loader``. The loaders are used as they are (their batching,
    shuffling and augmentation); under torch.distributed they must shard the data themselves."""

    def __init__(self, train_loader: Any, valid_loader: Any):
        for name, loader in (("train_loader", train_loader), ("valid_loader", valid_loader)):
            if not hasattr(loader, "__iter__"):
                raise UsageError(f"{name} must be an iterable of (input, target) batches, "
                                 f"got {type(loader).__name__}")  # fmt: skip
        self.train_loader = train_loader
        self.valid_loader = valid_loader

    def dataset(self, loader: Any) -> Any:
        data = getattr(loader, "dataset", None)
        if data is None:
            raise UsageError("the loaders must be torch DataLoaders (with .dataset)")
        return data

    def install(self, trainer: Any) -> None:
        trainer.dataset_weights = self.dataset(self.train_loader)
        trainer.dataset_arch = self.dataset(self.valid_loader)
        trainer.dataset_valid = trainer.dataset_arch
        trainer.train_loader = self.train_loader
        trainer.arch_loader = self.valid_loader
        trainer.valid_loader = self.valid_loader
