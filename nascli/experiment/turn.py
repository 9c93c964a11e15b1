"""The manager's unit of durability: a turn, everything it does between two waits.

What the manager's helpers write while a turn is open (trials' ends and metrics, what the tuner
was told and what it proposed, assessors' verdicts) commits in one transaction, together with
the tuner's state (``TunerKeeper.save``; a tuner that cannot be saved ends the search) and the
assessor's calls (``Assessment.save``). Trials early-stopped or killed in the turn
(``RunningTrials.to_stop``) are signalled only once it has committed, so a verdict is on disk
before its trial is stopped. A turn opened inside another joins it. Manager's thread only.
"""

from __future__ import annotations

from collections.abc import Iterator
from contextlib import contextmanager

from nascli.experiment.assessment import Assessment
from nascli.experiment.collector import RunningTrials
from nascli.experiment.proposals import Proposals
from nascli.experiment.services.base import TrainingService
from nascli.experiment.store import ExperimentStore

__all__ = ["Turns"]


class Turns:
    """``with turns():`` is one turn (see the module docstring)."""

    def __init__(
        self, store: ExperimentStore, assessment: Assessment, running: RunningTrials,
        service: TrainingService,
    ) -> None:  # fmt: skip
        self.store, self.assessment = store, assessment
        self.running, self.service = running, service
        self.proposals: Proposals | None = None  # set by the manager once the tuner is restored
        self._open = False

    @contextmanager
    def __call__(self) -> Iterator[None]:
        if self._open:
            yield
            return
        self._open = True
        try:
            with self.store.transaction():
                yield
                p = self.proposals
                if p is not None and (failure := p.keeper.save()) is not None:
                    p.tuner_failed(failure)
                self.assessment.save()
        finally:
            self._open = False
        stop, self.running.to_stop = self.running.to_stop, []
        for trial_id in stop:
            self.service.cancel(trial_id)
