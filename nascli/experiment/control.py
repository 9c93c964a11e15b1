"""Starting, stopping and resuming experiments, and cancelling trials, from a CLI process.

These run in the ``nascli`` command's process, next to (not inside) the manager. Changes to an
experiment whose manager runs go through the manager: ``stop`` signals it (SIGTERM) and waits for
it to cancel its trials and record STOPPED; ``kill_trial`` records the cancellation in the store
before it signals the trial's process group, so the manager records USER_CANCELED whatever the
exit code. When no manager runs (it crashed or was killed), these commands take the experiment's
lock and do the work themselves. Every wait here has a timeout.
"""

from __future__ import annotations

import os
import signal
import subprocess
import sys
import time
from dataclasses import dataclass

from nascli._text import file_tail
from nascli.errors import ManagerStartError, NasCliError, UsageError
from nascli.experiment.processes import process_alive, terminate_group, terminate_groups
from nascli.experiment.store import ExperimentRecord, ExperimentStore, TrialRecord
from nascli.experiment.trials import ACTIVE, LIVE_EXPERIMENT, ExperimentStatus, Ledger, TrialStatus

__all__ = [
    "ManagerStartError",
    "manager_alive",
    "start_manager",
    "resume_experiment",
    "check_resumable",
    "stop_experiment",
    "kill_trial",
]

_READY_TIMEOUT = 15.0


def manager_alive(exp: ExperimentRecord) -> bool:
    """Whether the manager recorded in ``exp`` is still that running process."""
    return exp.manager_pid is not None and process_alive(exp.manager_pid, exp.manager_token)


def start_manager(store: ExperimentStore, timeout: float = _READY_TIMEOUT) -> int:
    """Start the detached manager (own session, output to ``manager.log``) and return its pid
    once it has taken the experiment (lock held, pid recorded).

    Raises:
        ManagerStartError: it exited or did not take the experiment within ``timeout``.
    """
    with open(store.manager_log, "ab") as log:
        proc = subprocess.Popen(
            [sys.executable, "-m", "nascli.cli.daemon", str(store.dir)],
            stdin=subprocess.DEVNULL,
            stdout=log,
            stderr=log,
            start_new_session=True,
            close_fds=True,
        )
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        code = proc.poll()
        if store.experiment().manager_pid == proc.pid:
            proc.returncode = 0  # detached: nobody waits for it, silence Popen's warning
            return proc.pid
        if code is not None:
            raise ManagerStartError(
                f"the manager of experiment {store.id} exited at once (code {code})"
                + _log_tail(store)
            )
        time.sleep(0.01)
    terminate_group(proc.pid, grace=2.0, leader=proc)
    raise ManagerStartError(
        f"the manager of experiment {store.id} did not start within {timeout:g} s"
        + _log_tail(store)
    )


def _log_tail(store: ExperimentStore) -> str:
    return file_tail(store.manager_log, 12, str(store.manager_log))


def resume_experiment(store: ExperimentStore) -> int:
    """Start a manager for a stopped or crashed experiment; returns its pid.

    Raises:
        UsageError: it is running, or it is DONE (nothing left to do).
    """
    check_resumable(store)
    return start_manager(store)


def check_resumable(store: ExperimentStore) -> None:
    """Raise ``UsageError`` unless the experiment can be resumed (not running, not DONE)."""
    exp = store.experiment()
    if store.manager_running():
        raise UsageError(
            f"experiment {exp.id} is running (manager pid {exp.manager_pid}); nothing to resume"
        )
    if exp.status == ExperimentStatus.DONE:
        raise UsageError(
            f"experiment {exp.id} is DONE ({exp.reason or 'budget used'}); nothing to resume"
        )


@dataclass(frozen=True)
class StopResult:
    experiment_id: str
    was_running: bool
    cancelled_trials: int


def stop_experiment(
    store: ExperimentStore, grace: float = 5.0, timeout: float = 30.0
) -> StopResult:
    """End the manager and every trial process group; the experiment ends STOPPED and its
    running trials USER_CANCELED before this returns."""
    exp = store.experiment()
    running_before = store.status_counts()[TrialStatus.RUNNING.value]
    if manager_alive(exp) and exp.manager_pid is not None:
        with store.transaction():
            store.update_experiment(stop_grace=grace)  # the manager gives trials this long
        os.kill(exp.manager_pid, signal.SIGTERM)
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline and process_alive(exp.manager_pid, exp.manager_token):
            time.sleep(0.02)
        if process_alive(exp.manager_pid, exp.manager_token):
            os.kill(exp.manager_pid, signal.SIGKILL)
            while process_alive(exp.manager_pid, exp.manager_token):
                time.sleep(0.01)
    # Whatever the manager did not get to (it was not running, or it had to be killed).
    with store.exclusive():
        trials = store.trials([status.value for status in ACTIVE])
        # early-stopped (recorded) but perhaps never signalled when the manager died
        stopping = [t for t in store.trials([TrialStatus.EARLY_STOPPED.value]) if t.ended is None]
        groups = [
            t.pid for t in trials + stopping if t.pid and t.status != TrialStatus.WAITING
            and process_alive(t.pid, t.pid_token)
        ]  # fmt: skip
        with store.transaction():
            for t in trials:
                store.request_cancel(t.id)
        terminate_groups(groups, grace)
        remote_error = _end_remote_trials(store, trials, grace)
        now = time.time()
        ledger = Ledger(store)
        with store.transaction():
            for t in trials:
                ledger.cancel(t.id, "experiment stopped", ended=now)
            for t in stopping:  # its status stays: only its end is recorded
                store.update_trial(t.id, ended=now)
            if store.experiment_status() in LIVE_EXPERIMENT or trials:
                ledger.end_experiment(
                    ExperimentStatus.STOPPED, "stopped by the user", by=" (by `nascli stop`)",
                    ended=now,
                )  # fmt: skip
    if remote_error is not None:
        raise NasCliError(f"experiment {exp.id} is STOPPED, but {remote_error}")
    return StopResult(exp.id, exp.status in LIVE_EXPERIMENT, running_before)


def _end_remote_trials(
    store: ExperimentStore, trials: list[TrialRecord], grace: float
) -> str | None:
    """End trials that run on a remote service's nodes (no local process), when no manager
    runs to do it. Returns what went wrong (the records are written regardless), or None."""
    from nascli.experiment.services.ray import TOKEN_PREFIX

    tokens = [t.pid_token for t in trials if t.pid_token and t.pid_token.startswith(TOKEN_PREFIX)]
    if not tokens:
        return None
    from nascli.experiment.config import ExperimentConfig
    from nascli.experiment.services.ray import ray_settings, stop_remote_trials

    config = ExperimentConfig.from_dict(store.experiment().config)
    try:
        stop_remote_trials(ray_settings(config, store.id), tokens, grace)
    except NasCliError as exc:
        return f"its {len(tokens)} trial(s) on the Ray cluster could not be reached: {exc}"
    return None


def kill_trial(store: ExperimentStore, trial_id: str, grace: float = 5.0) -> str:
    """Cancel one trial (its whole process group). Returns the trial's status afterwards.

    Raises:
        UsageError: no such trial, or it already ended.
    """
    trial = store.trial(trial_id)
    if trial is None:
        known = ", ".join(t.id for t in store.trials()[-10:]) or "none"
        raise UsageError(f"experiment {store.id} has no trial {trial_id!r} (recent: {known})")
    if trial.terminal:
        raise UsageError(f"trial {trial_id} already ended ({trial.status})")
    with store.transaction():
        store.request_cancel(trial_id)
    if trial.pid and process_alive(trial.pid, trial.pid_token):
        terminate_group(trial.pid, grace)
    if not manager_alive(store.experiment()):
        if (problem := _end_remote_trials(store, [trial], grace)) is not None:
            raise NasCliError(f"trial {trial_id}: {problem}")
        with store.exclusive(), store.transaction():
            Ledger(store).cancel(trial_id, "cancelled by the user")
        return TrialStatus.USER_CANCELED.value
    # The manager records the end; wait for it briefly so the caller sees the final state.
    deadline = time.monotonic() + 5.0
    while time.monotonic() < deadline:
        current = store.trial(trial_id)
        if current is not None and current.terminal:
            return current.status
        time.sleep(0.02)
    current = store.trial(trial_id)
    return current.status if current else TrialStatus.USER_CANCELED.value
