"""NNI v1.9's SPOS supernet pieces: ``SPOSSupernetTrainingMutator`` (uniform paths, optionally
within a FLOPs band) and ``SPOSSupernetTrainer`` (trains the supernet from the user's data
loaders with that mutator). The search is ``SPOSEvolution`` in a multi-trial experiment, as in
NNI, or ``trainer.export()`` (nascli's evolution on the trained supernet, ``SPOSTrainer``)."""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

import torch
from torch import nn
from torch.utils.data import DataLoader

from nascli.errors import UsageError
from nascli.nas.oneshot.adapters import LoaderData
from nascli.nas.oneshot.base import BaseOneShotTrainer
from nascli.nas.oneshot.spos import SPOSTrainer
from nascli.nas.random import RandomMutator

__all__ = ["SPOSSupernetTrainingMutator", "SPOSSupernetTrainer"]


class SPOSSupernetTrainingMutator(RandomMutator):
    """Uniform random paths; with ``flops_func`` (``decisions -> FLOPs``, decisions as
    ``sample_search()`` gives them), each sample first picks one of ``flops_bin_num`` equal bins
    of ``[flops_lb, flops_ub]`` at random and resamples (up to ``flops_sample_timeout`` times)
    until the path's FLOPs fall in it, so every FLOPs range is trained alike; after the timeout
    the last unconstrained sample is used."""

    def __init__(
        self,
        model: nn.Module,
        flops_func: Callable[[dict[str, Any]], float] | None = None,
        flops_lb: float | None = None,
        flops_ub: float | None = None,
        flops_bin_num: int = 7,
        flops_sample_timeout: int = 500,
    ):
        if flops_func is not None and (flops_lb is None or flops_ub is None):
            raise UsageError("SPOSSupernetTrainingMutator: flops_func needs flops_lb and flops_ub")
        if flops_func is not None and not flops_lb < flops_ub:  # type: ignore[operator]
            raise UsageError(f"flops_lb ({flops_lb}) must be below flops_ub ({flops_ub})")
        self._flops = (flops_func, flops_lb, flops_ub, flops_bin_num, flops_sample_timeout)
        super().__init__(model)

    def sample_search(self) -> dict[str, Any]:
        func, lb, ub, bins, timeout = self._flops
        if func is None:
            return super().sample_search()
        target = int(torch.randint(bins, (1,)))
        width = (ub - lb) / bins
        low, high = lb + target * width, lb + (target + 1) * width
        for _ in range(max(1, timeout)):
            candidate = super().sample_search()
            if low <= func(candidate) <= high:
                return candidate
        return candidate


class SPOSSupernetTrainer(SPOSTrainer):
    """NNI v1.9's ``SPOSSupernetTrainer(model, loss, metrics, optimizer, num_epochs,
    train_loader, valid_loader, mutator=None, batch_size=64, workers=4, device=None,
    log_frequency=None, callbacks=None)``: ``fit()`` trains the supernet, one path per step from
    ``mutator.reset()`` (default ``SPOSSupernetTrainingMutator(model)``), validating each epoch
    on a path of its own. ``batch_size`` / ``workers`` apply to the loaders nascli builds for
    BatchNorm recalibration. Unlike NNI's it runs on CPU too and moves batches to the device.
    ``export()`` searches the trained supernet (``SPOSTrainer``'s evolution; keywords of
    ``SPOSTrainer`` are accepted) and gives the best architecture found."""

    def __init__(
        self,
        model: nn.Module,
        loss: Any,
        metrics: Any,
        optimizer: torch.optim.Optimizer,
        num_epochs: int,
        train_loader: DataLoader,
        valid_loader: DataLoader,
        mutator: Any = None,
        batch_size: int = 64,
        workers: int = 0,
        device: Any = None,
        log_frequency: int | None = None,
        callbacks: Any = None,
        **kwargs: Any,
    ):
        self._loaders = LoaderData(train_loader, valid_loader)
        if mutator is None:
            mutator = SPOSSupernetTrainingMutator(model)
        super().__init__(model, loss, metrics, optimizer, num_epochs,
                         self._loaders.dataset(train_loader), mutator=mutator,
                         batch_size=batch_size, workers=workers, device=device,
                         log_frequency=log_frequency, callbacks=callbacks,
                         **kwargs)  # fmt: skip

    def _split(self, dataset: Any, dataset_valid: Any, fraction: float) -> None:
        self._loaders.install(self)

    def fit(self) -> None:
        """Train the supernet (no search: ``export()`` runs it when asked)."""
        BaseOneShotTrainer.fit(self)
