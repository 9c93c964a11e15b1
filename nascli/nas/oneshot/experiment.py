"""``OneShotExperiment(model, trainer).run()``: the one-shot flow under the experiment API's
names (as NNI's RetiariiExperiment ran a one-shot trainer in-process)."""

from __future__ import annotations

from typing import Any

from torch import nn

from nascli.nas.oneshot.base import BaseOneShotTrainer

__all__ = ["OneShotExperiment"]


class OneShotExperiment:
    """Runs ``trainer.fit()`` in this process; no manager, no trials."""

    def __init__(self, model: nn.Module, trainer: BaseOneShotTrainer):
        if trainer.model is not model:
            raise ValueError("the trainer was built for another model")
        self.model = model
        self.trainer = trainer
        self.done = False

    def run(self) -> None:
        self.trainer.fit()
        self.done = True

    def export_top_models(self, top_k: int = 1) -> list[dict[str, Any]]:
        """The ``top_k`` best architectures, best first (trainers that rank several, SPOS and
        random search, give up to ``top_k``; the others give their one export)."""
        if not self.done:
            raise RuntimeError("run() the experiment before exporting")
        ranked = getattr(self.trainer, "export_top_models", None)
        if ranked is not None:
            return ranked(top_k)
        return [self.trainer.export()]
