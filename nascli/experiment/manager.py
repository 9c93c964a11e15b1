"""The experiment manager: ask the tuner, launch trials, collect their results, tell the tuner.

One ``Manager`` runs one experiment, in the detached daemon (``nascli/cli/daemon.py``) or in the
foreground (``nascli create --foreground``), holding the experiment's lock for its whole life. It
sleeps in its ``Inbox``, woken by a trial's exit or ``request_stop``, and at most every ``tick``
seconds to read intermediate metrics and check the time budget. Each turn of ``_loop`` is one
transaction (the ended trials, what the tuner was told, the proposals for the freed slots, the
tuner's state); then the proposed trials start and their pids are committed.

Its helpers own the rest: ``trials.Ledger`` every status change, ``TunerKeeper`` the tuner and its
checkpoint, ``Proposals`` what starts next (with ``ProposalsAhead`` for short trials),
``TrialStarter`` trial directories, environments and GPUs, ``RunningTrials`` the running trials'
metrics, assessment and exits, the ``TrainingService`` where trials run.

Durability (``kill -9`` at any point loses nothing): a proposal commits with the tuner state that
made it, before its trial starts; a trial's end, metrics and what the tuner was told commit
together (a crash before that leaves it RUNNING, ingested again from its files on resume).
"""

from __future__ import annotations

import logging
import os
import time
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from dataclasses import replace

from nascli.channel import read_launch_marker
from nascli.errors import NasCliError
from nascli.experiment.ahead import AHEAD_BELOW, ProposalsAhead
from nascli.experiment.assessment import ASSESS_TIMEOUT, Assessment
from nascli.experiment.collector import Assess, RunningTrials
from nascli.experiment.config import ExperimentConfig
from nascli.experiment.containment import Containment, carries_tag
from nascli.experiment.inbox import Inbox
from nascli.experiment.prepare import gpu_allocator
from nascli.experiment.processes import process_token
from nascli.experiment.proposals import Proposals
from nascli.experiment.services import service_for
from nascli.experiment.services.base import ServiceFactory, TrialExited, TrialPlaced, TrialProcess
from nascli.experiment.session import holding
from nascli.experiment.starter import TrialStarter
from nascli.experiment.store import ExperimentStore, StoreFullError, TrialRecord
from nascli.experiment.trials import ExperimentStatus, Ledger, TrialStatus, final_status
from nascli.experiment.tuner_keeper import TunerKeeper

__all__ = ["Manager", "DEFAULT_KILL_GRACE"]

log = logging.getLogger("nascli.manager")

DEFAULT_KILL_GRACE = 5.0
_SAVE_CLOCK = 5.0  # seconds between two records of the time used
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
        if assess is None and config.assessor is not None:
            assess = self.assessment.verdict
        self.running = RunningTrials(store, config, self.ledger, self.gpus, self.ahead, assess)
        self.running.assessment = self.assessment
        self.keeper: TunerKeeper | None = None  # both set by _start, once the tuner is restored
        self.proposals: Proposals | None = None
        self.stop_reason: str | None = None
        self._started, self._exec_base = time.monotonic(), exp.exec_seconds
        self._saved_clock = self._read_at = 0.0
        self._arrived: list[object] = []
        self._in_turn = False

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
        with holding(self.store, log, self.request_stop if handle_signals else None):
            try:
                if self.start_token is not None and not self.store.start_requested(
                        self.start_token):  # fmt: skip
                    log.info("experiment %s: start withdrawn by a stop", self.store.id)
                    return self.store.experiment().status
                self._start()
                self.store.withdraw_start()
                return self._loop().value
            except BaseException as exc:
                stopped = isinstance(exc, KeyboardInterrupt)
                why = "interrupted" if stopped else f"manager failed: {type(exc).__name__}: {exc}"
                if isinstance(exc, StoreFullError):  # record it in the space held back for it
                    why = f"the disk is full: {exc}"
                    log.error("%s; ending the trials", why)
                    self.store.release_reserve()
                else:
                    log.exception("manager failed")
                self._shutdown_trials(why)
                status = self._finish(E.STOPPED if stopped else E.ERROR, why)
                if stopped or isinstance(exc, NasCliError):
                    return status.value
                raise
            finally:
                self.inbox.close()

    def _start(self) -> None:
        """Restore the tuner, take the experiment, then recover what an earlier manager left:
        WAITING trials start again, live ones are adopted, ended ones ingested from their files."""
        exp = self.store.experiment()
        self.keeper = TunerKeeper.restore(self.store, self.config.tuner)
        self.proposals = p = Proposals(
            self.store, self.config, self.keeper, self.ledger, self.starter, self.ahead,
            busy=self.running.busy,
        )  # fmt: skip
        self.running.proposals = p
        self.assessment.start()
        with self.store.transaction():
            self.ledger.start_experiment(
                exp.started is not None, started=exp.started or time.time(),
                manager_pid=(p_id := os.getpid()), manager_token=process_token(p_id),
            )  # fmt: skip
        log.info("experiment %s %s, pid %d", exp.id, "resumed" if exp.started else "started", p_id)
        self.store.ensure_reserve()
        for trial in self.store.trials([T.WAITING.value, T.RUNNING.value, T.EARLY_STOPPED.value]):
            launched = read_launch_marker(self.store.trial_paths(trial.id).dir)
            if trial.status == T.WAITING and launched is not None:
                # started by a manager that died before recording it: adopt, never rerun
                pid = launched if carries_tag(launched, self.store.trial_paths(trial.id).dir) \
                    else None  # fmt: skip
                with self.store.transaction():
                    self.ledger.launch(trial.id, pid, None, None, trial.gpus)
                trial = self.store.trial(trial.id)
            if trial.status == T.WAITING:
                p.pending.append(trial)
            elif trial.status == T.EARLY_STOPPED and trial.ended is not None:
                continue
            elif (ended := self.running.recover(trial, self.service)) is not None:
                self.running.active[trial.id].early_stopped = trial.status == T.EARLY_STOPPED
                with self._turn():
                    self.running.on_exit(ended)
            elif trial.status == T.EARLY_STOPPED:  # stopped, perhaps never signalled
                self.running.active[trial.id].early_stopped = True
                self.service.cancel(trial.id)
        if self._elapsed() >= self.config.max_exec_duration:
            p.search_over = f"maxExecDuration {self.config.max_exec_duration} s reached"

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
                arrived, self._arrived = self._arrived + self.inbox.wait(0), []
                for item in arrived:  # collect the ended trials, tell the tuner
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
                for trial in ready:  # committed, not started: cancelled with the pending ones
                    self.gpus.release(trial.id)
                p.pending[:0] = ready
                self._shutdown_trials(self.stop_reason)
                return self._finish(E.STOPPED, self.stop_reason)
            self._launch(ready)  # launch, then commit their pids
            if p.search_over is not None and not running and not p.pending:
                counts = self.store.status_counts()
                return self._finish(*final_status(counts, p.error, p.search_over))
            self._notify()
            remaining = self.config.max_exec_duration - self._elapsed()
            # Once the time budget is used, trials are being cancelled: wait for their exits.
            self._arrived += self.inbox.wait(min(self.tick, remaining) if remaining > 0 else tick)

    @contextmanager
    def _turn(self) -> Iterator[None]:
        """One transaction for everything inside (nested uses join the outer one), ending with
        the tuner's state if the tuner was asked or told anything. Trials early-stopped in it
        are signalled once their verdicts are committed."""
        if self._in_turn:
            yield
            return
        self._in_turn = True
        try:
            with self.store.transaction():
                yield
                if self.keeper is not None and (failure := self.keeper.save()) is not None:
                    self.proposals.tuner_failed(failure)
                self.assessment.save()
        finally:
            self._in_turn = False
        stop, self.running.to_stop = self.running.to_stop, []
        for trial_id in stop:
            self.service.cancel(trial_id)

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
                self.ledger.fail(trial.id, f"could not start: {exc}")
                self.proposals.tell(trial, success=False, final=None)
            return None
        gpus = self.starter.gpus_of(trial.id)
        self.running.add(replace(trial, status=T.RUNNING.value, pid=proc.pid, gpus=gpus,
                                 pid_token=proc.token, started=proc.started))  # fmt: skip
        return proc

    def _record_started(self, trial: TrialRecord, proc: TrialProcess) -> None:
        gpus = self.starter.gpus_of(trial.id)
        self.ledger.launch(trial.id, proc.pid, proc.token, proc.started, gpus)
        self.store.update_trial(trial.id, node=proc.host)
        log.info("trial %s started on %s, pid %d", trial.id, proc.host, proc.pid)

    # ------------------------------------------------------------------ budget and ending

    def _elapsed(self) -> float:
        return self._exec_base + (time.monotonic() - self._started)

    def _check_clock(self) -> None:
        now = time.monotonic()
        if now - self._saved_clock >= _SAVE_CLOCK:
            self._saved_clock = now
            self.store.update_experiment(exec_seconds=self._elapsed())
        if self.proposals.search_over is None and self._elapsed() >= self.config.max_exec_duration:
            self.proposals.end_search(f"maxExecDuration {self.config.max_exec_duration} s reached")
            for trial_id in self.running.cancel_all("maxExecDuration reached"):
                self.service.cancel(trial_id)
            self.proposals.cancel_pending("maxExecDuration reached")

    def _shutdown_trials(self, reason: str) -> None:
        """Cancel every trial and wait (5 s at most) for the exits, recorded USER_CANCELED."""
        if self.running.cancel_all(reason):
            grace = self.store.experiment().stop_grace
            self.service.shutdown(self.kill_grace if grace is None else grace)
        deadline = time.monotonic() + 5.0
        while self.running and time.monotonic() < deadline:
            for item in self._arrived + self.inbox.wait(0.1):
                if isinstance(item, TrialExited):
                    with self._turn():
                        self.running.on_exit(item)
            self._arrived = []
        for trial_id in list(self.running.active):
            with self._turn():
                self.running.on_exit(TrialExited(trial_id, None, time.time()))
        if self.proposals is not None:
            with self._turn():
                self.proposals.cancel_pending(reason)

    def _finish(self, status: ExperimentStatus, reason: str | None) -> ExperimentStatus:
        if self.keeper is not None:  # the experiment ends with a whole checkpoint
            self.keeper.checkpoint_next()
        self.assessment.finish()
        ended, used = time.time(), self._elapsed()
        with self._turn():
            self.ledger.end_experiment(status, reason, ended=ended, exec_seconds=used)
        log.info("experiment %s %s%s", self.store.id, status.value, f": {reason}" if reason else "")
        self._notify()
        return status

    def _notify(self) -> None:
        ended, self.running.ended = self.running.ended, []
        if self.observer is None:
            return
        try:
            self.observer(ended)
        except Exception:  # noqa: BLE001 - a broken display must not end the experiment
            log.exception("the observer failed; the experiment goes on without it")
            self.observer = None
