"""Defaults that adapt to the length of a run, so that a user who tunes nothing gets a search
whose architecture parameters really move, whether the run has 100 steps or 100,000.

The published learning rates of architecture parameters were set for long runs: DARTS's Adam at
3e-4 ran 50 epochs x 391 steps on CIFAR-10, about 19,550 steps, so alpha could move about 6 (Adam
moves a parameter by about its learning rate per step when gradients agree). On a CPU-sized run
of a few hundred steps the same learning rate leaves alpha where it started, and the export is
decided by initialisation noise. ``arch_learning_rate`` keeps the reachable distance instead:
the published rate scaled up by published steps / this run's steps (never below the published
rate). ``warmup_epochs`` is the weight-only share of the run that the literature uses before
architecture steps begin (P-DARTS / PC-DARTS: 15 of 50 epochs; here a quarter).
"""

from __future__ import annotations

__all__ = ["DARTS_REFERENCE", "arch_learning_rate", "warmup_epochs"]

#: (learning rate, steps) of DARTS's architecture optimizer in the paper's CIFAR-10 search
DARTS_REFERENCE = (3e-4, 50 * 391)
MAX_ARCH_LR = 0.1


def arch_learning_rate(steps: int, reference: tuple[float, int] = DARTS_REFERENCE) -> float:
    """The architecture learning rate for a run of ``steps`` architecture steps."""
    lr, ref_steps = reference
    return min(MAX_ARCH_LR, max(lr, lr * ref_steps / max(1, steps)))


def warmup_epochs(num_epochs: int) -> int:
    """Weight-only epochs before architecture steps: a quarter of the run."""
    return num_epochs // 4


class ArchitectureSchedule:
    """For trainers with architecture steps (DARTS, GDAS, ProxylessNAS): ``warmup_epochs`` and
    ``arc_learning_rate`` from the trainer's own values, or, when those are None, from the run's
    length (``warmup_epochs()`` / ``arch_learning_rate()`` against ``ARC_LR_REFERENCE``)."""

    ARC_LR_REFERENCE: tuple[float, int] = DARTS_REFERENCE
    _warmup_epochs: int | None
    _arc_learning_rate: float | None

    @property
    def warmup_epochs(self) -> int:
        if self._warmup_epochs is None:
            return warmup_epochs(self.num_epochs)  # type: ignore[attr-defined]
        return self._warmup_epochs

    @property
    def arc_learning_rate(self) -> float:
        if self._arc_learning_rate is not None:
            return self._arc_learning_rate
        epochs = self.num_epochs - self.warmup_epochs  # type: ignore[attr-defined]
        return arch_learning_rate(epochs * len(self.train_loader), self.ARC_LR_REFERENCE)  # type: ignore[attr-defined]
