"""The running trials: what the manager knows of each, how their starts are recorded, how
their metrics are collected, how their intermediate results reach an (optional) assessor, how
their exits are recorded, and, on resume, how trials an earlier manager left are taken back.

A trial appends metrics to ``metrics.jsonl`` in its directory (``nascli.channel``); the manager
reads the new complete lines from the offset it stored (so a resumed manager neither loses nor
repeats one) and stores them. At a trial's exit its last lines are read, the exit is judged
(``trials.judge_exit``) and recorded by the ledger, and the tuner is told, or a FAILED trial is
retried. Every method runs in the manager's thread, inside its turn's transaction (but
``record_exits``, which opens a turn per exit, and ``recover``).
"""

from __future__ import annotations

import logging
import time
from collections.abc import Callable
from contextlib import AbstractContextManager
from dataclasses import dataclass, replace
from pathlib import Path
from typing import Any

from nascli.channel import FINAL, MetricRecord, read_exit_marker, read_metrics
from nascli.experiment.ahead import ProposalsAhead
from nascli.experiment.assessment import Assessment
from nascli.experiment.config import ExperimentConfig
from nascli.experiment.gpu import GpuAllocator
from nascli.experiment.processes import process_token
from nascli.experiment.proposals import Proposals
from nascli.experiment.services.base import (
    TrainingService,
    TrialExited,
    TrialPlaced,
    TrialProcess,
)
from nascli.experiment.store import ExperimentStore, TrialRecord
from nascli.experiment.trials import Ledger, TrialStatus, judge_exit

__all__ = ["ActiveTrial", "RunningTrials", "Assess", "final_metric"]

log = logging.getLogger("nascli.manager")

#: An assessor's hook (issue 14 plugs ``nascli.assessor`` in here): given a running trial and
#: its metrics that arrived this turn, why it should stop early, or None to let it run.
Assess = Callable[[TrialRecord, list[MetricRecord]], "str | None"]


@dataclass
class ActiveTrial:
    """A trial the manager watches: its record as last written, where metric reading stands,
    why it is being ended (``cancel_reason``), if it is, and whether it was early-stopped."""

    record: TrialRecord
    dir: Path
    offset: int = 0
    bad_lines: int = 0
    cancel_reason: str | None = None
    early_stopped: bool = False


_END_READS = 256  # reads of an ended trial's metrics, at most (1 GiB at 4 MiB a read)


class RunningTrials:
    """The trials started and not yet ended, by id (see the module docstring)."""

    def __init__(
        self, store: ExperimentStore, config: ExperimentConfig, ledger: Ledger,
        gpus: GpuAllocator, ahead: ProposalsAhead, assess: Assess | None = None,
        assessment: Assessment | None = None,
    ) -> None:  # fmt: skip
        """``assessment``: the experiment's, told every trial's end; its ``verdict`` is the
        ``assess`` hook unless one is given (when the config has an ``assessor``)."""
        if assess is None and assessment is not None and assessment.config is not None:
            assess = assessment.verdict
        self.store, self.config, self.ledger = store, config, ledger
        self.gpus, self.ahead, self.assess = gpus, ahead, assess
        self.proposals: Proposals | None = None  # set by the manager once the tuner is restored
        self.active: dict[str, ActiveTrial] = {}
        self.ended: list[TrialRecord] = []  # since the observer last saw them
        self.to_stop: list[str] = []  # to be stopped, signalled once this turn commits
        self._cancels_passed_on: set[str] = set()
        self.assessment = assessment

    def __len__(self) -> int:
        return len(self.active)

    def __contains__(self, trial_id: object) -> bool:
        return trial_id in self.active

    def busy(self) -> int:
        """Trials holding a slot: an early-stopped one gave its slot up while it exits."""
        return sum(not a.early_stopped for a in self.active.values())

    def groups(self) -> set[int]:
        return {a.record.pid for a in self.active.values() if a.record.pid}

    def add(self, record: TrialRecord, offset: int = 0, bad_lines: int = 0) -> None:
        self.active[record.id] = ActiveTrial(
            record, self.store.trial_paths(record.id).dir, offset, bad_lines
        )

    def started(self, trial: TrialRecord, proc: TrialProcess, gpus: list[int] | None) -> None:
        """Watch a trial the service just started (its start is recorded by ``launched``,
        in the next transaction, with those of the trials started with it)."""
        self.add(replace(trial, status=TrialStatus.RUNNING.value, pid=proc.pid, gpus=gpus,
                         pid_token=proc.token, started=proc.started))  # fmt: skip

    def launched(self, trial: TrialRecord, proc: TrialProcess, gpus: list[int] | None) -> None:
        """Record a started trial RUNNING, with its process, GPUs and node."""
        self.ledger.launch(trial.id, proc.pid, proc.token, proc.started, gpus)
        self.store.update_trial(trial.id, node=proc.host)
        log.info("trial %s started on %s, pid %d", trial.id, proc.host, proc.pid)

    def record_exits(
        self, arrivals: Callable[[float], list[object]],
        turn: Callable[[], AbstractContextManager[None]], within: float = 5.0,
    ) -> None:  # fmt: skip
        """As the run ends, trials cancelled: record each exit ``arrivals(timeout)`` brings in
        a ``turn()`` of its own, for ``within`` seconds at most; trials still running then are
        recorded as ended without an exit code."""
        deadline = time.monotonic() + within
        while self.active and time.monotonic() < deadline:
            for item in arrivals(0.1):
                if isinstance(item, TrialExited):
                    with turn():
                        self.on_exit(item)
        for trial_id in list(self.active):
            with turn():
                self.on_exit(TrialExited(trial_id, None, time.time()))

    def recover(self, trial: TrialRecord, service: TrainingService) -> TrialExited | None:
        """Watch a trial an earlier manager left RUNNING or EARLY_STOPPED (without an end):
        adopted if it still runs (None), else its exit as its files tell it, for ``on_exit``.
        An early-stopped one keeps its verdict (no slot, not assessed again); if it still runs
        (stopped, perhaps never signalled) the service is asked to stop it now."""
        self.add(trial, trial.metrics_offset, trial.bad_metric_lines)
        stopped = self.active[trial.id].early_stopped = trial.status == TrialStatus.EARLY_STOPPED
        trial_dir = self.store.trial_paths(trial.id).dir
        handle = trial.pid or trial.pid_token  # a remote trial has a token and no local pid
        if handle and service.adopt(trial.id, trial.pid or 0, trial.pid_token, trial_dir):
            if trial.gpus:
                self.gpus.adopt(trial.id, trial.gpus)
            message = f"trial {trial.id} still running (pid {trial.pid})"
            self.store.add_event("adopted", message, trial.id)
            log.info("%s", message)
            if stopped:
                service.cancel(trial.id)
            return None
        code, end = read_exit_marker(trial_dir) or (None, time.time())
        return TrialExited(trial.id, code, end)

    def placed(self, placed: TrialPlaced) -> None:
        """Record where a trial runs (and its new handle for adoption, if placing changed it)."""
        fields: dict[str, object] = {"node": placed.host}
        if placed.token is not None:
            fields["pid_token"] = placed.token
            if (active := self.active.get(placed.trial_id)) is not None:
                active.record = replace(active.record, pid_token=placed.token)
        self.store.update_trial(placed.trial_id, **fields)

    def cancel_all(self, reason: str) -> list[str]:
        """Mark every running trial as being cancelled for ``reason``; returns their ids."""
        for active in self.active.values():
            active.cancel_reason = reason
        return list(self.active)

    def read_intermediate(self) -> None:
        """Collect every running trial's new metrics and hand them to the assessor, if any.
        Also records a trial's process token once it can be read (for adoption on resume), and
        passes on cancellations ``nascli trial kill`` recorded (``to_stop``): the command
        signals a local trial itself, a remote trial is reached only through its service."""
        for tid in self.store.running_cancel_requests():
            if tid in self.active and tid not in self._cancels_passed_on:
                self._cancels_passed_on.add(tid)
                self.to_stop.append(tid)
        for tid, active in self.active.items():
            if active.record.pid and active.record.pid_token is None:
                token = process_token(active.record.pid)
                if token is not None:
                    active.record = replace(active.record, pid_token=token)
                    self.store.update_trial(tid, pid_token=token)
            before = active.offset
            new = self._collect(active)
            if active.offset != before:  # skipped lines count too: a resume must not reread them
                self.store.update_trial(
                    tid, metrics_offset=active.offset, bad_metric_lines=active.bad_lines
                )
            if not new:
                continue
            # The assessor sees only intermediate results (and, through the tuner, ends).
            intermediate = [r for r in new if r.type != FINAL]
            if self.assess is not None and intermediate and not active.early_stopped:
                verdict = self.assess(active.record, intermediate)
                if verdict:
                    self._early_stop(active, verdict)

    def _early_stop(self, active: ActiveTrial, reason: str) -> None:
        """Record the verdict (EARLY_STOPPED + reason) in this turn's transaction; the manager
        asks the service to stop the trial once it commits (``to_stop``). The exit that
        follows only adds the end time and code."""
        self.ledger.early_stop(active.record.id, reason)
        active.early_stopped = True
        self.to_stop.append(active.record.id)

    def on_exit(self, exited: TrialExited) -> None:
        """Record a trial's end: its last metrics, its status, then tell the tuner (or retry
        a FAILED trial while ``maxTrialRetries`` allows). Exits of unknown trials are ignored."""
        active = self.active.pop(exited.trial_id, None)
        if active is None:
            return
        trial, code = active.record, exited.exit_code
        self.gpus.release(trial.id)
        if trial.started is not None:
            self.ahead.trial_ended(exited.end_time - trial.started)
        records = self._collect(active, to_end=True)
        final = final_metric(
            self.store, trial.id, records, self.config.tuner.include_intermediate_results
        )
        counters = {"metrics_offset": active.offset, "bad_metric_lines": active.bad_lines}
        if active.early_stopped:
            status, reason = TrialStatus.EARLY_STOPPED, self.store.trial(trial.id).reason
            self.store.update_trial(trial.id, ended=exited.end_time, exit_code=code, **counters)
        else:
            cancel = active.cancel_reason or (
                "cancelled by the user" if self.store.cancel_requested(trial.id) else None
            )
            stderr = self.store.trial_paths(trial.id).stderr
            status, reason = judge_exit(code, final, cancel, stderr)
            self.ledger.finish(trial.id, status, reason, exited.end_time, code, final, **counters)
        if self.assessment is not None:
            self.assessment.ended(
                trial.id, status == TrialStatus.SUCCEEDED,
                [r.value for r in records if r.type != FINAL], stopped=active.early_stopped,
            )  # fmt: skip
        assert self.proposals is not None
        if status == TrialStatus.FAILED and trial.attempt <= self.config.max_trial_retries:
            self.proposals.retry(replace(trial, status=status.value))
        elif active.early_stopped:  # includeIntermediateResults: its last result, as NNI does
            include = self.config.tuner.include_intermediate_results
            self.proposals.tell(trial, False, final, with_result=include and final is not None)
        else:
            self.proposals.tell(trial, status == TrialStatus.SUCCEEDED, final)
        log.info("trial %s %s%s", trial.id, status.value, f" ({reason})" if reason else "")
        self.ended.append(replace(
            trial, status=status.value, reason=reason, ended=exited.end_time, exit_code=code,
            final=final if status == TrialStatus.SUCCEEDED else None,
        ))  # fmt: skip

    def _collect(self, active: ActiveTrial, to_end: bool = False) -> list[MetricRecord]:
        """Store the trial's new metric lines; return them. One bounded read
        (``channel.METRICS_READ_LIMIT``) while the trial runs; ``to_end`` (it has ended, its
        file grows no more) reads on until the end, so a final result behind a huge line or
        a burst of lines is not lost (up to ``_END_READS`` reads: a leftover process that
        keeps writing cannot hold the manager)."""
        records: list[MetricRecord] = []
        bad = 0
        for _ in range(_END_READS if to_end else 1):
            before = active.offset
            got, active.offset, skipped = read_metrics(active.dir, active.offset)
            records += got
            bad += skipped
            if active.offset == before:
                break
        tid = active.record.id
        if bad:
            active.bad_lines += bad
            log.warning("trial %s: %d unreadable line(s) in its metrics file skipped", tid, bad)
        for rec in records:
            self.store.add_metric(tid, rec.sequence, rec.type, rec.value, rec.time)
        return records


def final_metric(
    store: ExperimentStore, trial_id: str, last: list[MetricRecord], include_intermediate: bool
) -> Any:
    """The trial's last final result (from ``last``, the lines read at its end, else the
    store), or (``includeIntermediateResults``) its last intermediate one; None when it
    reported nothing usable."""
    finals = [r.value for r in last if r.type == FINAL]
    if finals:
        return finals[-1]
    rows = store.metrics(trial_id)
    finals = [value for _, _, kind, value, _ in rows if kind == FINAL]
    if finals:
        return finals[-1]
    if include_intermediate and rows:
        return rows[-1][3]
    return None
