"""The experiment manager: ask the tuner, launch trials, collect their results, tell the tuner.

One ``Manager`` runs one experiment, in the detached daemon (``nascli/cli/daemon.py``) or in the
foreground (``nascli create --foreground``). It holds the experiment's lock for its whole life, so
two managers never run the same experiment. The loop is event-driven: it sleeps in its
``Inbox`` (``inbox.py``), which wakes it when a trial exits or ``request_stop`` is called, and at
most every ``tick`` seconds to read intermediate metrics and check the time budget. A free slot
is refilled as soon as the exit is handled, in about a millisecond.

Each turn of the loop is one transaction: the trials that ended (their end, metrics, what the
tuner was told), the proposals for the freed slots (trial rows WAITING) and the tuner's state
after all of it. Then the proposed trials start and their pids are committed (RUNNING).

The tuner's state: its checkpoint grows with the history (2 ms and 65 KB per write at 1000
trials), so for a ``replayable`` tuner (every built-in one: after ``load_checkpoint`` the same
calls give the same results) a turn only appends the calls it made (ask, tell, end) to the
store's tuner log, and the checkpoint is written every ``CHECKPOINT_EVERY`` turns, at the end,
and after anything unusual (a tuner error, no more proposals). Resume loads the checkpoint and
replays the log. Other tuners are checkpointed every turn.

Short trials (recent ones under ``ahead_below``, 1 s by default; no GPUs managed): while every
slot is busy, the next proposal is made, committed and written to its directory ahead, and it
starts the moment an exit arrives, before that exit's bookkeeping. As Ray Tune keeps pending
trials, this trades one result of tuner freshness for a slot that never waits on the manager;
longer trials gain nothing from it, so their proposals are made when a slot frees, knowing every
result so far.

Durability (``kill -9`` of the manager at any point loses nothing):

- a proposal is committed together with the tuner checkpoint that made it, before the trial
  starts; the trial's pid is committed right after it starts;
- a trial's end, its metrics and the tuner checkpoint after it was told are committed together
  (a crash before that commit leaves the trial RUNNING in the store: on resume it is ingested
  again from its files and the restored tuner is told again);
- trials run in their own sessions and keep running without the manager; their exit code goes to
  the exit marker in their directory. On start (``resume``) the manager adopts trials still alive,
  ingests those that ended meanwhile, relaunches WAITING ones, restores the tuner from its
  checkpoint and continues the same budget (proposals are counted from the store).
"""

from __future__ import annotations

import collections
import json
import logging
import os
import signal
import statistics
import time
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from dataclasses import dataclass, replace
from pathlib import Path
from typing import Any

from filelock import Timeout

from nascli import space as spaces
from nascli.channel import (
    FINAL,
    TrialContext,
    read_exit_marker,
    read_metrics,
    write_parameters,
)
from nascli.errors import NasCliError, UsageError
from nascli.experiment.config import ExperimentConfig
from nascli.experiment.gpu import GpuUnavailable
from nascli.experiment.inbox import Inbox
from nascli.experiment.prepare import build_tuner, gpu_allocator
from nascli.experiment.processes import process_token
from nascli.experiment.services.base import TrainingService, TrialExited, TrialProcess, TrialSpec
from nascli.experiment.services.local import LocalTrainingService
from nascli.experiment.store import ExperimentBusyError, ExperimentStore, TrialRecord
from nascli.experiment.trials import ExperimentStatus, Ledger, TrialStatus

__all__ = ["Manager", "DEFAULT_KILL_GRACE"]

log = logging.getLogger("nascli.manager")

DEFAULT_KILL_GRACE = 5.0
AHEAD_BELOW = 1.0  # seconds: trials shorter than this get the next proposal ready ahead
CHECKPOINT_EVERY = 32  # turns: how many turns' tuner calls are logged between checkpoints
_GPU_RETRY = 1.0
_SAVE_CLOCK = 5.0


class _Stop:
    """Queue item that wakes the loop to stop."""


@dataclass
class _Active:
    record: TrialRecord
    dir: Path
    offset: int = 0
    bad_lines: int = 0
    cancel_reason: str | None = None


class Manager:
    """Runs one experiment to its end (DONE / ERROR), or until stopped (STOPPED). What it does
    is logged to the experiment's ``manager.log`` and, but for routine starts and successes (the
    trial rows hold those), recorded as events in the store.

    Args:
        store: the experiment's store (its config and search space are read from it).
        service: where trials run; a ``LocalTrainingService`` reporting to the manager's inbox
            by default.
        observer: called (in the manager's thread) after each turn of the loop with the trials
            that ended since the last call, e.g. to print them or redraw a view.
        tick: the longest sleep between looks at intermediate metrics and the clock.
        ahead_below: trials shorter than this (median of the recent ones, seconds) get the next
            proposal ready ahead (see the module docstring); 0 turns that off.
    """

    def __init__(
        self,
        store: ExperimentStore,
        service: TrainingService | None = None,
        observer: Callable[[list[TrialRecord]], None] | None = None,
        tick: float = 0.5,
        kill_grace: float = DEFAULT_KILL_GRACE,
        ahead_below: float = AHEAD_BELOW,
    ):
        self.store = store
        self.ledger = Ledger(store)
        self.inbox = Inbox()
        self.service = service or LocalTrainingService(self.inbox, kill_grace=kill_grace)
        self.observer = observer
        self.tick = tick
        self.kill_grace = kill_grace
        self.ahead_below = ahead_below
        exp = store.experiment()
        self.exp_id = exp.id
        self.config = ExperimentConfig.from_dict(exp.config)
        self.gpus = gpu_allocator(self.config)
        self.tuner: Any = None
        self.search_space: dict[str, Any] = {}
        self._specs: spaces.SearchSpace = {}
        self.active: dict[str, _Active] = {}
        self.pending: list[TrialRecord] = []
        self.no_more: str | None = None
        self.error: str | None = None
        self.stop_reason: str | None = None
        self.wait_reason: str | None = None
        self._gpu_retry_at = 0.0
        self._exec_base = exp.exec_seconds
        self._started = time.monotonic()
        self._saved_clock = 0.0
        self._read_at = 0.0
        self._ended: list[TrialRecord] = []
        self._next_parameter_id = exp.next_parameter_id
        self._next_seq = store.next_trial_seq()
        self._arrived: list[object] = []
        self._ahead: set[str] = set()  # pending trials whose directory and parameters are ready
        self._recent_durations: collections.deque[float] = collections.deque(maxlen=8)
        self._in_batch = False
        self._tuner_dirty = False
        self._tuner_calls: list[list[Any]] = []  # this turn's, for the tuner log
        self._logged_turns = 0  # turns in the tuner log since the checkpoint
        self._checkpoint_due = True  # the next save writes the whole checkpoint
        self._base_env = self._trial_base_env()

    def _trial_base_env(self) -> dict[str, str]:
        """What every trial's environment starts from (computed once: copying ``os.environ``
        per trial costs more than the rest of a launch)."""
        env = {k: v for k, v in os.environ.items() if not k.startswith("NASCLI_")}
        env.setdefault("PYTHONUNBUFFERED", "1")
        # Like Ray Tune: concurrent trials share the cores instead of each starting one
        # OpenMP thread per core (on 2 cores, 2 torch trials run ~1.8x slower oversubscribed).
        threads = max(1, (os.cpu_count() or 1) // self.config.trial_concurrency)
        env.setdefault("OMP_NUM_THREADS", str(threads))
        return env

    # ------------------------------------------------------------------ public

    def request_stop(self, reason: str = "stopped by the user") -> None:
        """Ask the loop to stop: trials are cancelled, the experiment ends STOPPED. Safe to call
        from a signal handler or another thread."""
        if self.stop_reason is None:
            self.stop_reason = reason
        self.inbox.put(_Stop())

    def run(self, handle_signals: bool = True) -> str:
        """Run until the experiment ends; return its final status.

        Raises:
            ExperimentBusyError: another manager runs this experiment.
        """
        lock = self.store.manager_lock()
        try:
            lock.acquire(timeout=0)
        except Timeout:
            exp = self.store.experiment()
            raise ExperimentBusyError(
                f"experiment {self.exp_id} is already running (manager pid {exp.manager_pid})"
            ) from None
        previous = self._install_signals() if handle_signals else {}
        handler = logging.FileHandler(self.store.manager_log)
        handler.setFormatter(logging.Formatter("%(asctime)s %(levelname)s %(message)s"))
        log.addHandler(handler)
        log.setLevel(logging.INFO)
        try:
            self._start()
            return self._loop()
        except BaseException as exc:
            reason = f"manager failed: {type(exc).__name__}: {exc}"
            if isinstance(exc, KeyboardInterrupt):
                reason = "interrupted"
            log.exception("manager failed")
            self._shutdown_trials(reason)
            status = "STOPPED" if isinstance(exc, KeyboardInterrupt) else "ERROR"
            self._finish(status, reason)
            if isinstance(exc, (KeyboardInterrupt, NasCliError)):
                return status
            raise
        finally:
            for sig, previous_handler in previous.items():
                signal.signal(sig, previous_handler)
            log.removeHandler(handler)
            handler.close()
            self.inbox.close()
            lock.release()

    # ------------------------------------------------------------------ start / recover

    def _install_signals(self) -> dict[int, Any]:
        previous = {}
        for sig in (signal.SIGTERM, signal.SIGINT, signal.SIGHUP):
            previous[sig] = signal.signal(sig, lambda *_: self.request_stop())
        return previous

    def _start(self) -> None:
        exp = self.store.experiment()
        resumed = exp.started is not None
        self._specs = spaces.load_search_space(self.store.search_space_file)
        self.search_space = spaces.search_space_to_json(self._specs)
        self.tuner = build_tuner(self.config.tuner, self.search_space)
        if exp.tuner_state is not None:
            self.tuner.load_checkpoint(exp.tuner_state)
        self.store.ensure_tuner_log()
        self._replay_tuner_log(self.store.tuner_calls())
        with self.store.transaction():
            self.ledger.start_experiment(
                resumed,
                started=exp.started or time.time(),
                manager_pid=os.getpid(),
                manager_token=process_token(os.getpid()),
            )
        log.info("experiment %s %s, pid %d", self.exp_id, "resumed" if resumed else "started",
                 os.getpid())  # fmt: skip
        self._recover()
        if self._elapsed() >= self.config.max_exec_duration:
            self.no_more = f"maxExecDuration {self.config.max_exec_duration} s reached"

    def _replay_tuner_log(self, calls: list[list[Any]]) -> None:
        """Bring the tuner restored from its checkpoint up to date with the calls logged after
        it (in order); the next turn then writes a checkpoint."""
        for call in calls:
            kind, parameter_id = call[0], call[1]
            if kind == "ask":
                made = json.loads(json.dumps(self.tuner.generate_parameters(parameter_id)))
                if made != call[2]:
                    # Not expected of a replayable tuner; keep what the trial really runs.
                    log.warning("tuner replay: parameters %d differ from the log", parameter_id)
                    self.tuner.proposed[parameter_id] = self.tuner.from_parameters(call[2])
                    self.tuner.tried.add(self.tuner.proposed[parameter_id])
            elif kind == "tell":
                self.tuner.receive_trial_result(parameter_id, call[2], call[3])
            else:
                self.tuner.trial_end(parameter_id, call[2])
        if calls:
            log.info("tuner restored from its checkpoint and %d logged call(s)", len(calls))
            self._tuner_dirty = True

    def _recover(self) -> None:
        for trial in self.store.trials(["WAITING", "RUNNING"]):
            paths = self.store.trial_paths(trial.id)
            if trial.status == "WAITING":
                self.pending.append(trial)
                continue
            active = _Active(trial, paths.dir, trial.metrics_offset, trial.bad_metric_lines)
            if trial.pid and self.service.adopt(trial.id, trial.pid, trial.pid_token, paths.dir):
                self.active[trial.id] = active
                if trial.gpus:
                    self.gpus.adopt(trial.id, trial.gpus)
                self._event(
                    "adopted", f"trial {trial.id} still running (pid {trial.pid})", trial.id
                )
                continue
            marker = read_exit_marker(paths.dir)
            self.active[trial.id] = active
            if marker is None:
                self._on_exit(TrialExited(trial.id, None, time.time()))
            else:
                self._on_exit(TrialExited(trial.id, marker[0], marker[1]))

    # ------------------------------------------------------------------ the loop

    def _loop(self) -> str:
        while True:
            ready: list[TrialRecord] = []
            started_ahead = self._start_ahead()
            with self._batch():
                for trial, proc in started_ahead:
                    self._record_started(trial, proc)
                self._handle_events()
                if self.stop_reason is None:
                    if time.monotonic() - self._read_at >= self.tick:
                        self._read_intermediate()
                    self._check_clock()
                    ready = self._prepare_slots()
                    self._propose_ahead(len(ready))
            if self.stop_reason is not None:
                for trial in ready:  # committed but not started: cancelled with the pending ones
                    self.gpus.release(trial.id)
                self.pending[:0] = ready
                self._shutdown_trials(self.stop_reason)
                return self._finish("STOPPED", self.stop_reason)
            self._launch_all(ready)
            if self.no_more is not None and not self.active and not self.pending:
                return self._finish(*self._final_status())
            self._notify()
            self._wait_for_events()

    @contextmanager
    def _batch(self) -> Iterator[None]:
        """One transaction for everything inside (nested uses join the outer one); the tuner's
        checkpoint is written once at its end if the tuner was asked or told anything."""
        if self._in_batch:
            yield
            return
        self._in_batch = True
        try:
            with self.store.transaction():
                yield
                self._save_tuner()
        finally:
            self._in_batch = False

    def _wait_for_events(self) -> None:
        """Sleep until something arrives in the inbox (or the tick passes); what arrived is
        handled by the next turn, inside its transaction."""
        remaining = self.config.max_exec_duration - self._elapsed()
        # Once the time budget is used, trials are being cancelled: wait for their exits
        # instead of spinning on a zero timeout.
        timeout = min(self.tick, remaining) if remaining > 0 else self.tick
        self._arrived += self.inbox.wait(timeout)

    def _handle_events(self) -> None:
        arrived, self._arrived = self._arrived + self.inbox.wait(0), []
        for item in arrived:
            if isinstance(item, TrialExited):
                self._on_exit(item)

    def _elapsed(self) -> float:
        return self._exec_base + (time.monotonic() - self._started)

    def _check_clock(self) -> None:
        now = time.monotonic()
        if now - self._saved_clock >= _SAVE_CLOCK:
            self._saved_clock = now
            self.store.update_experiment(exec_seconds=self._elapsed())
        if self.no_more is None and self._elapsed() >= self.config.max_exec_duration:
            self._set_no_more(f"maxExecDuration {self.config.max_exec_duration} s reached")
            for tid, active in self.active.items():
                active.cancel_reason = "maxExecDuration reached"
                self.service.cancel(tid)
            self._cancel_pending("maxExecDuration reached")

    def _set_no_more(self, reason: str, trials_left: bool | None = None) -> None:
        self.no_more = reason
        self._event("no_more_trial", reason)
        if trials_left or (trials_left is None and (self.active or self.pending)):
            self.ledger.no_more_trials(reason)

    def _start_ahead(self) -> list[tuple[TrialRecord, TrialProcess]]:
        """Start the trial proposed ahead, one per exit that just arrived, before anything else
        (it is committed and its directory written already)."""
        self._arrived += self.inbox.wait(0)
        exits = sum(
            isinstance(item, TrialExited) and item.trial_id in self.active for item in self._arrived
        )
        started = []
        while exits and self.pending and self.pending[0].id in self._ahead:
            trial = self.pending.pop(0)
            self._ahead.discard(trial.id)
            if self.stop_reason is not None or self.store.cancel_requested(trial.id):
                self.pending.insert(0, trial)  # the turn cancels it
                break
            proc = self._launch(trial, prepared=True)
            if proc is not None:
                started.append((trial, proc))
            exits -= 1
        return started

    def _propose_ahead(self, starting: int) -> None:
        """Inside the turn's transaction: with every slot busy and recent trials short, make
        the next proposal now and prepare its directory (see the module docstring)."""
        if (
            self.pending
            or self.no_more is not None
            or self.config.trial.gpu_num
            or len(self.active) + starting < self.config.trial_concurrency
            or self._next_parameter_id >= self.config.max_trial_num
            or len(self._recent_durations) < self.config.trial_concurrency
            or statistics.median(self._recent_durations) >= self.ahead_below
        ):
            return
        trial = self._propose(str(self._next_seq))
        if trial is None:
            return
        self._write_trial_dir(trial)
        self.pending.append(trial)
        self._ahead.add(trial.id)
        if self._next_parameter_id >= self.config.max_trial_num:
            self._set_no_more(f"maxTrialNum {self.config.max_trial_num} reached", True)

    def _prepare_slots(self) -> list[TrialRecord]:
        """Inside the turn's transaction: the trials to start now, one per free slot (pending
        ones first, then new proposals), with their GPUs reserved."""
        ready: list[TrialRecord] = []
        while len(self.active) + len(ready) < self.config.trial_concurrency:
            if self.pending:
                trial = self.pending[0]
                current = self.store.trial(trial.id)
                if current is not None and current.cancel_requested:
                    self.pending.pop(0)
                    self._end_unlaunched(trial, "USER_CANCELED", "cancelled before it started")
                    continue
            elif self.no_more is not None:
                break
            elif self._next_parameter_id >= self.config.max_trial_num:
                self._set_no_more(f"maxTrialNum {self.config.max_trial_num} reached")
                break
            trial_id = self.pending[0].id if self.pending else str(self._next_seq)
            if not self._reserve_gpus(trial_id):
                break
            if self.pending:
                trial = self.pending.pop(0)
                self._ahead.discard(trial.id)
            else:
                trial = self._propose(trial_id)
            if trial is None:
                self.gpus.release(trial_id)
                break
            ready.append(trial)
            if self.no_more is None and self._next_parameter_id >= self.config.max_trial_num:
                self._set_no_more(f"maxTrialNum {self.config.max_trial_num} reached", True)
        return ready

    def _reserve_gpus(self, trial_id: str) -> bool:
        if not self.config.trial.gpu_num:
            return True
        if time.monotonic() < self._gpu_retry_at:
            return False
        try:
            self.gpus.allocate(trial_id, own_groups={a.record.pid for a in self.active.values()
                                                     if a.record.pid})  # fmt: skip
        except GpuUnavailable as why:
            self._gpu_retry_at = time.monotonic() + _GPU_RETRY
            if str(why) != self.wait_reason:
                self.wait_reason = str(why)
                self.store.update_experiment(wait_reason=self.wait_reason)
                self._event("waiting", self.wait_reason)
            return False
        if self.wait_reason is not None:
            self.wait_reason = None
            self.store.update_experiment(wait_reason=None)
        return True

    def _propose(self, trial_id: str) -> TrialRecord | None:
        from tuners import NoMoreTrialError

        parameter_id = self._next_parameter_id
        self._tuner_dirty = True
        try:
            parameters = self.tuner.generate_parameters(parameter_id)
            spaces.parse_parameters(self._specs, parameters, "the tuner's proposal")
        except NoMoreTrialError:
            self._checkpoint_due = True
            self._set_no_more("the tuner has no more architectures to propose")
            return None
        except UsageError as exc:
            self._checkpoint_due = True
            self.error = f"the tuner proposed invalid parameters: {exc}"
            self._set_no_more(self.error)
            return None
        except Exception as exc:  # noqa: BLE001 - a tuner bug ends the search, not the manager
            self._checkpoint_due = True
            log.exception("tuner failed")
            self.error = f"the tuner failed: {type(exc).__name__}: {exc}"
            self._set_no_more(self.error)
            return None
        self._tuner_calls.append(["ask", parameter_id, parameters])
        self._next_parameter_id = parameter_id + 1  # stored with the tuner checkpoint
        with self._batch():
            trial = self.store.add_trial(trial_id, int(trial_id), parameter_id, parameters)
        self._next_seq = max(self._next_seq, int(trial_id) + 1)
        return trial

    def _launch_all(self, ready: list[TrialRecord]) -> None:
        """Start the trials ``_prepare_slots`` committed, then commit their pids together."""
        if not ready:
            return
        started = [(trial, proc) for trial in ready if (proc := self._launch(trial)) is not None]
        with self._batch():
            for trial, proc in started:
                self._record_started(trial, proc)

    def _launch(self, trial: TrialRecord, prepared: bool = False) -> TrialProcess | None:
        """Start a committed trial (``prepared``: its directory and parameters are written)."""
        paths = self.store.trial_paths(trial.id)
        if not prepared:
            self._write_trial_dir(trial)
        context = TrialContext(
            platform="local",
            experiment_id=self.exp_id,
            trial_id=trial.id,
            sequence_id=trial.seq,
            trial_dir=paths.dir,
            output_dir=paths.dir,
            gen_search_space=None,
        )
        env = dict(self._base_env)
        env.update(context.environment())
        if self.config.trial.gpu_num is not None:
            env["CUDA_VISIBLE_DEVICES"] = ",".join(map(str, self.gpus.assigned.get(trial.id) or ()))
        spec = TrialSpec(
            trial.id,
            self.config.trial.command,
            code_dir=Path(self.config.trial.code_dir),
            trial_dir=paths.dir,
            stdout=paths.stdout,
            stderr=paths.stderr,
            env=env,
        )
        try:
            proc = self.service.launch(spec)
        except OSError as exc:
            self.gpus.release(trial.id)
            self._end_unlaunched(trial, "FAILED", f"could not start: {exc}")
            return None
        gpus = self.gpus.assigned.get(trial.id)
        self.active[trial.id] = _Active(
            replace(trial, status="RUNNING", pid=proc.pid, pid_token=proc.token,
                    started=proc.started, gpus=list(gpus) if gpus is not None else None),
            paths.dir,
        )  # fmt: skip
        return proc

    def _write_trial_dir(self, trial: TrialRecord) -> None:
        """The trial's directory with its ``parameter.json``, before it starts."""
        trial_dir = self.store.trial_paths(trial.id).dir
        trial_dir.mkdir(parents=True, exist_ok=True)
        write_parameters(trial_dir, trial.parameter_id, trial.parameters)

    def _record_started(self, trial: TrialRecord, proc: TrialProcess) -> None:
        gpus = self.gpus.assigned.get(trial.id)
        self.ledger.launch(
            trial.id, proc.pid, proc.token, proc.started, list(gpus) if gpus is not None else None
        )
        # Routine starts and successes are in the trial rows and manager.log; the events table
        # keeps what deserves attention (failures, retries, waits, adoptions, manager runs).
        log.info("trial %s started, pid %d", trial.id, proc.pid)

    # ------------------------------------------------------------------ results

    def _read_intermediate(self) -> None:
        self._read_at = time.monotonic()
        for tid, active in self.active.items():
            if active.record.pid and active.record.pid_token is None:
                token = process_token(active.record.pid)
                if token is not None:
                    active.record = replace(active.record, pid_token=token)
                    self.store.update_trial(tid, pid_token=token)
            new = self._ingest(tid, active)
            if new:
                with self._batch():
                    for rec in new:
                        self.store.add_metric(tid, rec.sequence, rec.type, rec.value, rec.time)
                    self.store.update_trial(
                        tid, metrics_offset=active.offset, bad_metric_lines=active.bad_lines
                    )

    def _ingest(self, tid: str, active: _Active) -> list[Any]:
        records, active.offset, bad = read_metrics(active.dir, active.offset)
        if bad:
            active.bad_lines += bad
            log.warning("trial %s: %d unreadable line(s) in its metrics file skipped", tid, bad)
        return records

    def _on_exit(self, exited: TrialExited) -> None:
        active = self.active.pop(exited.trial_id, None)
        if active is None:
            return
        trial = active.record
        self.gpus.release(trial.id)
        if trial.started is not None:
            self._recent_durations.append(exited.end_time - trial.started)
        records = self._ingest(trial.id, active)
        code = exited.exit_code
        with self._batch():
            for rec in records:
                self.store.add_metric(trial.id, rec.sequence, rec.type, rec.value, rec.time)
            finals = [r.value for r in records if r.type == FINAL]
            final = finals[-1] if finals else self._final_metric(trial.id)
            if active.cancel_reason or self.store.cancel_requested(trial.id):
                status, reason = "USER_CANCELED", active.cancel_reason or "cancelled by the user"
            elif code == 0 and final is not None:
                status, reason = "SUCCEEDED", None
            elif code == 0:
                status, reason = (
                    "FAILED",
                    (
                        "exited 0 without reporting a final result "
                        "(the trial must call nascli.report_final_result)"
                    ),
                )
            elif code is None:
                status, reason = "FAILED", "ended while no manager watched it; no exit code left"
            else:
                status, reason = "FAILED", self._failure_reason(trial.id, code)
            self.ledger.finish(
                trial.id, TrialStatus(status), reason, exited.end_time, code, final,
                metrics_offset=active.offset, bad_metric_lines=active.bad_lines,
            )  # fmt: skip
            if status == "FAILED" and trial.attempt <= self.config.max_trial_retries:
                self._add_retry(trial)
            else:
                self._tell_tuner(trial, status, final)
        log.info("trial %s %s%s", trial.id, status, f" ({reason})" if reason else "")
        self._ended.append(
            replace(trial, status=status, reason=reason, ended=exited.end_time, exit_code=code,
                    final=final if status == "SUCCEEDED" else None)
        )  # fmt: skip

    def _final_metric(self, tid: str) -> Any:
        """The trial's last final result, or (``includeIntermediateResults``) its last
        intermediate one; None when it reported nothing usable."""
        rows = self.store.metrics(tid)
        finals = [value for _, _, kind, value, _ in rows if kind == FINAL]
        if finals:
            return finals[-1]
        if self.config.tuner.include_intermediate_results and rows:
            return rows[-1][3]
        return None

    def _failure_reason(self, tid: str, code: int) -> str:
        if code < 0:
            try:
                what = f"killed by {signal.Signals(-code).name}"
            except ValueError:
                what = f"killed by signal {-code}"
        else:
            what = f"exit code {code}"
        try:
            lines = self.store.trial_paths(tid).stderr.read_text(errors="replace").splitlines()
        except OSError:
            lines = []
        last = next((line.strip() for line in reversed(lines) if line.strip()), None)
        return f"{what}; stderr: {last[:300]}" if last else f"{what}; stderr was empty"

    def _add_retry(self, trial: TrialRecord) -> None:
        seq = self._next_seq
        self._next_seq += 1
        retried = self.store.add_trial(
            str(seq), seq, trial.parameter_id, trial.parameters, trial.attempt + 1
        )
        self.store.add_event(
            "retry", f"trial {trial.id} failed; parameters {trial.parameter_id} retried as {seq} "
            f"(attempt {trial.attempt + 1} of {self.config.max_trial_retries + 1})", str(seq),
        )  # fmt: skip
        self.pending.append(retried)

    def _tell_tuner(self, trial: TrialRecord, status: str, final: Any) -> None:
        """Inside the caller's batch: tell the tuner (its checkpoint is saved when the batch
        commits)."""
        self._tuner_dirty = True
        try:
            if status == "SUCCEEDED":
                self.tuner.receive_trial_result(trial.parameter_id, trial.parameters, final)
                self._tuner_calls.append(["tell", trial.parameter_id, trial.parameters, final])
            self.tuner.trial_end(trial.parameter_id, status == "SUCCEEDED")
            self._tuner_calls.append(["end", trial.parameter_id, status == "SUCCEEDED"])
        except Exception as exc:  # noqa: BLE001 - a tuner bug ends the search, not the manager
            self._tuner_failed(exc)

    def _tuner_failed(self, exc: Exception) -> None:
        self._checkpoint_due = True
        log.exception("tuner failed")
        self.error = f"the tuner failed: {type(exc).__name__}: {exc}"
        if self.no_more is None:
            self._set_no_more(self.error)

    def _save_tuner(self) -> None:
        """Inside the batch's transaction, if the tuner was asked or told anything: log this
        turn's calls, or write the whole checkpoint when one is due (see the module docstring),
        with the proposal count that goes with it. A tuner whose state is not JSON fails here,
        as a tuner error, not in the store."""
        if not self._tuner_dirty or self.tuner is None:
            return
        self._tuner_dirty = False
        calls, self._tuner_calls = self._tuner_calls, []
        fields: dict[str, Any] = {"next_parameter_id": self._next_parameter_id}
        if (
            getattr(self.tuner, "replayable", False)
            and not self._checkpoint_due
            and self._logged_turns < CHECKPOINT_EVERY
        ):
            self.store.append_tuner_calls(calls)
            self._logged_turns += 1
        else:
            try:
                fields["tuner_state_json"] = json.dumps(
                    self.tuner.save_checkpoint(), allow_nan=False, separators=(",", ":")
                )
            except Exception as exc:  # noqa: BLE001 - a tuner bug ends the search, not the manager
                self._tuner_failed(exc)
            else:
                self.store.clear_tuner_calls()
                self._logged_turns = 0
                self._checkpoint_due = False
        self.store.update_experiment(**fields)

    def _end_unlaunched(self, trial: TrialRecord, status: str, reason: str) -> None:
        with self._batch():
            if status == "FAILED":
                self.ledger.fail(trial.id, reason)
            else:
                self.ledger.cancel(trial.id, reason)
            self._tell_tuner(trial, status, None)

    def _cancel_pending(self, reason: str) -> None:
        while self.pending:
            self._end_unlaunched(self.pending.pop(0), "USER_CANCELED", reason)

    # ------------------------------------------------------------------ ending

    def _shutdown_trials(self, reason: str) -> None:
        for active in self.active.values():
            active.cancel_reason = reason
        if self.active:
            grace = self.store.experiment().stop_grace
            self.service.shutdown(self.kill_grace if grace is None else grace)
        deadline = time.monotonic() + 5.0
        while self.active and time.monotonic() < deadline:
            for item in self._arrived + self.inbox.wait(0.1):
                if isinstance(item, TrialExited):
                    self._on_exit(item)
            self._arrived = []
        for tid in list(self.active):
            self._on_exit(TrialExited(tid, None, time.time()))
        self._cancel_pending(reason)

    def _final_status(self) -> tuple[str, str | None]:
        if self.error:
            return "ERROR", self.error
        counts = self.store.status_counts()
        finished = counts["SUCCEEDED"] + counts["FAILED"]
        if finished and not counts["SUCCEEDED"]:
            return "ERROR", f"all {counts['FAILED']} trial(s) failed (see `nascli trial ls`)"
        return "DONE", self.no_more

    def _finish(self, status: str, reason: str | None) -> str:
        if self._logged_turns:  # the experiment ends with a whole checkpoint, the log folded in
            self._checkpoint_due = self._tuner_dirty = True
        with self._batch():
            self.ledger.end_experiment(
                ExperimentStatus(status), reason, ended=time.time(), exec_seconds=self._elapsed()
            )
        log.info("experiment %s %s%s", self.exp_id, status, f": {reason}" if reason else "")
        self._notify()
        return status

    def _notify(self) -> None:
        ended, self._ended = self._ended, []
        if self.observer is None:
            return
        try:
            self.observer(ended)
        except Exception:  # noqa: BLE001 - a broken display must not end the experiment
            log.exception("the observer failed; the experiment goes on without it")
            self.observer = None

    def _event(self, kind: str, message: str, trial_id: str | None = None) -> None:
        self.store.add_event(kind, message, trial_id)
        log.info("%s", message)
