"""Turning free slots into committed trials: retries and other trials waiting to start, the
tuner's new proposals, proposals made ahead for short trials, and the end of the search.

Owned by the manager and called from its thread, inside its turn's transaction (every method
here writes to the store through it); the tuner is reached only through the ``TunerKeeper``.
A trial is committed (WAITING, its proposal with the tuner state that made it) before it starts.
"""

from __future__ import annotations

import logging
from collections.abc import Callable
from typing import Any

from nascli.errors import NoMoreTrialError, TunerFailedError
from nascli.experiment.ahead import ProposalsAhead
from nascli.experiment.config import ExperimentConfig
from nascli.experiment.starter import TrialStarter
from nascli.experiment.store import ExperimentStore, TrialRecord
from nascli.experiment.trials import Ledger
from nascli.experiment.tuner_keeper import TunerKeeper

__all__ = ["Proposals"]

log = logging.getLogger("nascli.manager")


class Proposals:
    """The trials to start next. ``busy()`` is how many trials run now (the manager's count).

    ``search_over`` is why no more trials are proposed (the budget, the tuner exhausted or
    failed); ``error`` is set when the search ended because of the tuner (the experiment then
    ends ERROR).
    """

    def __init__(
        self, store: ExperimentStore, config: ExperimentConfig, keeper: TunerKeeper,
        ledger: Ledger, starter: TrialStarter, ahead: ProposalsAhead, busy: Callable[[], int],
    ) -> None:  # fmt: skip
        self.store, self.config, self.keeper, self.ledger = store, config, keeper, ledger
        self.starter, self.ahead, self.busy = starter, ahead, busy
        self.pending: list[TrialRecord] = []  # committed WAITING, in start order
        self.unprepared: list[TrialRecord] = []  # proposed ahead, for ``prepare_ahead``
        self.search_over: str | None = None
        self.error: str | None = None
        self.next_seq = store.next_trial_seq()

    def can_propose(self) -> bool:
        return (
            self.search_over is None
            and self.keeper.next_parameter_id < self.config.max_trial_num
        )  # fmt: skip

    def fill(self, free: int, own_groups: set[int]) -> list[TrialRecord]:
        """Up to ``free`` trials to start now, pending ones first, then new proposals, with
        their GPUs reserved (``own_groups``: the running trials' process groups)."""
        ready: list[TrialRecord] = []
        while len(ready) < free:
            if self.pending and self.store.cancel_requested(self.pending[0].id):
                self.cancel_unstarted(self.pending.pop(0), "cancelled before it started")
                continue
            if not self.pending and not self.can_propose():
                if self.search_over is None:
                    self.end_search(self._budget_used(), bool(self.busy() or ready))
                break
            trial_id = self.pending[0].id if self.pending else str(self.next_seq)
            if not self.starter.reserve_gpus(trial_id, own_groups):
                break
            trial = self.pending.pop(0) if self.pending else self._propose(trial_id)
            if trial is None:
                self.starter.gpus.release(trial_id)
                break
            self.ahead.forget(trial.id)
            ready.append(trial)
            if self.search_over is None and not self.can_propose():
                self.end_search(self._budget_used(), True)
        return ready

    def propose_ahead(self, busy: int) -> None:
        """With every slot busy and recent trials short, propose now and write the trial's
        directory, so that it starts the moment an exit arrives (``ahead.py``)."""
        if not self.ahead.wanted(busy, len(self.pending), self.can_propose()):
            return
        trial = self._propose(str(self.next_seq))
        if trial is not None:
            self.starter.write_dir(trial)
            self.unprepared.append(trial)
            self.pending.append(trial)
            self.ahead.prepared(trial.id)
            if self.search_over is None and not self.can_propose():
                self.end_search(self._budget_used(), True)

    def prepare_ahead(self) -> None:
        """Get the trials proposed ahead ready to start (``starter.prepare``): called once the
        turn's trials are launched, so that a slot free now does not wait for it."""
        while self.unprepared:
            self.starter.prepare(self.unprepared.pop(0))

    def take_ahead(self, exits: int) -> list[TrialRecord]:
        """The trials proposed ahead to start now, one per exit that just arrived."""
        return self.ahead.take(self.pending, exits, lambda t: not self.store.cancel_requested(t.id))

    def retry(self, failed: TrialRecord) -> None:
        """Queue a new attempt of a FAILED trial's parameters."""
        attempts = self.config.max_trial_retries + 1
        self.pending.append(self.ledger.retry(failed, self.next_seq, attempts))
        self.next_seq += 1

    def tell(
        self, trial: TrialRecord, success: bool, final: Any, with_result: bool | None = None
    ) -> None:
        """Tell the tuner a trial ended (``final`` as its result first if it succeeded, or if
        ``with_result``: an early-stopped trial's last result); a failing tuner ends the search
        (ERROR)."""
        try:
            self.keeper.tell(trial.parameter_id, trial.parameters, success, final, with_result)
        except TunerFailedError as exc:
            self.tuner_failed(exc)

    def tuner_failed(self, exc: TunerFailedError) -> None:
        self.error = str(exc)
        self.keeper.checkpoint_next()
        if self.search_over is None:
            self.end_search(self.error)

    def end_search(self, reason: str, trials_left: bool | None = None) -> None:
        """No more proposals; the experiment is NO_MORE_TRIAL while trials still run."""
        self.search_over = reason
        self.store.add_event("no_more_trial", reason)
        log.info("%s", reason)
        if trials_left or (trials_left is None and (self.busy() or self.pending)):
            self.ledger.no_more_trials(reason)

    def cancel_unstarted(self, trial: TrialRecord, reason: str) -> None:
        self.starter.discard(trial.id)
        self.ledger.cancel(trial.id, reason)
        self.tell(trial, success=False, final=None)

    def fail_unstarted(self, trial: TrialRecord, reason: str) -> None:
        """A committed trial the service could not start: FAILED, and the tuner told."""
        self.ledger.fail(trial.id, reason)
        self.tell(trial, success=False, final=None)

    def cancel_pending(self, reason: str) -> None:
        while self.pending:
            self.cancel_unstarted(self.pending.pop(0), reason)

    def put_back(self, ready: list[TrialRecord]) -> None:
        """Trials ``fill`` returned that will not start now (the run stops): their GPUs are
        released and they wait first in line (to be cancelled with the pending ones)."""
        for trial in ready:
            self.starter.gpus.release(trial.id)
        self.pending[:0] = ready

    def _budget_used(self) -> str:
        return f"maxTrialNum {self.config.max_trial_num} reached"

    def _propose(self, trial_id: str) -> TrialRecord | None:
        """Ask the tuner; commit its proposal as a WAITING trial (None: no more proposals)."""
        try:
            parameter_id, parameters = self.keeper.ask()
        except NoMoreTrialError:
            self.end_search("the tuner has no more architectures to propose")
            return None
        except TunerFailedError as exc:
            self.tuner_failed(exc)
            return None
        trial = self.store.add_trial(trial_id, int(trial_id), parameter_id, parameters)
        self.next_seq = max(self.next_seq, int(trial_id) + 1)
        return trial
