"""The experiment manager: ask the tuner, launch trials, collect their results, tell the tuner.

One ``Manager`` runs one experiment, in the detached daemon (``nascli/cli/daemon.py``) or in the
foreground (``nascli create --foreground``). It sleeps in its ``Inbox``, woken by a trial's exit
or ``request_stop``, and at most every ``tick`` seconds to read intermediate metrics and check
the ``Budget``. Each turn of ``_loop`` is one transaction (``turn.Turns``: the ended trials, what
the tuner was told, the proposals for the freed slots, the tuner's state); then the proposed
trials start and their pids are committed. Its helpers own the rest: ``session`` taking and
resuming the experiment, ``trials.Ledger`` every status change, ``Proposals`` what starts next
(through the ``TunerKeeper``; ``ProposalsAhead`` for short trials), ``TrialStarter`` trial
directories, environments and GPUs, ``RunningTrials`` the running trials' metrics, assessment,
starts and exits, the ``TrainingService`` where trials run.

Durability (``kill -9`` at any point loses nothing): a proposal commits with the tuner state that
made it, before its trial starts; a trial's end, metrics and what the tuner was told commit
together (a crash before that leaves it RUNNING, ingested again from its files on resume).
"""

from __future__ import annotations

import logging
import time
from collections.abc import Callable

from nascli.errors import NasCliError
from nascli.experiment import session
from nascli.experiment.ahead import AHEAD_BELOW, ProposalsAhead
from nascli.experiment.assessment import ASSESS_TIMEOUT, Assessment
from nascli.experiment.budget import Budget
from nascli.experiment.collector import Assess, RunningTrials
from nascli.experiment.config import ExperimentConfig
from nascli.experiment.containment import Containment
from nascli.experiment.inbox import Inbox
from nascli.experiment.prepare import gpu_allocator
from nascli.experiment.proposals import Proposals
from nascli.experiment.services import service_for
from nascli.experiment.services.base import ServiceFactory, TrialExited, TrialPlaced, TrialProcess
from nascli.experiment.starter import TrialStarter
from nascli.experiment.store import ExperimentStore, TrialRecord
from nascli.experiment.trials import ExperimentStatus, Ledger, TrialStatus, final_status
from nascli.experiment.tuner_keeper import TunerKeeper
from nascli.experiment.turn import Turns

__all__ = ["Manager", "DEFAULT_KILL_GRACE"]

log = logging.getLogger("nascli.manager")

DEFAULT_KILL_GRACE = 5.0
E, T = ExperimentStatus, TrialStatus


class Manager:
    """Runs one experiment to its end (DONE / ERROR), or until stopped (STOPPED), logging to
    the experiment's ``manager.log``.

    Args:
        store: the experiment's store (its config and search space are read from it).
        service: builds the training service from the manager's inbox (local by default).
        observer: called (in the manager's thread) after each turn with the trials that ended
            since the last call, e.g. to print them or redraw a view.
        tick: the longest sleep between looks at intermediate metrics and the clock.
        ahead_below: trials shorter than this (median of the recent ones, seconds) get the next
            proposal ready ahead (``ahead.py``); 0 turns that off.
        assess: an assessor's hook (``collector.Assess``); None: the config's ``assessor``
            (``assessment.Assessment``), or trials run to their end without one.
        assess_timeout: the longest an assessor call may take before early stopping is
            switched off for the run.
    """

    def __init__(
        self, store: ExperimentStore, service: ServiceFactory | None = None,
        observer: Callable[[list[TrialRecord]], None] | None = None, tick: float = 0.5,
        kill_grace: float = DEFAULT_KILL_GRACE, ahead_below: float = AHEAD_BELOW,
        assess: Assess | None = None, assess_timeout: float = ASSESS_TIMEOUT,
        start_token: str | None = None,
    ):  # fmt: skip
        self.store, self.ledger, self.inbox = store, Ledger(store), Inbox()
        self.start_token = start_token  # see ``control.start_manager``: a stop withdraws it
        exp = store.experiment()
        self.config = config = ExperimentConfig.from_dict(exp.config)
        self.service = (service or service_for(
            config, store.id, kill_grace, Containment(store.dir)))(self.inbox)  # fmt: skip
        self.observer, self.tick, self.kill_grace = observer, tick, kill_grace
        self.gpus = gpu_allocator(config)
        self.starter = TrialStarter(store, config, self.service, self.gpus)
        self.ahead = ProposalsAhead(config.trial_concurrency, ahead_below, not config.trial.gpu_num)
        self.assessment = Assessment(config.assessor, store, timeout=assess_timeout)
        self.running = RunningTrials(
            store, config, self.ledger, self.gpus, self.ahead, assess, self.assessment
        )
        self._turn = Turns(store, self.assessment, self.running, self.service)
        self.proposals: Proposals | None = None  # set by _start, once the tuner is restored
        self.stop_reason: str | None = None
        self.budget = Budget(store, config.max_exec_duration, exp.exec_seconds)
        self._read_at = 0.0
        self._arrived: list[object] = []

    def request_stop(self, reason: str = "stopped by the user") -> None:
        """Ask the loop to stop: trials are cancelled, the experiment ends STOPPED. Safe to call
        from a signal handler or another thread."""
        if self.stop_reason is None:
            self.stop_reason = reason
        self.inbox.put(None)

    def run(self, handle_signals: bool = True) -> str:
        """Run until the experiment ends; return its final status.

        Raises:
            ExperimentBusyError: another manager runs this experiment.
        """
        with session.holding(self.store, log, self.request_stop if handle_signals else None):
            try:
                if session.start_withdrawn(self.store, self.start_token, log):
                    return self.store.experiment().status
                self._start()
                self.store.withdraw_start()
                return self._loop().value
            except BaseException as exc:
                stopped = isinstance(exc, KeyboardInterrupt)
                why = session.failure_reason(exc, self.store, log)
                self._shutdown_trials(why)
                status = self._finish(E.STOPPED if stopped else E.ERROR, why)
                if stopped or isinstance(exc, NasCliError):
                    return status.value
                raise
            finally:
                if not self.running:  # the service lets go of what it holds (cgroups)
                    self.service.shutdown(0.0)
                self.inbox.close()

    def _start(self) -> None:
        """Restore the tuner, take the experiment, then carry on what an earlier manager left:
        WAITING trials start again, live ones are adopted, ended ones ingested from their files."""
        exp = self.store.experiment()
        keeper = TunerKeeper.restore(self.store, self.config.tuner)
        self.proposals = p = Proposals(
            self.store, self.config, keeper, self.ledger, self.starter, self.ahead,
            busy=self.running.busy,
        )  # fmt: skip
        self.running.proposals = self._turn.proposals = p
        self.assessment.start()
        session.take_experiment(self.store, self.ledger, exp, log)
        for trial in session.left_behind(self.store, self.ledger):
            if trial.status == T.WAITING:
                p.pending.append(trial)
            elif (ended := self.running.recover(trial, self.service)) is not None:
                with self._turn():
                    self.running.on_exit(ended)
        if self.budget.spent():
            p.search_over = self.budget.reason

    # ------------------------------------------------------------------ the loop

    def _loop(self) -> ExperimentStatus:
        """The turns: ask -> launch -> collect (-> assess) -> tell, until the experiment ends."""
        p, running, tick = self.proposals, self.running, self.tick
        while True:
            ready: list[TrialRecord] = []
            started_ahead = self._start_ahead()  # launch: proposals made ahead start first
            with self._turn():
                for trial, proc in started_ahead:
                    self._record_started(trial, proc)
                for item in self._arrivals(0):  # collect the ended trials, tell the tuner
                    if isinstance(item, TrialExited):
                        running.on_exit(item)
                    elif isinstance(item, TrialPlaced):
                        running.placed(item)
                if self.stop_reason is None:
                    if time.monotonic() - self._read_at >= tick:
                        self._read_at = time.monotonic()
                        running.read_intermediate()  # collect, and assess, running trials
                    self._check_clock()
                    free = self.config.trial_concurrency - running.busy()
                    ready = p.fill(free, running.groups())  # ask
                    p.propose_ahead(running.busy() + len(ready))
            if self.stop_reason is not None:
                p.put_back(ready)  # committed, not started: cancelled with the pending ones
                self._shutdown_trials(self.stop_reason)
                return self._finish(E.STOPPED, self.stop_reason)
            self._launch(ready)  # launch, then commit their pids
            p.prepare_ahead()
            if p.search_over is not None and not running and not p.pending:
                counts = self.store.status_counts()
                return self._finish(*final_status(counts, p.error, p.search_over))
            self._notify()
            remaining = self.budget.left()
            # Once the time budget is used, trials are being cancelled: wait for their exits.
            self._arrived += self.inbox.wait(min(self.tick, remaining) if remaining > 0 else tick)

    # ------------------------------------------------------------------ launch

    def _start_ahead(self) -> list[tuple[TrialRecord, TrialProcess]]:
        """Start trials proposed ahead, one per exit that just arrived, before anything else."""
        self._arrived += self.inbox.wait(0)
        if self.stop_reason is not None:
            return []
        exits = sum(isinstance(i, TrialExited) and i.trial_id in self.running
                    for i in self._arrived)  # fmt: skip
        ready = self.proposals.take_ahead(exits)
        return [(t, proc) for t in ready if (proc := self._start_one(t, prepared=True)) is not None]

    def _launch(self, ready: list[TrialRecord]) -> None:
        """Start the committed trials, then commit their pids together."""
        started = [(t, proc) for t in ready if (proc := self._start_one(t)) is not None]
        if started:
            with self._turn():
                for trial, proc in started:
                    self._record_started(trial, proc)

    def _start_one(self, trial: TrialRecord, prepared: bool = False) -> TrialProcess | None:
        try:
            proc = self.starter.start(trial, prepared)
        except OSError as exc:
            with self._turn():
                self.proposals.fail_unstarted(trial, f"could not start: {exc}")
            return None
        self.running.started(trial, proc, self.starter.gpus_of(trial.id))
        return proc

    def _record_started(self, trial: TrialRecord, proc: TrialProcess) -> None:
        self.running.launched(trial, proc, self.starter.gpus_of(trial.id))

    # ------------------------------------------------------------------ budget and ending

    def _check_clock(self) -> None:
        self.budget.record()
        if self.proposals.search_over is None and self.budget.spent():
            self.proposals.end_search(self.budget.reason)
            for trial_id in self.running.cancel_all("maxExecDuration reached"):
                self.service.cancel(trial_id)
            self.proposals.cancel_pending("maxExecDuration reached")

    def _shutdown_trials(self, reason: str) -> None:
        """Cancel every trial and wait (5 s at most) for the exits, recorded USER_CANCELED."""
        if self.running.cancel_all(reason):
            grace = self.store.experiment().stop_grace
            self.service.shutdown(self.kill_grace if grace is None else grace)
        self.running.record_exits(self._arrivals, self._turn)
        if self.proposals is not None:
            with self._turn():
                self.proposals.cancel_pending(reason)

    def _finish(self, status: ExperimentStatus, reason: str | None) -> ExperimentStatus:
        if self.proposals is not None:  # the experiment ends with a whole checkpoint
            self.proposals.keeper.checkpoint_next()
        self.assessment.finish()
        ended, used = time.time(), self.budget.used()
        with self._turn():
            self.ledger.end_experiment(status, reason, ended=ended, exec_seconds=used)
        log.info("experiment %s %s%s", self.store.id, status.value, f": {reason}" if reason else "")
        self._notify()
        return status

    def _arrivals(self, timeout: float) -> list[object]:
        """What arrived in the inbox, kept ones first (waiting ``timeout`` s when nothing has)."""
        arrived, self._arrived = self._arrived + self.inbox.wait(timeout), []
        return arrived

    def _notify(self) -> None:
        ended, self.running.ended = self.running.ended, []
        if self.observer is None:
            return
        try:
            self.observer(ended)
        except Exception:  # noqa: BLE001 - a broken display must not end the experiment
            log.exception("the observer failed; the experiment goes on without it")
            self.observer = None
