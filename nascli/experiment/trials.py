"""A trial's life and the experiment's: the statuses, the transition table, and the only code
that changes a status in the store.

Stored texts are the enums' values, unchanged since the first store, so every existing experiment
reads. ``TrialStatus`` and ``ExperimentStatus`` subclass ``str``: a status compares equal to its
text (``TrialStatus.RUNNING == "RUNNING"``), so readers of the store need no conversion.

A trial's life (``TRIAL_TRANSITIONS``; docs/architecture.md draws it)::

    WAITING ──launch──► RUNNING ──finish──► SUCCEEDED | FAILED
       │                   ├──cancel──────► USER_CANCELED
       │                   └──early_stop──► EARLY_STOPPED (a verdict, recorded before the signal)
       ├──fail (could not start)──► FAILED ──retry──► a new WAITING trial, same parameters
       └──cancel──► USER_CANCELED

Who calls: the manager (every transition), ``control.stop_experiment`` and ``control.kill_trial``
(cancel, when no manager runs). Each write is one conditional ``UPDATE … WHERE status IN
(allowed sources)``, so a transition the table does not allow raises ``IllegalTransitionError``
instead of overwriting what is recorded, and a status is never read then written apart.
Writers run inside the caller's transaction (``store.transaction()``) where they have one.
"""

from __future__ import annotations

import enum
import signal
import time
from collections.abc import Mapping
from pathlib import Path
from typing import TYPE_CHECKING, Any

from nascli.channel import stderr_last_line
from nascli.errors import IllegalTransitionError

if TYPE_CHECKING:
    from nascli.experiment.store import ExperimentStore, TrialRecord

__all__ = [
    "TrialStatus",
    "ExperimentStatus",
    "TERMINAL",
    "ACTIVE",
    "LIVE_EXPERIMENT",
    "TRIAL_TRANSITIONS",
    "EXPERIMENT_TRANSITIONS",
    "Ledger",
    "judge_exit",
    "final_status",
]


class _StoredStatus(str, enum.Enum):
    """A status as the store keeps it: its own name (``enum.auto()``), and prints as that."""

    @staticmethod
    def _generate_next_value_(name: str, start: int, count: int, last_values: list[Any]) -> str:
        return name

    def __str__(self) -> str:
        return self.value


class TrialStatus(_StoredStatus):
    """A trial's: WAITING, RUNNING, then how it ended (``TRIAL_TRANSITIONS``)."""

    WAITING = enum.auto()
    RUNNING = enum.auto()
    SUCCEEDED = enum.auto()
    FAILED = enum.auto()
    USER_CANCELED = enum.auto()
    EARLY_STOPPED = enum.auto()


class ExperimentStatus(_StoredStatus):
    """An experiment's (``EXPERIMENT_TRANSITIONS``)."""

    RUNNING = enum.auto()
    NO_MORE_TRIAL = enum.auto()
    DONE = enum.auto()
    STOPPED = enum.auto()
    ERROR = enum.auto()


T, E = TrialStatus, ExperimentStatus
ACTIVE = frozenset({T.WAITING, T.RUNNING})
TERMINAL = frozenset({T.SUCCEEDED, T.FAILED, T.USER_CANCELED, T.EARLY_STOPPED})
# An experiment whose manager should be running (NO_MORE_TRIAL: its last trials still run).
LIVE_EXPERIMENT = frozenset({E.RUNNING, E.NO_MORE_TRIAL})

TRIAL_TRANSITIONS: Mapping[TrialStatus, frozenset[TrialStatus]] = {
    T.WAITING: frozenset({T.RUNNING, T.FAILED, T.USER_CANCELED}),
    T.RUNNING: frozenset({T.SUCCEEDED, T.FAILED, T.USER_CANCELED, T.EARLY_STOPPED}),
    **{status: frozenset() for status in TERMINAL},
}

# An ended experiment can be resumed (RUNNING again) or stopped over (``nascli stop`` cancels
# what a crashed manager left); it is never DONE straight from STOPPED or ERROR.
EXPERIMENT_TRANSITIONS: Mapping[ExperimentStatus, frozenset[ExperimentStatus]] = {
    E.RUNNING: frozenset({E.RUNNING, E.NO_MORE_TRIAL, E.DONE, E.STOPPED, E.ERROR}),
    E.NO_MORE_TRIAL: frozenset({E.RUNNING, E.DONE, E.STOPPED, E.ERROR}),
    E.DONE: frozenset({E.RUNNING, E.STOPPED}),
    E.STOPPED: frozenset({E.RUNNING, E.STOPPED, E.ERROR}),
    E.ERROR: frozenset({E.RUNNING, E.STOPPED, E.ERROR}),
}

_SOURCES = {
    target: frozenset(s.value for s, targets in TRIAL_TRANSITIONS.items() if target in targets)
    for target in TrialStatus
}


def judge_exit(
    exit_code: int | None, final: Any, cancel_reason: str | None, stderr: Path
) -> tuple[TrialStatus, str | None]:
    """The status and reason of a trial whose command ended (``finish``): cancelled if a
    cancellation was recorded first, whatever the exit code; SUCCEEDED on exit 0 with a final
    result; else FAILED with a reason a user can act on (the signal or exit code and the last
    line of stderr)."""
    if cancel_reason:
        return T.USER_CANCELED, cancel_reason
    if exit_code == 0 and final is not None:
        return T.SUCCEEDED, None
    if exit_code == 0:
        return T.FAILED, (
            "exited 0 without reporting a final result "
            "(the trial must call nascli.report_final_result)"
        )
    if exit_code is None:  # the service's last word, if any, is the last line of stderr
        what = "no exit code left (it ended while no manager watched it, or its node was lost)"
    elif exit_code < 0:
        try:
            what = f"killed by {signal.Signals(-exit_code).name}"
        except ValueError:
            what = f"killed by signal {-exit_code}"
    else:
        what = f"exit code {exit_code}"
    last = stderr_last_line(stderr)  # its last 64 KiB only, never blocking
    return T.FAILED, (f"{what}; stderr: {last}" if last else f"{what}; stderr was empty")


def final_status(
    counts: Mapping[str, int], tuner_error: str | None, search_over: str | None
) -> tuple[ExperimentStatus, str | None]:
    """How an experiment whose trials have all ended ends: ERROR when the tuner failed or
    every finished trial failed, else DONE (with why the search was over)."""
    if tuner_error:
        return E.ERROR, tuner_error
    succeeded, failed = counts.get(T.SUCCEEDED.value, 0), counts.get(T.FAILED.value, 0)
    if failed and not succeeded:
        return E.ERROR, f"all {failed} trial(s) failed (see `nascli trial ls`)"
    return E.DONE, search_over


class Ledger:
    """The only writer of statuses, for one store. Every method is one transition of the
    table (or, ``retry``, a new trial for a failed one) and records an event for what deserves
    attention (failures, cancellations, early stops, retries, the experiment's runs); routine
    starts and successes are in the trial rows."""

    def __init__(self, store: ExperimentStore):
        self.store = store

    # ------------------------------------------------------------------ trials

    def launch(
        self, trial_id: str, pid: int, token: str | None, started: float | None,
        gpus: list[int] | None,
    ) -> None:  # fmt: skip
        """WAITING -> RUNNING: its command started (pid committed for adoption on resume)."""
        self._change(trial_id, T.RUNNING, pid=pid, pid_token=token, started=started, gpus=gpus)

    def finish(
        self, trial_id: str, status: TrialStatus, reason: str | None, ended: float,
        exit_code: int | None, final: Any = None, **counters: Any,
    ) -> None:  # fmt: skip
        """RUNNING -> SUCCEEDED | FAILED | USER_CANCELED: its command ended, judged by
        ``judge_exit``. ``counters``: where metric reading stopped (``metrics_offset``,
        ``bad_metric_lines``)."""
        self._change(
            trial_id, status, reason=reason, ended=ended, exit_code=exit_code,
            final=final if status == T.SUCCEEDED else None, **counters,
        )  # fmt: skip
        if status != T.SUCCEEDED:
            self._event(status, trial_id, reason)

    def fail(self, trial_id: str, reason: str) -> None:
        """WAITING -> FAILED: its command could not start."""
        self._change(trial_id, T.FAILED, reason=reason, ended=time.time())
        self._event(T.FAILED, trial_id, reason)

    def cancel(self, trial_id: str, reason: str, ended: float | None = None) -> None:
        """WAITING | RUNNING -> USER_CANCELED, recorded without waiting for an exit (a trial
        that never started, or one whose manager is gone)."""
        self._change(trial_id, T.USER_CANCELED, reason=reason, ended=ended or time.time())
        self._event(T.USER_CANCELED, trial_id, reason)

    def early_stop(self, trial_id: str, reason: str) -> None:
        """RUNNING -> EARLY_STOPPED: an assessor's verdict, recorded before the manager asks the
        service to stop the trial; the exit that follows only adds its end time and code."""
        self._change(trial_id, T.EARLY_STOPPED, reason=reason)
        self._event(T.EARLY_STOPPED, trial_id, reason)

    def retry(self, failed: TrialRecord, seq: int, attempts: int) -> TrialRecord:
        """A new WAITING trial running a FAILED one's parameters again (attempt + 1 of
        ``attempts``)."""
        if failed.status != T.FAILED:
            raise IllegalTransitionError(
                f"trial {failed.id} is {failed.status}; only a FAILED trial is retried"
            )
        retried = self.store.add_trial(
            str(seq), seq, failed.parameter_id, failed.parameters, failed.attempt + 1
        )
        self.store.add_event(
            "retry", f"trial {failed.id} failed; parameters {failed.parameter_id} retried as "
            f"{seq} (attempt {failed.attempt + 1} of {attempts})", str(seq),
        )  # fmt: skip
        return retried

    # ------------------------------------------------------------------ the experiment

    def start_experiment(self, resumed: bool, **fields: Any) -> None:
        """-> RUNNING: a manager took the experiment (first start or resume)."""
        self._change_experiment(E.RUNNING, reason=None, ended=None, wait_reason=None, **fields)
        self.store.add_event(
            "manager", f"{'resumed' if resumed else 'started'} (pid {fields.get('manager_pid')})"
        )

    def no_more_trials(self, reason: str) -> None:
        """RUNNING -> NO_MORE_TRIAL: nothing more will be proposed; trials still run."""
        self._change_experiment(E.NO_MORE_TRIAL, reason=reason)

    def end_experiment(
        self, status: ExperimentStatus, reason: str | None, by: str = "", **fields: Any
    ) -> None:
        """-> DONE | STOPPED | ERROR, the manager gone (``by``: who ended it, for the event)."""
        self._change_experiment(
            status, reason=reason, manager_pid=None, manager_token=None, wait_reason=None,
            **fields,
        )  # fmt: skip
        detail = f": {reason}" if reason and not by else ""
        self.store.add_event("manager", f"experiment {status.value}{detail}{by}")

    # ------------------------------------------------------------------ the one check

    def _change(self, trial_id: str, target: TrialStatus, **fields: Any) -> None:
        found = self.store.change_trial_status(trial_id, _SOURCES[target], target.value, **fields)
        if found is not None:
            raise IllegalTransitionError(
                f"trial {trial_id}: {found} -> {target.value} is not a transition of a trial's "
                f"life (from {found}: {_names(TRIAL_TRANSITIONS.get(T(found), ()))})"
                if found in T.__members__ else f"trial {trial_id}: no such trial ({found})"
            )

    def _change_experiment(self, target: ExperimentStatus, **fields: Any) -> None:
        current = E(self.store.experiment_status())
        if target not in EXPERIMENT_TRANSITIONS[current]:
            raise IllegalTransitionError(
                f"experiment {self.store.id}: {current.value} -> {target.value} is not allowed "
                f"(from {current.value}: {_names(EXPERIMENT_TRANSITIONS[current])})"
            )
        self.store.change_experiment_status(target.value, **fields)

    def _event(self, status: TrialStatus, trial_id: str, reason: str | None) -> None:
        detail = f": {reason}" if reason else ""
        self.store.add_event(
            status.value.lower(), f"trial {trial_id} {status.value}{detail}", trial_id
        )


def _names(statuses: Any) -> str:
    return ", ".join(sorted(s.value for s in statuses)) or "none, it has ended"
